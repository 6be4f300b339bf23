# RAUC system.conf generated per board from partitions/ and ota/ (files/<machine>/system.conf).
# The keyring is RAUC_KEYRING_FILE (distro: keys/dev/keyring.pem), installed as
# /etc/rauc/keyring.pem, the path system.conf names.
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"
