"""pycam: turns a Python camera application into signed, updatable firmware."""

from pathlib import Path

__version__ = "0.1.0"

# The repository root holds the product definition (board/, partitions/, ota/, keys/, app/).
ROOT = Path(__file__).resolve().parent.parent
