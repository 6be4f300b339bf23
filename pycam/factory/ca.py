"""The factory CA: checks it before a shift starts and signs each device's CSR into its certificate.

The device makes its key pair itself; the station only sees the CSR (its public key, proof of
possession by the CSR's signature) and returns a certificate naming the DID.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pycam.errors import PycamError

HINT = "make a development factory CA with `pycam factory ca-init`, or point station.ca at the line's CA"


@dataclass(frozen=True)
class FactoryCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    chain_pem: bytes  # the CA certificate (and any intermediates above it), PEM

    @classmethod
    def load(cls, directory: Path) -> FactoryCA:
        crt, key = directory / "ca.crt", directory / "ca.key"
        try:
            chain_pem = crt.read_bytes()
            key_pem = key.read_bytes()
        except FileNotFoundError as e:
            raise PycamError(f"factory CA missing: {e.filename}", HINT) from e
        try:
            certs = x509.load_pem_x509_certificates(chain_pem)
            private = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError as e:
            raise PycamError(f"factory CA in {directory} unreadable: {e}", HINT) from e
        if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise PycamError(f"{key}: unsupported key type (EC or RSA)", HINT)
        ca = cls(certs[0], private, chain_pem)
        ca.check()
        return ca

    def check(self, at: dt.datetime | None = None) -> None:
        """Refuse a CA that could not issue valid device certificates."""
        at = at or dt.datetime.now(dt.UTC)
        c = self.cert
        try:
            basic = c.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            basic = None
        if basic is None or not basic.ca:
            raise PycamError(f"factory CA {c.subject.rfc4514_string()} is not a CA certificate (basicConstraints)",
                             HINT)
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if c.public_key().public_bytes(der, pub) != self.key.public_key().public_bytes(der, pub):
            raise PycamError("factory CA key does not match its certificate", HINT)
        if not c.not_valid_before_utc <= at <= c.not_valid_after_utc:
            raise PycamError(f"factory CA {c.subject.rfc4514_string()} is not valid now "
                             f"({c.not_valid_before_utc:%Y-%m-%d} .. {c.not_valid_after_utc:%Y-%m-%d})", HINT)

    def sign(self, csr_pem: str | bytes, did: str, hostname: str, mac: str, days: int) -> x509.Certificate:
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
        except ValueError as e:
            raise PycamError(f"device sent an unreadable CSR: {e}", "re-run provisioning for this device") from e
        if not csr.is_signature_valid:
            raise PycamError("device CSR signature invalid (no proof the device holds its key)",
                             "re-run provisioning; if it repeats, the device's openssl is broken")
        now = dt.datetime.now(dt.UTC)
        not_after = min(now + dt.timedelta(days=days), self.cert.not_valid_after_utc)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, did),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, did),
            *[a for a in self.cert.subject if a.oid == NameOID.ORGANIZATION_NAME],
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.DNSName(f"{hostname}.local"),
                x509.UniformResourceIdentifier(f"urn:pycam:did:{did}:mac:{mac}"),
            ]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)  # type: ignore[arg-type]
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)  # type: ignore[arg-type]
        )
        return builder.sign(self.key, hashes.SHA256())


def init_ca(directory: Path, org: str = "pycam development factory", days: int = 3650, force: bool = False) -> Path:
    """A development factory CA (EC P-256): directory/ca.crt, ca.key (0600)."""
    if (directory / "ca.key").exists() and not force:
        raise PycamError(f"a factory CA already exists in {directory}", "use --force to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{org} CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(directory / "ca.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory
