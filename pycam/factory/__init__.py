"""The factory line: provisioning (DID, MAC, device key and certificate, OTA credentials) and the self-test
station, driving devices through labgrid. See factory/README.md."""
