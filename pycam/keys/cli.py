"""`pycam keys rotate | revoke | status` (init lives in pycam/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pycam.log import log


def _keyset(args: argparse.Namespace):
    from pycam.keys import KeySet, keys_dir

    return KeySet(Path(args.dir) if args.dir else keys_dir())


def cmd_rotate(args: argparse.Namespace) -> int:
    from pycam.keys import pki

    keys = _keyset(args)
    if args.ca:
        old_ca, new_ca = pki.rotate_ca(keys)
        log.info("new CA %x; the keyring now trusts it and the previous CA %x. Bundles are still signed by "
                 "the previous CA's certificate, so every device keeps updating. Once the fleet runs an "
                 "image with this keyring: pycam keys rotate (sign with the new CA), later pycam keys "
                 "retire-ca %x", new_ca.serial_number, old_ca.serial_number, old_ca.serial_number)
        return 0
    old, new = pki.rotate(keys, key_uri=args.key, days=args.days)
    log.info("new signing certificate %x (until %s)%s; the keyring is unchanged, so devices keep accepting "
             "bundles signed by it", new.serial_number, f"{new.not_valid_after_utc:%Y-%m-%d}",
             f", key in the token {args.key}" if args.key else "")
    if old is not None:
        log.info("the previous certificate %x stays valid until %s: revoke it with pycam keys revoke %x",
                 old.serial_number, f"{old.not_valid_after_utc:%Y-%m-%d}", old.serial_number)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from cryptography import x509

    from pycam.errors import PycamError
    from pycam.keys import pki

    keys = _keyset(args)
    if args.refresh:
        crl = pki.refresh_crl(keys)
    elif args.certificate:
        serial = pki.resolve_serial(keys, args.certificate)
        crl = pki.revoke(keys, serial, reason=args.reason)
        current = pki.load_cert(keys.cert)
        if current.serial_number == serial:
            log.warning("that is the current signing certificate: builds refuse it until pycam keys rotate")
    else:
        raise PycamError("pycam keys revoke needs a certificate (serial or file) or --refresh",
                         "list the serials with: pycam keys status")
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    log.info("CRL #%d with %d revoked certificate(s) in %s; devices apply it once an image with this "
             "keyring is installed", number, len(crl), keys.keyring)
    return 0


def cmd_retire_ca(args: argparse.Namespace) -> int:
    from pycam.keys import pki

    keys = _keyset(args)
    moved = pki.retire_ca(keys, pki.parse_serial(args.serial))
    log.info("CA %s is no longer in %s (its files are in %s); devices stop trusting it with the next image",
             args.serial, keys.keyring, moved)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from pycam.keys import checks

    keys = _keyset(args)
    for line in checks.status(keys):
        print(line)
    if keys.keyring.exists():
        for warning in checks.check_signing_cert(keys.require(), release=False):
            print(f"warning: {warning}")
    return 0


def register(ksub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the lifecycle subcommands to `pycam keys`."""
    from pycam.keys.pki import REASONS, SIGNING_DAYS

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", help="key directory (default keys/dev or $PYCAM_KEYS_DIR)")
        return p

    r = with_dir(ksub.add_parser("rotate", help="issue a new signing certificate; the keyring keeps trusting both"))
    r.add_argument("--key", metavar="PKCS11_URI", help="certify the key a PKCS#11 token holds instead of a new file")
    r.add_argument("--days", type=int, default=SIGNING_DAYS, help=f"validity (default {SIGNING_DAYS})")
    r.add_argument("--ca", action="store_true",
                   help="replace the CA instead: the keyring trusts old and new until retire-ca")
    r.set_defaults(func=cmd_rotate)

    v = with_dir(ksub.add_parser("revoke", help="put a signing certificate on the CRL devices check"))
    v.add_argument("certificate", nargs="?", help="hex serial (pycam keys status) or certificate file")
    v.add_argument("--reason", default="superseded", choices=sorted(REASONS))
    v.add_argument("--refresh", action="store_true", help="re-sign the CRL without adding an entry")
    v.set_defaults(func=cmd_revoke)

    c = with_dir(ksub.add_parser("retire-ca", help="stop trusting a CA replaced by rotate --ca"))
    c.add_argument("serial", help="the previous CA's hex serial (pycam keys status)")
    c.set_defaults(func=cmd_retire_ca)

    for command in ("status", "list"):
        s = with_dir(ksub.add_parser(command, help="CA, signing certificates, CRL and warnings"))
        s.set_defaults(func=cmd_status)
