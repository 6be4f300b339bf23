"""Signing keys for RAUC bundles: a development PKI, rotation, revocation (CRL), expiry checks, PKCS#11.

keyset.py names the files of a key directory, pki.py makes and changes them (cryptography),
checks.py decides what may sign, pkcs11.py reads certificates held in a token, cli.py is
`pycam keys rotate|revoke|status`. The key lifecycle is documented in keys/README.md.
"""

from pycam.keys.checks import CA_EXPIRY_WARNING, EXPIRY_WARNING, check_signing_cert, status
from pycam.keys.keyset import DEFAULT_DIR, KeySet, keys_dir
from pycam.keys.pki import CA_DAYS, DEV_ORGANIZATION, SIGNING_DAYS, init, refresh_crl, revoke, rotate, upgrade

__all__ = [
    "CA_DAYS", "CA_EXPIRY_WARNING", "DEFAULT_DIR", "DEV_ORGANIZATION", "EXPIRY_WARNING", "SIGNING_DAYS", "KeySet",
    "check_signing_cert", "init", "keys_dir", "refresh_crl", "revoke", "rotate", "status", "upgrade",
]
