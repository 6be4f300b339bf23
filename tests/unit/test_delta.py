"""Delta bundles: made on the host with xdelta3 and signed by the real rauc; the bundle's hook run
against slot images in files (the same code RAUC runs on the device, where tests/target proves it)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from pycam import keys
from pycam.definition import Product, load_product
from pycam.engine.bundle import bundle_info, make_bundle
from pycam.engine.delta import delta_name, make_delta_bundle
from pycam.errors import PycamError
from tests.slotfiles import Device, changed, images
from tests.unit.conftest import need


@pytest.fixture(scope="module")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> keys.KeySet:
    return keys.init(tmp_path_factory.mktemp("keys") / "dev")


@pytest.fixture(scope="module")
def release(product: Product, keyset: keys.KeySet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need("rauc", "mksquashfs", "xdelta3")
    tmp = tmp_path_factory.mktemp("release")
    base = images(tmp / "base", seed=1)
    full = make_bundle(product, keyset, rootfs=base["rootfs"], kernel_vfat=base["kernel"], version="1.0.0",
                       build="1.0.0+base", out=tmp / "base.raucb", work=tmp / "work")
    new = images(tmp / "new", seed=2, root=changed(base["rootfs"].read_bytes()))
    delta = make_delta_bundle(product, keyset, base_bundle=full, images=new, version="1.1.0", build="1.1.0+new",
                              out_dir=tmp, work=tmp / "work")
    return {"full": full, "delta": delta, **{f"base-{k}": v for k, v in base.items()},
            **{f"new-{k}": v for k, v in new.items()}}


def test_delta_bundle_is_signed_small_and_named_for_its_base(product: Product, keyset: keys.KeySet,
                                                             release: dict[str, Path]) -> None:
    delta = release["delta"]
    assert delta.name == delta_name(product, "1.1.0", "1.0.0") == "pycam-qemuarm64-1.1.0.delta-from-1.0.0.raucb"
    info = bundle_info(delta, keyset.keyring)
    assert "1.1.0" in info and "install-check" in info
    assert delta.stat().st_size < release["full"].stat().st_size / 10
    sidecar = (delta.parent / (delta.name + ".json")).read_text()
    assert '"base": "1.0.0"' in sidecar and '"method": "xdelta3"' in sidecar


def test_refuses_a_base_of_another_board(keyset: keys.KeySet, release: dict[str, Path], tmp_path: Path) -> None:
    other = load_product("raspberrypi4-64")
    with pytest.raises(PycamError, match="is for 'pycam-qemuarm64'"):
        make_delta_bundle(other, keyset, base_bundle=release["full"], images={}, version="2.0.0", build="x",
                          out_dir=tmp_path, work=tmp_path / "work")


def test_refuses_the_same_version_a_delta_base_and_a_missing_file(product: Product, keyset: keys.KeySet,
                                                                  release: dict[str, Path], tmp_path: Path) -> None:
    args = {"images": {}, "build": "x", "out_dir": tmp_path, "work": tmp_path / "work"}
    with pytest.raises(PycamError, match=r"same version 1\.0\.0"):
        make_delta_bundle(product, keyset, base_bundle=release["full"], version="1.0.0", **args)
    with pytest.raises(PycamError, match="is itself a delta bundle"):
        make_delta_bundle(product, keyset, base_bundle=release["delta"], version="1.2.0", **args)
    with pytest.raises(PycamError, match="no bundle at"):
        make_delta_bundle(product, keyset, base_bundle=tmp_path / "nope.raucb", version="1.2.0", **args)


def test_refuses_a_base_signed_by_someone_else(product: Product, release: dict[str, Path], tmp_path: Path) -> None:
    stranger = keys.init(tmp_path / "stranger")
    with pytest.raises(PycamError, match="rauc extract"):
        make_delta_bundle(product, stranger, base_bundle=release["full"], images={}, version="1.2.0", build="x",
                          out_dir=tmp_path, work=tmp_path / "work")


def extracted(tmp: Path, delta: Path, keyset: keys.KeySet) -> Path:
    out = tmp / "bundle"
    subprocess.run(["rauc", "extract", f"--keyring={keyset.keyring}", delta, out], check=True, capture_output=True)
    return out


@pytest.fixture
def device(tmp_path: Path, release: dict[str, Path], keyset: keys.KeySet) -> Device:
    need("losetup")
    base = {"rootfs": release["base-rootfs"], "kernel": release["base-kernel"]}
    return Device(tmp_path, extracted(tmp_path, release["delta"], keyset), base)


def test_hook_rebuilds_both_images_from_the_running_slots(device: Device, release: dict[str, Path]) -> None:
    check = device.hook("install-check")
    assert check.returncode == 0, check.stderr
    for cls in ("rootfs", "kernel"):
        done = device.install(cls, f"{cls}.1")
        assert done.returncode == 0, done.stderr
        assert "sha256 verified" in done.stdout
        new = release[f"new-{cls}"].read_bytes()
        assert device.slots[f"{cls}.1"].read_bytes()[:len(new)] == new
    # the running slots were only read
    assert device.slots["rootfs.0"].read_bytes()[:16] == release["base-rootfs"].read_bytes()[:16]


def test_hook_refuses_a_device_not_running_the_base(device: Device) -> None:
    device.boot("B")  # slot B holds no image at all
    check = device.hook("install-check")
    assert check.returncode >= 10  # RAUC's install-check rejection
    assert "delta base mismatch" in check.stderr.strip().splitlines()[-1]
    assert "install the full bundle" in check.stderr


def test_hook_checks_the_compatible(device: Device) -> None:
    check = device.hook("install-check", RAUC_MF_COMPATIBLE="pycam-raspberrypi4-64")
    assert check.returncode >= 10 and "wrong compatible" in check.stderr


def test_a_corrupt_patch_fails_the_slot_and_never_writes_the_running_one(device: Device) -> None:
    patch = device.bundle / "rootfs.xdelta"
    data = bytearray(patch.read_bytes())
    data[len(data) // 2] ^= 0xFF
    patch.write_bytes(bytes(data))
    before = device.slots["rootfs.0"].read_bytes()
    failed = device.install("rootfs", "rootfs.1")
    assert failed.returncode != 0 and 0 < failed.returncode < 10
    assert device.slots["rootfs.0"].read_bytes() == before


def test_a_wrong_result_is_caught_by_the_hash(device: Device) -> None:
    """If the running slot changed after install-check, the result is refused, never activated."""
    raw = bytearray(device.slots["rootfs.0"].read_bytes())
    raw[100] ^= 0xFF  # the running slot's data is not what the delta was made from
    device.slots["rootfs.0"].write_bytes(bytes(raw))
    failed = device.install("rootfs", "rootfs.1")
    assert failed.returncode == 1
    # xdelta3's window checksums or, past them, the whole image's sha256
    assert "xdelta3 failed" in failed.stderr or "expected" in failed.stderr


def test_hook_refuses_to_patch_the_running_slot_onto_itself(device: Device) -> None:
    failed = device.install("rootfs", "rootfs.0")
    assert failed.returncode == 1 and "onto itself" in failed.stderr


def test_a_layout_change_far_beyond_the_window_still_applies_from_a_block_device(
        product: Product, keyset: keys.KeySet, tmp_path: Path) -> None:
    """The device reads its slot through a loop device, which xdelta3 reads as a stream: a patch that
    refers further back than the decoder's window would fail there ("non-seekable source")."""
    need("rauc", "mksquashfs", "xdelta3", "losetup")
    old = random.Random(3).randbytes(40 << 20)
    new = old[24 << 20:] + old[:24 << 20] + os.urandom(64 << 10)  # the first 24 MiB moved to the end
    base = images(tmp_path / "base", seed=0, root=old)
    full = make_bundle(product, keyset, rootfs=base["rootfs"], kernel_vfat=base["kernel"], version="1.0.0",
                       build="b", out=tmp_path / "base.raucb", work=tmp_path / "work")
    new_images = images(tmp_path / "new", seed=0, root=new)
    make_delta_bundle(product, keyset, base_bundle=full, images=new_images, version="1.1.0", build="n",
                      out_dir=tmp_path, work=tmp_path / "work")
    (tmp_path / "device").mkdir()
    delta = tmp_path / delta_name(product, "1.1.0", "1.0.0")
    device = Device(tmp_path / "device", extracted(tmp_path / "device", delta, keyset), base)
    done = device.install("rootfs", "rootfs.1")
    assert done.returncode == 0, done.stderr
    assert device.slots["rootfs.1"].read_bytes()[:len(new)] == new
