"""What a build checks before it signs: refuse what devices would refuse, warn before things lapse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from pycam.errors import PycamError
from pycam.keys.keyset import KeySet, is_uri
from pycam.keys.pki import DEV_ORGANIZATION, load_cert

EXPIRY_WARNING = dt.timedelta(days=30)
# replacing a CA means shipping a new keyring to every device first: start early
CA_EXPIRY_WARNING = dt.timedelta(days=180)


def keyring_contents(keyring: Path) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    data = keyring.read_bytes()
    certs = x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE-----" in data else []
    crls = []
    marker = b"-----BEGIN X509 CRL-----"
    for chunk in data.split(marker)[1:]:
        crls.append(x509.load_pem_x509_crl(marker + chunk.split(b"-----END X509 CRL-----")[0]
                                           + b"-----END X509 CRL-----\n"))
    return certs, crls


def _issuer_in(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
            return ca
        except (ValueError, TypeError, InvalidSignature):
            continue
    return None


def _crl_of(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    return crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]


def check_signing_cert(keys: KeySet, release: bool, now: dt.datetime | None = None) -> list[str]:
    """Refuse what must not sign (expired, revoked, not trusted by the keyring, development keys for a
    release) and what devices would refuse (a keyring CA without a CRL); return warnings."""
    cert = load_cert(keys.cert)
    source = keys.cert if is_uri(keys.cert) else str(keys.cert)
    now = now or dt.datetime.now(dt.UTC)
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise PycamError(f"the signing certificate {source} expired on {expires:%Y-%m-%d}",
                         "issue a new one: pycam keys rotate")
    organizations = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if release and any(o.value == DEV_ORGANIZATION for o in organizations):
        raise PycamError(f"a release build refuses the development signing key in {keys.directory}",
                         "point PYCAM_KEYS_DIR at the release PKI")
    warnings = []
    if expires - now < EXPIRY_WARNING:
        warnings.append(f"the signing certificate {source} expires on {expires:%Y-%m-%d}: "
                        "issue a new one soon (pycam keys rotate)")

    cas, crls = keyring_contents(keys.keyring)
    ca = _issuer_in(cert, cas)
    if ca is None:
        raise PycamError(f"the signing certificate {source} was not issued by a CA in {keys.keyring}",
                         "devices would refuse its bundles: sign with a certificate of this PKI (pycam keys rotate)")
    for trusted in cas:
        crl = next((c for c in crls if _crl_of(c, trusted)), None)
        if crl is None:
            raise PycamError(f"the keyring {keys.keyring} has no CRL for {trusted.subject.rfc4514_string()}",
                             "devices check CRLs (RAUC check-crl) and would refuse every bundle: where the CA "
                             "key is, run pycam keys init --if-missing (adds an empty CRL)")
        if trusted is ca and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise PycamError(f"the signing certificate {source} (serial {cert.serial_number:x}) is revoked",
                             "issue a new one: pycam keys rotate")
        next_update = crl.next_update_utc
        if next_update is not None and next_update <= now:
            raise PycamError(f"the CRL in {keys.keyring} lapsed on {next_update:%Y-%m-%d}",
                             "devices would refuse new bundles: re-issue it with pycam keys revoke --refresh")
        if next_update is not None and next_update - now < EXPIRY_WARNING:
            warnings.append(f"the CRL in {keys.keyring} lapses on {next_update:%Y-%m-%d}: "
                            "re-issue it (pycam keys revoke --refresh)")
        ca_end = trusted.not_valid_after_utc
        if ca_end <= now:
            raise PycamError(f"the CA {trusted.subject.rfc4514_string()} in {keys.keyring} "
                             f"expired on {ca_end:%Y-%m-%d}",
                             "a new CA must be trusted by the devices' keyring before the old one ends")
        if ca_end - now < CA_EXPIRY_WARNING:
            warnings.append(f"the CA {trusted.subject.rfc4514_string()} expires on {ca_end:%Y-%m-%d}: "
                            "ship a keyring that trusts its successor before then")
    return warnings


def status(keys: KeySet, now: dt.datetime | None = None) -> list[str]:
    """Human-readable state of a key directory: CA, current signer, every issued certificate, the CRL."""
    now = now or dt.datetime.now(dt.UTC)
    lines = [f"key directory {keys.directory}"]
    cas, crls = keyring_contents(keys.keyring) if keys.keyring.exists() else ([], [])
    for index, ca in enumerate(cas):
        role = "current CA " if index == 0 else "previous CA"  # write_keyring puts the current one first
        lines.append(f"  {role} {ca.subject.rfc4514_string()}  serial {ca.serial_number:x}  "
                     f"until {ca.not_valid_after_utc:%Y-%m-%d}")
    for crl in crls:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        next_update = crl.next_update_utc
        lines.append(f"  CRL #{number}  {len(crl)} revoked  issued {crl.last_update_utc:%Y-%m-%d}  "
                     f"next update {next_update:%Y-%m-%d}" if next_update else "")
    current = load_cert(keys.cert) if (is_uri(keys.cert) or Path(keys.cert).exists()) else None
    revoked = {e.serial_number for crl in crls for e in crl}
    issued = sorted(keys.issued.glob("*.cert.pem")) if keys.issued.exists() else []
    certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in issued]
    if current is not None and all(c.serial_number != current.serial_number for c in certs):
        certs.append(current)
    for cert in sorted(certs, key=lambda c: c.not_valid_before_utc):
        state = ("revoked" if cert.serial_number in revoked
                 else "expired" if cert.not_valid_after_utc <= now else "valid")
        mark = "*" if current is not None and cert.serial_number == current.serial_number else " "
        lines.append(f"{mark} signing     serial {cert.serial_number:x}  {cert.not_valid_before_utc:%Y-%m-%d} .. "
                     f"{cert.not_valid_after_utc:%Y-%m-%d}  {state}")
    key = keys.key
    lines.append(f"  signing key {key}")
    return lines
