"""Certificates and public keys held in a PKCS#11 token, named by an RFC 7512 pkcs11: URI.

rauc signs with such a key itself (OpenSSL's pkcs11 engine; module from $RAUC_PKCS11_MODULE,
PIN from $RAUC_PKCS11_PIN). pycam only reads public objects, with OpenSC's pkcs11-tool and the
same module, so that the expiry and revocation checks see the certificate rauc will use.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from pycam.errors import PycamError
from pycam.keys.keyset import PKCS11_SCHEME

# what libp11 (the engine rauc uses) falls back to without RAUC_PKCS11_MODULE
P11_KIT_PROXY = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"


def module() -> str:
    return os.environ.get("RAUC_PKCS11_MODULE") or P11_KIT_PROXY


def parse_uri(uri: str) -> dict[str, bytes]:
    """The path attributes of a pkcs11: URI (token, object, id, type, ...), percent-decoded."""
    if not uri.startswith(PKCS11_SCHEME):
        raise PycamError(f"not a PKCS#11 URI: {uri}", "PKCS#11 URIs start with pkcs11: (RFC 7512)")
    path = uri[len(PKCS11_SCHEME):].split("?", 1)[0]
    attrs: dict[str, bytes] = {}
    for part in filter(None, path.split(";")):
        name, sep, value = part.partition("=")
        if not sep:
            raise PycamError(f"malformed PKCS#11 URI attribute {part!r} in {uri}", "write attributes as name=value")
        attrs[name] = unquote_to_bytes(value)
    if "id" not in attrs and "object" not in attrs:
        raise PycamError(f"PKCS#11 URI {uri} names no object", "add id=%01 or object=<label> to the URI")
    return attrs


def read_object(uri: str, kind: str) -> bytes:
    """DER of the token object `kind` ("cert" or "pubkey") the URI names."""
    attrs = parse_uri(uri)
    args = ["pkcs11-tool", "--module", module(), "--read-object", "--type", kind]
    if "token" in attrs:
        args += ["--token-label", attrs["token"].decode()]
    if "id" in attrs:
        args += ["--id", attrs["id"].hex()]
    if "object" in attrs:
        args += ["--label", attrs["object"].decode()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "object.der"
        try:
            proc = subprocess.run([*args, "--output-file", str(out)], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise PycamError("pkcs11-tool is not installed", "run: sudo scripts/setup-host (package opensc)") from None
        if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            raise PycamError(
                f"cannot read the {kind} object {uri} from PKCS#11 module {module()}: "
                f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['not found']}",
                "check the URI (pkcs11-tool --module MODULE --list-objects) and set RAUC_PKCS11_MODULE",
            )
        return out.read_bytes()


def load_cert(uri: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(read_object(uri, "cert"))


def load_public_key(uri: str) -> PublicKeyTypes:
    return serialization.load_der_public_key(read_object(uri, "pubkey"))
