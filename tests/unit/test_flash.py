"""`pycam flash`: refuses what is not a removable whole block device; verifies what it wrote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pycam.errors import PycamError
from pycam.flash import bmap_ranges, check_target, flash, verify
from tests.unit.conftest import need


@pytest.fixture
def image(tmp_path: Path) -> Path:
    need("bmaptool")
    img = tmp_path / "test.img"
    with img.open("wb") as f:
        f.truncate(8 << 20)
        f.seek(1 << 20)
        f.write(b"pycam" * 50000)
        f.seek(6 << 20)
        f.write(b"\xa5" * 300000)
    subprocess.run(["bmaptool", "create", "-o", f"{img}.bmap", img], check=True, capture_output=True)
    return img


def test_refuses_a_regular_file(image: Path, tmp_path: Path) -> None:
    target = tmp_path / "not-a-device"
    target.write_bytes(b"")
    with pytest.raises(PycamError, match="not a block device"):
        flash(image, target)


def test_refuses_a_missing_device(image: Path) -> None:
    with pytest.raises(PycamError, match="does not exist"):
        flash(image, Path("/dev/pycam-no-such-disk"))


def test_refuses_a_missing_image(tmp_path: Path) -> None:
    with pytest.raises(PycamError, match="does not exist"):
        flash(tmp_path / "nope.img", Path("/dev/null"))


def test_verify_notices_a_bad_write(image: Path, tmp_path: Path) -> None:
    copy = tmp_path / "written.img"
    shutil.copy(image, copy)
    assert verify(copy, Path(f"{image}.bmap")) > 0
    block_size, _, ranges = bmap_ranges(Path(f"{image}.bmap"))
    with copy.open("r+b") as f:
        f.seek(ranges[-1][0] * block_size + 10)
        f.write(b"X")
    with pytest.raises(PycamError, match="verification failed"):
        verify(copy, Path(f"{image}.bmap"))


@pytest.fixture
def loop_device(tmp_path: Path):
    need("losetup")
    backing = tmp_path / "card.img"
    with backing.open("wb") as f:
        f.truncate(16 << 20)
    result = subprocess.run(["losetup", "--find", "--show", backing], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"no loop devices here: {result.stderr.strip()}")
    device = Path(result.stdout.strip())
    yield device
    subprocess.run(["losetup", "-d", device], check=False)


def test_a_fixed_disk_needs_force_then_is_written_and_verified(image: Path, loop_device: Path) -> None:
    # a loop device reports removable=0, like the build host's own disk
    with pytest.raises(PycamError, match="not a removable device"):
        check_target(loop_device, image.stat().st_size, force=False)
    flash(image, loop_device, force=True)
    assert verify(loop_device, Path(f"{image}.bmap")) > 0
