"""Production keys from a PKCS#11 token: SoftHSM2 holds the key (generated inside it, never on disk),
`pycam keys rotate --key pkcs11:...` certifies it, make_bundle (what `pycam bundle` runs) signs through
rauc's OpenSSL pkcs11 engine, and the build's certificate checks read a certificate from the token
exactly as from a file."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycam import keys
from pycam.cli import main
from pycam.engine.bundle import bundle_info, make_bundle
from pycam.errors import PycamError
from pycam.keys import pkcs11, pki
from tests.unit.conftest import need

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
ENGINE = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
PIN = "1234"
TOKEN = "pycam-test"
KEY_URI = f"pkcs11:token={TOKEN};object=signing;type=private"
CERT_URI = f"pkcs11:token={TOKEN};object=signing;type=cert"


def _tool(*args: str) -> None:
    subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, *args], check=True,
                   capture_output=True)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SoftHSM2 token with an EC P-256 key pair generated inside it (id 01, label signing)."""
    need("softhsm2-util", "pkcs11-tool", "rauc", "mksquashfs")
    if not (Path(MODULE).exists() and Path(ENGINE).exists()):
        pytest.skip("softhsm2 / libengine-pkcs11-openssl missing (run: sudo scripts/setup-host)")
    store = tmp_path / "tokens"
    store.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {store}\nobjectstore.backend = file\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv("RAUC_PKCS11_MODULE", MODULE)
    monkeypatch.setenv("RAUC_PKCS11_PIN", PIN)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "4321"],
                   check=True, capture_output=True)
    _tool("--login", "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "signing")
    yield TOKEN


def _bundle(product, keyset: keys.KeySet, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    rootfs, kernel = work / "rootfs.squashfs", work / "kernel.vfat"
    rootfs.write_bytes(os.urandom(65536))
    kernel.write_bytes(os.urandom(65536))
    return make_bundle(product, keyset, rootfs=rootfs, kernel_vfat=kernel, version="2.0.0", build="hsm",
                       out=tmp_path / "hsm.raucb", work=work)


def test_uri_parsing() -> None:
    attrs = pkcs11.parse_uri("pkcs11:token=my%20token;id=%01%a2;object=signing?pin-value=1")
    assert attrs == {"token": b"my token", "id": b"\x01\xa2", "object": b"signing"}
    with pytest.raises(PycamError, match="names no object"):
        pkcs11.parse_uri("pkcs11:token=x")
    with pytest.raises(PycamError, match="not a PKCS#11 URI"):
        pkcs11.parse_uri("/etc/key.pem")


def test_bundle_signed_with_a_key_held_in_the_token(product, token: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    keyset = keys.init(tmp_path / "pki")
    field_keyring = shutil.copy2(keyset.keyring, tmp_path / "field-keyring.pem")
    assert main(["keys", "rotate", "--dir", str(keyset.directory), "--key", KEY_URI]) == 0
    assert keyset.key == KEY_URI and not keyset.key_file.exists()
    cert = pki.load_cert(keyset.cert)
    assert cert.public_key() == pkcs11.load_public_key(KEY_URI)  # certifies the token's key
    assert keys.check_signing_cert(keyset.require(), release=False) == []
    bundle = _bundle(product, keyset, tmp_path)
    assert "2.0.0" in bundle_info(bundle, Path(field_keyring))  # devices trust it through the CA

    # with a wrong PIN the token does not sign: the error names the rauc step
    monkeypatch.setenv("RAUC_PKCS11_PIN", "0000")
    with pytest.raises(PycamError, match="rauc bundle failed"):
        _bundle(product, keyset, tmp_path / "again")


def test_certificate_checks_read_the_certificate_from_the_token(product, token: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    keyset = keys.init(tmp_path / "pki")
    keys.rotate(keyset, key_uri=KEY_URI)
    der = tmp_path / "cert.der"
    from cryptography.hazmat.primitives import serialization

    der.write_bytes(pki.load_cert(keyset.cert_file).public_bytes(serialization.Encoding.DER))
    _tool("--login", "--pin", PIN, "--write-object", str(der), "--type", "cert", "--id", "01", "--label", "signing")
    keyset.cert_file.unlink()  # only the token has it now
    monkeypatch.setenv("PYCAM_SIGNING_CERT", CERT_URI)
    assert keyset.cert == CERT_URI
    assert keys.check_signing_cert(keyset.require(), release=False) == []
    with pytest.raises(PycamError, match="release build refuses the development signing key"):
        keys.check_signing_cert(keyset, release=True)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=keys.SIGNING_DAYS + 1)
    with pytest.raises(PycamError, match=f"signing certificate {CERT_URI} expired"):
        keys.check_signing_cert(keyset, release=False, now=later)
    # cert and key both from the token: rauc loads the certificate through the engine too
    bundle = _bundle(product, keyset, tmp_path)
    assert "2.0.0" in bundle_info(bundle, keyset.keyring)


def test_missing_token_object_is_a_clear_error(token: str) -> None:
    with pytest.raises(PycamError, match="cannot read the cert object") as err:
        pkcs11.load_cert(f"pkcs11:token={TOKEN};object=nothing-here;type=cert")
    assert "RAUC_PKCS11_MODULE" in err.value.hint


def test_pycam_bundle_signs_with_the_token(product, token: str, tmp_path: Path) -> None:
    """The real `pycam bundle` on the cached build, with a copy of the development PKI whose signing key
    was rotated into the token (rotate keeps the keyring, so the cached root is reused; the version lives
    in the app layer), so this is a bundle-only run."""
    from pycam.engine.build import build_dir

    cache = build_dir() / "cache"
    records = list(cache.glob(f"system-{product.board.name}-*/pycam-cache.json"))
    if os.geteuid() != 0 or not records:
        pytest.skip("needs root and a finished `pycam build` (its cache makes this a bundle-only run)")
    version = "0.0.1-pkcs11.1"
    pki_dir = tmp_path / "pki"
    shutil.copytree(keys.keys_dir(), pki_dir)
    keyset = keys.KeySet(pki_dir)
    _, cert = keys.rotate(keyset, key_uri=KEY_URI)
    out_dir = tmp_path / "build"
    out_dir.mkdir()
    (out_dir / "cache").symlink_to(cache)  # outputs apart, stages from the real cache
    env = {**os.environ, "PYCAM_KEYS_DIR": str(pki_dir), "PYCAM_BUILD_DIR": str(out_dir)}
    made = subprocess.run([sys.executable, "-m", "pycam", "bundle", "--board", product.board.name,
                           "--version", version], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    bundle = out_dir / product.board.name / f"{product.ota.product}-{product.board.name}-{version}.raucb"
    dump = subprocess.run(["rauc", f"--keyring={keys.KeySet(keys.keys_dir()).keyring}", "info", "--dump-cert",
                           str(bundle)], capture_output=True, text=True, check=True).stdout
    serial = cert.serial_number.to_bytes(20, "big").lstrip(b"\0").hex(":")
    assert serial in dump  # signed by the token's certificate, trusted by the development keyring
