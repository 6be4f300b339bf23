"""pycam's on-device OTA client (see ota/client/README.md)."""

__version__ = "0.1.0"
