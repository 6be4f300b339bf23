"""Development PKI for signing RAUC bundles (`pycam keys init`), with the cryptography library.

Layout of a key directory (default keys/dev/, git-ignored):
  ca.cert.pem / ca.key.pem            root CA (the device keyring trusts it)
  signing.cert.pem / signing.key.pem  the bundle signing certificate, issued by the CA
  keyring.pem                         what the image installs as /etc/rauc/keyring.pem
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pycam import ROOT
from pycam.errors import PycamError

DEFAULT_DIR = ROOT / "keys" / "dev"
CA_DAYS = 3650
SIGNING_DAYS = 730


@dataclass(frozen=True)
class KeySet:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.cert.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "signing.cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "signing.key.pem"

    @property
    def keyring(self) -> Path:
        return self.directory / "keyring.pem"

    def require(self) -> KeySet:
        missing = [p.name for p in (self.cert, self.key, self.keyring) if not p.exists()]
        if missing:
            raise PycamError(
                f"missing signing key material in {self.directory}: {', '.join(missing)}",
                "create development keys with: pycam keys init (or set PYCAM_KEYS_DIR to your release keys)",
            )
        return self


DEV_ORGANIZATION = "pycam development"
EXPIRY_WARNING = dt.timedelta(days=30)


def check_signing_cert(keys: KeySet, release: bool, now: dt.datetime | None = None) -> list[str]:
    """Refuse what must not sign (expired, or development keys for a release); return warnings."""
    cert = x509.load_pem_x509_certificate(keys.cert.read_bytes())
    now = now or dt.datetime.now(dt.UTC)
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise PycamError(f"the signing certificate {keys.cert} expired on {expires:%Y-%m-%d}",
                         "issue a new one (pycam keys init --force for development keys)")
    organizations = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if release and any(o.value == DEV_ORGANIZATION for o in organizations):
        raise PycamError(f"a release build refuses the development signing key in {keys.directory}",
                         "point PYCAM_KEYS_DIR at the release PKI")
    if expires - now < EXPIRY_WARNING:
        return [f"the signing certificate {keys.cert} expires on {expires:%Y-%m-%d}: issue a new one soon"]
    return []


def keys_dir() -> Path:
    return Path(os.environ.get("PYCAM_KEYS_DIR", DEFAULT_DIR))


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    tmp.rename(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(path)


def init(directory: Path, force: bool = False) -> KeySet:
    keys = KeySet(directory)
    if keys.ca_key.exists() and not force:
        raise PycamError(f"{directory} already holds a CA", "keep it, or pass --force to replace every key in it")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("pycam development CA"))
        .issuer_name(_name("pycam development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sign_key = ec.generate_private_key(ec.SECP256R1())
    sign_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("pycam development bundle signing"))
        .issuer_name(ca_cert.subject)
        .public_key(sign_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=SIGNING_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        # codeSigning is what the key is for; RAUC 1.8 checks the S/MIME purpose by default,
        # so emailProtection is listed too (see ../shared/notes/qemu-arm64.md)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING,
                                              ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write_private(keys.ca_key, ca_key)
    _write_private(keys.key, sign_key)
    pem = serialization.Encoding.PEM
    _write_public(keys.ca_cert, ca_cert.public_bytes(pem))
    _write_public(keys.cert, sign_cert.public_bytes(pem))
    _write_public(keys.keyring, ca_cert.public_bytes(pem))
    return keys
