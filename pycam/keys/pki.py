"""The PKI itself, with the cryptography library: init, rotate, revoke, and the keyring the device trusts.

Trust is anchored in the CA, not in a signing certificate: the device keyring holds the CA
certificate and the CA's CRL. A rotation issues a new signing certificate from the same CA, so a
device with any earlier keyring accepts bundles signed by it; the old certificate stays valid
until it expires or is revoked. A revocation goes into the CRL, which reaches the devices
inside the next image's keyring (RAUC check-crl).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pycam.errors import PycamError
from pycam.keys import pkcs11
from pycam.keys.keyset import Authority, KeySet, is_uri

CA_DAYS = 3650
SIGNING_DAYS = 730
DEV_ORGANIZATION = "pycam development"
PEM = serialization.Encoding.PEM
REASONS = {r.value: r for r in x509.ReasonFlags
           if r not in (x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a device clock slightly behind


def name(common_name: str, organization: str = DEV_ORGANIZATION) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    tmp.rename(path)


def write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(path)


def make_ca(key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, not_before: dt.datetime,
            days: int = CA_DAYS) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_signing_cert(ca_cert: x509.Certificate, ca_key: CertificateIssuerPrivateKeyTypes,
                       public_key: PublicKeyTypes, not_before: dt.datetime, not_after: dt.datetime,
                       common_name: str = "pycam development bundle signing") -> x509.Certificate:
    organization = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (
        x509.CertificateBuilder()
        .subject_name(name(common_name, str(organization[0].value) if organization else DEV_ORGANIZATION))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        # codeSigning is what the key is for; RAUC 1.8 checks the S/MIME purpose by default,
        # so emailProtection is listed too (see ../shared/notes/qemu-arm64.md)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING,
                                              ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def load_cert(ref: Path | str) -> x509.Certificate:
    if is_uri(ref):
        return pkcs11.load_cert(str(ref))
    return x509.load_pem_x509_certificate(Path(ref).read_bytes())


def load_authority(ca: Authority) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not ca.key.exists():
        raise PycamError(f"the CA's private key {ca.key} is not here",
                         "run this where the CA key is kept (offline for a release PKI), or pycam keys init")
    key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(ca.cert.read_bytes()), key


def load_ca(keys: KeySet) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The current CA (the one new signing certificates come from)."""
    return load_authority(Authority(keys.directory))


def load_crl(ca: Authority | KeySet) -> x509.CertificateRevocationList | None:
    return x509.load_pem_x509_crl(ca.crl.read_bytes()) if ca.crl.exists() else None


def write_crl(keys: KeySet, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
              revoked: list[x509.RevokedCertificate], number: int,
              ca: Authority | None = None) -> x509.CertificateRevocationList:
    """nextUpdate is the CA's own end: with check-crl a device refuses every bundle signed after its
    keyring's CRL lapsed, and a device that missed updates must still be able to take the next one."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(_now())
        .next_update(ca_cert.not_valid_after_utc)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    write_public((ca or Authority(keys.directory)).crl, crl.public_bytes(PEM))
    write_keyring(keys)
    return crl


def write_keyring(keys: KeySet) -> None:
    """Each trusted CA's certificate, then its CRL: RAUC loads them all from the one keyring file."""
    parts = []
    for ca in keys.authorities():
        parts.append(ca.cert.read_bytes())
        if ca.crl.exists():
            parts.append(ca.crl.read_bytes())
    write_public(keys.keyring, b"".join(parts))


def issuer_of(keys: KeySet, cert: x509.Certificate) -> Authority | None:
    for ca in keys.authorities():
        try:
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
            return ca
        except (ValueError, TypeError, InvalidSignature):
            continue
    return None


def record_issued(keys: KeySet, cert: x509.Certificate) -> Path:
    keys.issued.mkdir(exist_ok=True)
    path = keys.issued / f"{cert.serial_number:x}.cert.pem"
    write_public(path, cert.public_bytes(PEM))
    return path


def init(directory: Path, force: bool = False) -> KeySet:
    keys = KeySet(directory)
    if keys.ca_key.exists() and not force:
        raise PycamError(f"{directory} already holds a CA", "keep it, or pass --force to replace every key in it")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = make_ca(ca_key, name("pycam development CA"), now)
    sign_key = ec.generate_private_key(ec.SECP256R1())
    sign_cert = issue_signing_cert(ca_cert, ca_key, sign_key.public_key(), now, now + dt.timedelta(days=SIGNING_DAYS))

    write_private(keys.ca_key, ca_key)
    write_private(keys.key_file, sign_key)
    keys.key_uri_file.unlink(missing_ok=True)
    write_public(keys.ca_cert, ca_cert.public_bytes(PEM))
    write_public(keys.cert_file, sign_cert.public_bytes(PEM))
    for old in (keys.issued, keys.previous_ca, keys.retired_ca):
        shutil.rmtree(old, ignore_errors=True)
    record_issued(keys, sign_cert)
    write_crl(keys, ca_cert, ca_key, [], number=1)
    return keys


def upgrade(keys: KeySet) -> bool:
    """Bring a key directory made before CRLs existed up to date: an empty CRL in the keyring
    (with check-crl a keyring without one refuses every bundle). True if anything changed."""
    if keys.crl.exists() or not keys.ca_key.exists():
        return False
    ca_cert, ca_key = load_ca(keys)
    if keys.cert_file.exists():
        record_issued(keys, x509.load_pem_x509_certificate(keys.cert_file.read_bytes()))
    write_crl(keys, ca_cert, ca_key, [], number=1)
    return True


def rotate(keys: KeySet, key_uri: str | None = None, days: int = SIGNING_DAYS,
           not_before: dt.datetime | None = None) -> tuple[x509.Certificate | None, x509.Certificate]:
    """A new signing certificate from the same CA: a fresh key in signing.key.pem, or the key a
    PKCS#11 token holds (key_uri; only its public half is read). The keyring does not change."""
    ca_cert, ca_key = load_ca(keys)
    old = x509.load_pem_x509_certificate(keys.cert_file.read_bytes()) if keys.cert_file.exists() else None
    start = not_before or _now()
    end = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    if key_uri:
        cert = issue_signing_cert(ca_cert, ca_key, pkcs11.load_public_key(key_uri), start, end)
        write_public(keys.key_uri_file, (key_uri + "\n").encode())
        keys.key_file.unlink(missing_ok=True)
    else:
        sign_key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_signing_cert(ca_cert, ca_key, sign_key.public_key(), start, end)
        write_private(keys.key_file, sign_key)
        keys.key_uri_file.unlink(missing_ok=True)
    if old is not None:
        record_issued(keys, old)
    record_issued(keys, cert)
    write_public(keys.cert_file, cert.public_bytes(PEM))
    return old, cert


def resolve_serial(keys: KeySet, target: str) -> int:
    """A serial number (hex, as `pycam keys status` lists it) or a certificate file."""
    path = Path(target)
    if path.is_file():
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        if issuer_of(keys, cert) is None:
            raise PycamError(f"{path} was not issued by the CA in {keys.directory}",
                             "a CRL can only revoke its own CA's certificates")
        record_issued(keys, cert)  # issued elsewhere (a test, another machine): the CA knows it now
        return cert.serial_number
    return parse_serial(target)


def parse_serial(text: str) -> int:
    try:
        return int(text.removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise PycamError(f"{text!r} is neither a certificate file nor a hex serial number",
                         "list the serials with: pycam keys status") from None


def revoke(keys: KeySet, serial: int, reason: str = "superseded",
           when: dt.datetime | None = None) -> x509.CertificateRevocationList:
    """Add the certificate to the CRL of the CA that issued it (the current or a previous one)."""
    if reason not in REASONS:
        raise PycamError(f"unknown revocation reason {reason!r}", f"use one of: {', '.join(sorted(REASONS))}")
    record = keys.issued / f"{serial:x}.cert.pem"
    if not record.exists():
        raise PycamError(f"the CA in {keys.directory} has no record of issuing certificate {serial:x}",
                         "pass the certificate file, or a serial from: pycam keys status")
    ca = issuer_of(keys, x509.load_pem_x509_certificate(record.read_bytes()))
    if ca is None:
        raise PycamError(f"certificate {serial:x} was issued by a CA the keyring no longer trusts",
                         "devices refuse it already; nothing to revoke")
    ca_cert, ca_key = load_authority(ca)
    crl = load_crl(ca)
    entries = list(crl) if crl is not None else []
    if any(e.serial_number == serial for e in entries):
        raise PycamError(f"certificate {serial:x} is already revoked", "pycam keys status lists the CRL")
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(when or _now())
        .add_extension(x509.CRLReason(REASONS[reason]), critical=False)
        .build()
    )
    return write_crl(keys, ca_cert, ca_key, [*entries, entry], _crl_number(crl) + 1, ca)


def _crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 0
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def refresh_crl(keys: KeySet) -> x509.CertificateRevocationList:
    """Re-sign every trusted CA's CRL with the same entries; returns the current CA's."""
    current = None
    for ca in keys.authorities():
        ca_cert, ca_key = load_authority(ca)
        crl = load_crl(ca)
        fresh = write_crl(keys, ca_cert, ca_key, list(crl) if crl is not None else [], _crl_number(crl) + 1, ca)
        current = current or fresh
    assert current is not None
    return current


def rotate_ca(keys: KeySet, days: int = CA_DAYS) -> tuple[x509.Certificate, x509.Certificate]:
    """Phase 1 of a CA change: a new CA joins the keyring next to the old one, which moves to
    previous-ca/. The signing certificate stays the old CA's, so every device keeps updating; once
    the fleet runs an image with this keyring, `rotate` signs with the new CA, and `retire_ca`
    finally drops the old one."""
    old_cert, old_key = load_ca(keys)
    keep = keys.previous_ca / f"{old_cert.serial_number:x}"
    keep.mkdir(parents=True)
    previous = Authority(keep)
    current = Authority(keys.directory)
    for src, dst in ((current.cert, previous.cert), (current.key, previous.key), (current.crl, previous.crl)):
        if src.exists():
            os.replace(src, dst)
    organization = old_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(organization[0].value) if organization else DEV_ORGANIZATION
    now = _now()
    new_key = ec.generate_private_key(ec.SECP256R1())
    new_cert = make_ca(new_key, name(f"{org} CA {now:%Y-%m}", org), now, days)
    write_private(current.key, new_key)
    write_public(current.cert, new_cert.public_bytes(PEM))
    write_crl(keys, new_cert, new_key, [], number=1)
    if not previous.crl.exists():
        write_crl(keys, old_cert, old_key, [], number=1, ca=previous)
    return old_cert, new_cert


def retire_ca(keys: KeySet, serial: int) -> Path:
    """Phase 3: stop trusting a previous CA (the keyring drops it; its files move to retired-ca/)."""
    ca = keys.previous_ca / f"{serial:x}"
    if not ca.is_dir():
        raise PycamError(f"no previous CA with serial {serial:x} in {keys.previous_ca}",
                         "pycam keys status lists the trusted CAs")
    signer = load_cert(keys.cert)
    if issuer_of(keys, signer) == Authority(ca):
        raise PycamError(f"the current signing certificate was issued by CA {serial:x}",
                         "sign with the new CA first: pycam keys rotate")
    keys.retired_ca.mkdir(exist_ok=True)
    target = keys.retired_ca / ca.name
    os.replace(ca, target)
    write_keyring(keys)
    return target

