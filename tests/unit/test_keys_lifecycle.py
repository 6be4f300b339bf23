"""Key lifecycle against the real rauc: rotation keeps old keyrings working, revocation reaches
devices through the keyring's CRL (RAUC check-crl, with the device's own generated system.conf),
expired certificates are refused, and the build's checks refuse what devices would refuse."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from pycam import ROOT, keys
from pycam.cli import main
from pycam.engine.bundle import make_bundle
from pycam.errors import PycamError
from pycam.generate.rauc import system_conf
from pycam.keys import pki
from tests.bundles import Signer, craft
from tests.unit.conftest import need

NOW = dt.datetime.now(dt.UTC)


def sign(product, keyset: keys.KeySet, tmp_path: Path, name: str) -> Path:
    """A verity bundle signed by keyset's current signing pair, with make_bundle (what `pycam bundle` runs)."""
    need("rauc", "mksquashfs")
    work = tmp_path / name
    work.mkdir()
    rootfs, kernel = work / "rootfs.squashfs", work / "kernel.vfat"
    rootfs.write_bytes(os.urandom(65536))
    kernel.write_bytes(os.urandom(65536))
    return make_bundle(product, keyset, rootfs=rootfs, kernel_vfat=kernel, version="1.0.0", build=name,
                       out=tmp_path / f"{name}.raucb", work=work)


def device_verify(product, bundle: Path, keyring: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`rauc info` with the device's system.conf (check-crl, signing time) and a given keyring."""
    conf = tmp_path / "system.conf"
    conf.write_text(system_conf(product))
    return subprocess.run(["rauc", f"--conf={conf}", f"--keyring={keyring}", "info", str(bundle)],
                          capture_output=True, text=True)


def snapshot(path: Path, to: Path) -> Path:
    shutil.copy2(path, to)
    return to


@pytest.fixture
def keyset(tmp_path: Path) -> keys.KeySet:
    return keys.init(tmp_path / "pki")


def test_device_config_checks_crls() -> None:
    from pycam.definition import load_product

    text = system_conf(load_product("qemuarm64"))
    assert "check-crl=true" in text and "use-bundle-signing-time=true" in text


def test_init_writes_an_empty_crl_into_the_keyring(keyset: keys.KeySet) -> None:
    from pycam.keys.checks import keyring_contents

    cas, crls = keyring_contents(keyset.keyring)
    assert [c.subject for c in cas] == [x509.load_pem_x509_certificate(keyset.ca_cert.read_bytes()).subject]
    assert len(crls) == 1 and len(crls[0]) == 0
    # a device refuses everything once its CRL lapses: it must last as long as the CA
    assert crls[0].next_update_utc == cas[0].not_valid_after_utc


def test_rotation_old_keyring_accepts_the_new_certificate(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    old_keyring = snapshot(keyset.keyring, tmp_path / "field-keyring.pem")
    old_bundle = sign(product, keyset, tmp_path, "old")
    old, new = keys.rotate(keyset)
    assert old is not None and old.serial_number != new.serial_number
    assert new.public_key() != old.public_key()
    new_bundle = sign(product, keyset, tmp_path, "new")
    # a device in the field (keyring from before the rotation) takes the new signer's bundle
    assert device_verify(product, new_bundle, old_keyring, tmp_path).returncode == 0
    # the next image's keyring still accepts both signers until one is revoked
    assert device_verify(product, new_bundle, keyset.keyring, tmp_path).returncode == 0
    assert device_verify(product, old_bundle, keyset.keyring, tmp_path).returncode == 0
    assert keys.check_signing_cert(keyset, release=False) == []


def test_revoked_certificate_is_refused_by_a_keyring_with_the_crl(product, keyset: keys.KeySet,
                                                                  tmp_path: Path) -> None:
    old_bundle = sign(product, keyset, tmp_path, "old")
    before = snapshot(keyset.keyring, tmp_path / "before.pem")
    old, _ = keys.rotate(keyset)
    assert old is not None
    keys.revoke(keyset, old.serial_number, reason="keyCompromise")
    new_bundle = sign(product, keyset, tmp_path, "new")
    refused = device_verify(product, old_bundle, keyset.keyring, tmp_path)
    assert refused.returncode != 0 and "certificate revoked" in refused.stderr + refused.stdout
    assert device_verify(product, new_bundle, keyset.keyring, tmp_path).returncode == 0
    # revocation travels with the keyring: a device still holding the earlier one does not know yet
    assert device_verify(product, old_bundle, before, tmp_path).returncode == 0


def test_expired_certificate_is_refused_by_rauc(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    keys.rotate(keyset, not_before=NOW - dt.timedelta(days=10), days=9)
    with pytest.raises(PycamError, match="expired on"):
        keys.check_signing_cert(keyset, release=False)
    with pytest.raises(PycamError, match="certificate has expired"):  # rauc bundle checks it too
        sign(product, keyset, tmp_path, "expired")
    bundle = craft(product, Signer(keyset.cert, keyset.key), tmp_path / "expired.raucb", version="1.0.0",
                   payload=65536)
    refused = device_verify(product, bundle, keyset.keyring, tmp_path)
    assert refused.returncode != 0 and "certificate has expired" in refused.stderr + refused.stdout


def test_ca_rotation_in_phases(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    """rotate --ca: both CAs trusted while the old one still signs; then the new one signs; then retire."""
    from pycam.keys.checks import keyring_contents

    field_keyring = snapshot(keyset.keyring, tmp_path / "field.pem")
    old_signed = sign(product, keyset, tmp_path, "old-signer")
    old_ca, new_ca = pki.rotate_ca(keyset)
    cas, crls = keyring_contents(keyset.keyring)
    assert [c.serial_number for c in cas] == [new_ca.serial_number, old_ca.serial_number] and len(crls) == 2
    assert keys.check_signing_cert(keyset, release=False) == []
    with pytest.raises(PycamError, match="sign with the new CA first"):
        pki.retire_ca(keyset, old_ca.serial_number)
    both_keyring = snapshot(keyset.keyring, tmp_path / "both.pem")
    assert device_verify(product, sign(product, keyset, tmp_path, "phase1"), field_keyring, tmp_path).returncode == 0

    old_signer, _ = keys.rotate(keyset)  # phase 2: sign with the new CA
    assert old_signer is not None
    new_signed = sign(product, keyset, tmp_path, "new-ca")
    assert device_verify(product, new_signed, both_keyring, tmp_path).returncode == 0
    # a device that never got the two-CA keyring cannot follow: why phase 1 must reach the fleet first
    assert device_verify(product, new_signed, field_keyring, tmp_path).returncode != 0

    keys.revoke(keyset, old_signer.serial_number)  # goes to the previous CA's CRL
    refused = device_verify(product, old_signed, keyset.keyring, tmp_path)
    assert "certificate revoked" in refused.stderr + refused.stdout

    pki.retire_ca(keyset, old_ca.serial_number)  # phase 3
    assert [c.serial_number for c in keyring_contents(keyset.keyring)[0]] == [new_ca.serial_number]
    assert device_verify(product, new_signed, keyset.keyring, tmp_path).returncode == 0
    refused = device_verify(product, old_signed, keyset.keyring, tmp_path)
    assert "unable to get local issuer certificate" in refused.stderr + refused.stdout
    assert keys.check_signing_cert(keyset, release=False) == []
    with pytest.raises(PycamError, match="no previous CA"):
        pki.retire_ca(keyset, old_ca.serial_number)


def test_build_refuses_a_revoked_signing_certificate(keyset: keys.KeySet) -> None:
    current = pki.load_cert(keyset.cert)
    keys.revoke(keyset, current.serial_number)
    with pytest.raises(PycamError, match="is revoked") as err:
        keys.check_signing_cert(keyset, release=False)
    assert "pycam keys rotate" in err.value.hint
    keys.rotate(keyset)
    assert keys.check_signing_cert(keyset, release=False) == []


def test_build_refuses_a_keyring_without_crl(keyset: keys.KeySet) -> None:
    keyset.crl.unlink()
    pki.write_keyring(keyset)
    with pytest.raises(PycamError, match="has no CRL") as err:
        keys.check_signing_cert(keyset, release=False)
    assert "init --if-missing" in err.value.hint
    assert keys.upgrade(keyset) is True  # what `pycam keys init --if-missing` runs on an old directory
    assert keys.check_signing_cert(keyset, release=False) == []
    assert keys.upgrade(keyset) is False


def test_build_refuses_a_certificate_from_another_ca(keyset: keys.KeySet, tmp_path: Path) -> None:
    other = keys.init(tmp_path / "other")
    shutil.copy2(other.cert_file, keyset.cert_file)
    with pytest.raises(PycamError, match="not issued by a CA in"):
        keys.check_signing_cert(keyset, release=False)


def test_warnings_before_ca_and_crl_lapse(keyset: keys.KeySet) -> None:
    ca = x509.load_pem_x509_certificate(keyset.ca_cert.read_bytes())
    # signing certificates end before the CA does; look at a time when only the CA and CRL are near their end
    keys.rotate(keyset, not_before=ca.not_valid_after_utc - dt.timedelta(days=200), days=365)
    near_ca_end = ca.not_valid_after_utc - dt.timedelta(days=100)
    warnings = keys.check_signing_cert(keyset, release=False, now=near_ca_end)
    assert any("the CA" in w and "expires on" in w for w in warnings)
    assert not any("CRL" in w for w in warnings)
    near_crl_end = ca.not_valid_after_utc - dt.timedelta(days=10)
    warnings = keys.check_signing_cert(keyset, release=False, now=near_crl_end)
    assert any("the CRL" in w and "lapses on" in w for w in warnings)
    assert any("signing certificate" in w for w in warnings)  # it ends with the CA
    with pytest.raises(PycamError, match=r"lapsed|expired"):
        keys.check_signing_cert(keyset, release=False, now=ca.not_valid_after_utc + dt.timedelta(days=1))


def test_revoke_refuses_what_it_cannot_revoke(keyset: keys.KeySet, tmp_path: Path) -> None:
    with pytest.raises(PycamError, match="no record of issuing"):
        keys.revoke(keyset, 0x1234)
    with pytest.raises(PycamError, match="unknown revocation reason"):
        keys.revoke(keyset, pki.load_cert(keyset.cert).serial_number, reason="bored")
    other = keys.init(tmp_path / "other")
    with pytest.raises(PycamError, match="was not issued by the CA"):
        pki.resolve_serial(keyset, str(other.cert_file))
    with pytest.raises(PycamError, match="neither a certificate file nor a hex serial"):
        pki.resolve_serial(keyset, "not-a-serial")
    serial = pki.load_cert(keyset.cert).serial_number
    keys.revoke(keyset, serial)
    with pytest.raises(PycamError, match="already revoked"):
        keys.revoke(keyset, serial)


def test_revoke_a_certificate_file_issued_elsewhere(keyset: keys.KeySet, tmp_path: Path) -> None:
    """A certificate the CA signed on another machine (not in issued/) can be revoked by its file."""
    ca_cert, ca_key = pki.load_ca(keyset)
    stray = pki.issue_signing_cert(ca_cert, ca_key, ec.generate_private_key(ec.SECP256R1()).public_key(),
                                   NOW, NOW + dt.timedelta(days=1))
    path = tmp_path / "stray.cert.pem"
    path.write_bytes(stray.public_bytes(pki.PEM))
    crl = keys.revoke(keyset, pki.resolve_serial(keyset, str(path)))
    assert crl.get_revoked_certificate_by_serial_number(stray.serial_number) is not None


def test_cli_rotate_revoke_status(keyset: keys.KeySet, capsys: pytest.CaptureFixture[str]) -> None:
    first = pki.load_cert(keyset.cert).serial_number
    assert main(["keys", "rotate", "--dir", str(keyset.directory)]) == 0
    assert main(["keys", "revoke", "--dir", str(keyset.directory), f"{first:x}"]) == 0
    assert main(["keys", "revoke", "--dir", str(keyset.directory), f"{first:x}"]) == 1
    assert main(["keys", "revoke", "--dir", str(keyset.directory), "--refresh"]) == 0
    capsys.readouterr()
    assert main(["keys", "status", "--dir", str(keyset.directory)]) == 0
    out = capsys.readouterr().out
    assert f"serial {first:x}" in out and "revoked" in out
    assert "CRL #3  1 revoked" in out  # init #1, revoke #2, refresh #3
    assert out.count("* signing") == 1


def test_no_private_key_is_tracked_by_git() -> None:
    need("git")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    marker = "PRIVATE" + " KEY-----"  # split so that this file does not match itself
    found = subprocess.run(["git", "-C", str(ROOT), "grep", "-l", "-e", marker], capture_output=True, text=True)
    assert found.stdout == "", f"private keys in git: {found.stdout}"
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "keys/dev/signing.key.pem",
                              "keys/dev/ca.key.pem", "anywhere/x.key.pem"], capture_output=True, text=True)
    assert len(ignored.stdout.split()) == 3


def test_cli_ca_rotation(keyset: keys.KeySet, capsys: pytest.CaptureFixture[str]) -> None:
    old_ca = x509.load_pem_x509_certificate(keyset.ca_cert.read_bytes())
    d = ["--dir", str(keyset.directory)]
    assert main(["keys", "rotate", "--ca", *d]) == 0
    assert main(["keys", "retire-ca", *d, f"{old_ca.serial_number:x}"]) == 1  # still signs
    assert main(["keys", "rotate", *d]) == 0
    assert main(["keys", "retire-ca", *d, f"{old_ca.serial_number:x}"]) == 0
    capsys.readouterr()
    assert main(["keys", "status", *d]) == 0
    out = capsys.readouterr().out
    assert "current CA" in out and "previous CA" not in out and "warning" not in out
    assert (keyset.retired_ca / f"{old_ca.serial_number:x}" / "ca.key.pem").exists()


def test_init_if_missing_upgrades_a_directory_without_crl(keyset: keys.KeySet) -> None:
    keyset.crl.unlink()
    pki.write_keyring(keyset)
    assert b"X509 CRL" not in keyset.keyring.read_bytes()
    assert main(["keys", "init", "--dir", str(keyset.directory), "--if-missing"]) == 0
    assert b"X509 CRL" in keyset.keyring.read_bytes()
    assert keys.check_signing_cert(keyset, release=False) == []


def test_signing_pair_from_paths_outside_the_key_directory(product, keyset: keys.KeySet, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Production keys from a path: PYCAM_SIGNING_KEY / PYCAM_SIGNING_CERT, checked and used like keys/dev's."""
    elsewhere = tmp_path / "hsm-export"
    elsewhere.mkdir()
    _, cert = keys.rotate(keyset)
    shutil.move(keyset.key_file, elsewhere / "release.key.pem")
    shutil.move(keyset.cert_file, elsewhere / "release.cert.pem")
    with pytest.raises(PycamError, match="missing signing key material"):
        keyset.require()
    monkeypatch.setenv("PYCAM_SIGNING_KEY", str(elsewhere / "release.key.pem"))
    monkeypatch.setenv("PYCAM_SIGNING_CERT", str(elsewhere / "release.cert.pem"))
    assert keys.check_signing_cert(keyset.require(), release=False) == []
    bundle = sign(product, keyset, tmp_path, "from-path")
    dump = subprocess.run(["rauc", f"--keyring={keyset.keyring}", "info", "--dump-cert", str(bundle)],
                          capture_output=True, text=True, check=True).stdout
    assert cert.serial_number.to_bytes(20, "big").lstrip(b"\0").hex(":") in dump
