"""Where a key directory keeps what (keys/dev/ by default, or $PYCAM_KEYS_DIR for a release PKI).

  ca.cert.pem / ca.key.pem            root CA (the device keyring trusts it; ca.key.pem may live offline)
  signing.cert.pem                    the current bundle signing certificate, issued by the CA
  signing.key.pem | signing.key.uri   its private key: a PEM file, or a file holding a pkcs11: URI
  crl.pem                             the CA's certificate revocation list (RAUC check-crl)
  issued/<serial>.cert.pem            every signing certificate the CAs issued (rotate keeps the old ones)
  previous-ca/<serial>/               a CA replaced by `rotate --ca`, still trusted: ca.cert.pem, ca.key.pem, crl.pem
  retired-ca/<serial>/                a previous CA no longer trusted (`retire-ca`)
  keyring.pem                         every trusted CA certificate + its CRL: the image's /etc/rauc/keyring.pem

$PYCAM_SIGNING_KEY / $PYCAM_SIGNING_CERT (a path or a pkcs11: URI) override the signing pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from pycam import ROOT
from pycam.errors import PycamError

DEFAULT_DIR = ROOT / "keys" / "dev"
PKCS11_SCHEME = "pkcs11:"


def keys_dir() -> Path:
    return Path(os.environ.get("PYCAM_KEYS_DIR", DEFAULT_DIR))


def is_uri(ref: Path | str) -> bool:
    return isinstance(ref, str) and ref.startswith(PKCS11_SCHEME)


@dataclass(frozen=True)
class Authority:
    """A CA's files: the current one at the top of the key directory, earlier ones in previous-ca/."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "ca.cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"


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
    def cert_file(self) -> Path:
        return self.directory / "signing.cert.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "signing.key.pem"

    @property
    def key_uri_file(self) -> Path:
        return self.directory / "signing.key.uri"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def issued(self) -> Path:
        return self.directory / "issued"

    @property
    def keyring(self) -> Path:
        return self.directory / "keyring.pem"

    @property
    def previous_ca(self) -> Path:
        return self.directory / "previous-ca"

    @property
    def retired_ca(self) -> Path:
        return self.directory / "retired-ca"

    def authorities(self) -> list[Authority]:
        """Every CA the keyring trusts: the current one first, then earlier ones, oldest last."""
        previous = [Authority(p) for p in self.previous_ca.iterdir()] if self.previous_ca.exists() else []
        previous.sort(key=lambda a: x509.load_pem_x509_certificate(a.cert.read_bytes()).not_valid_before_utc,
                      reverse=True)
        return [Authority(self.directory), *previous]

    @property
    def cert(self) -> Path | str:
        """The signing certificate as rauc's --cert takes it: a file or a pkcs11: URI."""
        override = os.environ.get("PYCAM_SIGNING_CERT")
        if override:
            return override if is_uri(override) else Path(override)
        return self.cert_file

    @property
    def key(self) -> Path | str:
        """The signing key as rauc's --key takes it: a file or a pkcs11: URI (never read by pycam)."""
        override = os.environ.get("PYCAM_SIGNING_KEY")
        if override:
            return override if is_uri(override) else Path(override)
        if self.key_uri_file.exists():
            return self.key_uri_file.read_text().strip()
        return self.key_file

    def require(self) -> KeySet:
        missing = [str(p.name if p.parent == self.directory else p)
                   for p in (self.cert, self.key, self.keyring) if isinstance(p, Path) and not p.exists()]
        if missing:
            raise PycamError(
                f"missing signing key material in {self.directory}: {', '.join(missing)}",
                "create development keys with: pycam keys init (or set PYCAM_KEYS_DIR to your release keys)",
            )
        return self
