"""Development PKI made with cryptography, checked by the real rauc: sign, verify, refuse tampering."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
from pathlib import Path

import pytest

from pycam import keys
from pycam.engine.bundle import bundle_info, make_bundle
from pycam.errors import PycamError
from tests.unit.conftest import need


@pytest.fixture(scope="module")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> keys.KeySet:
    return keys.init(tmp_path_factory.mktemp("keys") / "dev")


def test_private_keys_are_private(keyset: keys.KeySet) -> None:
    for path in (keyset.key, keyset.ca_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyset.directory.stat().st_mode) == 0o700


def test_init_refuses_to_overwrite(keyset: keys.KeySet) -> None:
    with pytest.raises(PycamError, match="already holds a CA"):
        keys.init(keyset.directory)


def test_missing_key_material_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(PycamError) as err:
        keys.KeySet(tmp_path).require()
    assert "signing.key.pem" in str(err.value) and "pycam keys init" in err.value.hint


def _bundle(product, keyset: keys.KeySet, tmp_path: Path) -> Path:
    rootfs, kernel = tmp_path / "rootfs.squashfs", tmp_path / "kernel.vfat"
    rootfs.write_bytes(os.urandom(65536))  # incompressible: RAUC wants a payload larger than a block
    kernel.write_bytes(os.urandom(65536))
    return make_bundle(product, keyset, rootfs=rootfs, kernel_vfat=kernel, version="9.9.9", build="test",
                       out=tmp_path / "test.raucb", work=tmp_path / "work")


def test_rauc_verifies_a_bundle_signed_with_these_keys(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    need("rauc", "mksquashfs")
    bundle = _bundle(product, keyset, tmp_path)
    info = bundle_info(bundle, keyset.keyring)
    assert f"Compatible:  \t'{product.compatible}'" in info or product.compatible in info
    assert "9.9.9" in info and "verity" in info
    assert not list(tmp_path.glob(".*.tmp"))


def test_rauc_refuses_a_foreign_keyring(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    need("rauc", "mksquashfs")
    bundle = _bundle(product, keyset, tmp_path)
    other = keys.init(tmp_path / "other")
    with pytest.raises(PycamError, match="rauc info failed"):
        bundle_info(bundle, other.keyring)


def test_rauc_refuses_a_bundle_with_a_damaged_signature(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    # (a damaged payload passes `rauc info`: dm-verity rejects its blocks when it is installed)
    need("rauc", "mksquashfs")
    bundle = _bundle(product, keyset, tmp_path)
    data = bytearray(bundle.read_bytes())
    # the bundle ends with the CMS signature and an 8-byte size; the signer's ECDSA value
    # is the last field of the CMS structure, just before that size
    data[-20] ^= 0xFF
    bundle.write_bytes(bytes(data))
    result = subprocess.run(["rauc", "info", f"--keyring={keyset.keyring}", str(bundle)],
                            capture_output=True, text=True)
    assert result.returncode != 0


def test_release_builds_refuse_development_keys(keyset: keys.KeySet) -> None:
    assert keys.check_signing_cert(keyset, release=False) == []
    with pytest.raises(PycamError, match="release build refuses the development signing key"):
        keys.check_signing_cert(keyset, release=True)


def test_expiry_warns_then_refuses(keyset: keys.KeySet) -> None:
    import datetime as dt

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=keys.SIGNING_DAYS - 10)
    warnings = keys.check_signing_cert(keyset, release=False, now=soon)
    assert len(warnings) == 1 and "expires on" in warnings[0]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=keys.SIGNING_DAYS + 1)
    with pytest.raises(PycamError, match="expired on"):
        keys.check_signing_cert(keyset, release=False, now=later)


def test_bundle_squashfs_options_come_from_ota_yml(product, keyset: keys.KeySet, tmp_path: Path) -> None:
    """ota.yml bundle.mksquashfs-args reaches mksquashfs (the Yocto layer passes the same via BUNDLE_ARGS)."""
    need("rauc", "mksquashfs", "unsquashfs")
    zstd = dataclasses.replace(product, ota=dataclasses.replace(product.ota, bundle_mksquashfs_args="-comp zstd"))
    for variant, compressor in ((product, "gzip" if not product.ota.bundle_mksquashfs_args else None),
                                (zstd, "zstd")):
        work = tmp_path / (compressor or "configured")
        work.mkdir()
        bundle = _bundle(variant, keyset, work)
        superblock = subprocess.run(["unsquashfs", "-s", str(bundle)], capture_output=True, text=True).stdout
        if compressor:
            assert f"Compression {compressor}" in superblock, superblock
