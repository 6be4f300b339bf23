"""`pycam flash`: write an image to an SD card or USB stick with bmaptool, then read it back.

Refuses, unless forced, anything that is not a whole, unmounted, removable block device:
a typo in DEVICE must never overwrite the build host's own disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from pycam.engine.run import run
from pycam.errors import PycamError
from pycam.log import log, stage


def _sysfs(device: Path) -> Path:
    return Path("/sys/class/block") / device.resolve().name


def removable(device: Path) -> bool:
    sys = _sysfs(device)
    if (sys / "removable").exists() and (sys / "removable").read_text().strip() == "1":
        return True
    # SD cards behind the SoC's controller and many USB readers report removable=0
    real = str((sys / "device").resolve()) if (sys / "device").exists() else ""
    return device.resolve().name.startswith("mmcblk") or "/usb" in real


def mounted_partitions(device: Path) -> list[str]:
    name = device.resolve().name
    mounts = Path("/proc/mounts").read_text().splitlines()
    return [m.split()[1] for m in mounts if Path(m.split()[0]).name.startswith(name)]


def check_target(device: Path, image_size: int, force: bool) -> None:
    if not device.exists():
        raise PycamError(f"{device} does not exist", "name the card's device, e.g. /dev/sdb or /dev/mmcblk0 (lsblk)")
    if not stat.S_ISBLK(device.stat().st_mode):
        raise PycamError(f"{device} is not a block device", "name the whole card, e.g. /dev/sdb (lsblk)")
    sys = _sysfs(device)
    if (sys / "partition").exists():
        raise PycamError(f"{device} is a partition", "name the whole device, not one of its partitions")
    if not removable(device) and not force:
        raise PycamError(
            f"{device} is not a removable device (SD card reader or USB): refusing to overwrite it",
            "check lsblk; if this really is the target, pass --force",
        )
    mounted = mounted_partitions(device)
    if mounted:
        raise PycamError(f"{device} has mounted partitions ({', '.join(mounted)})",
                         f"unmount them: umount {' '.join(mounted)}")
    size = int((sys / "size").read_text()) * 512 if (sys / "size").exists() else 0
    if size and size < image_size:
        raise PycamError(f"{device} holds {size} bytes but the image needs {image_size}", "use a bigger card")


def bmap_ranges(bmap: Path) -> tuple[int, str, list[tuple[int, int, str]]]:
    """(block size, checksum type, [(first block, last block, checksum)])."""
    root = ET.parse(bmap).getroot()
    block_size = int(root.findtext("BlockSize", "4096").strip())
    kind = root.findtext("ChecksumType", "sha256").strip()
    ranges = []
    for rng in root.iter("Range"):
        text = (rng.text or "").strip()
        first, _, last = text.partition("-")
        ranges.append((int(first), int(last or first), rng.get("chksum", "")))
    return block_size, kind, ranges


def verify(device: Path, bmap: Path) -> int:
    """Read the mapped ranges back from the device and compare their checksums; returns bytes checked."""
    block_size, kind, ranges = bmap_ranges(bmap)
    checked = 0
    fd = os.open(device, os.O_RDONLY)
    try:
        for first, last, expected in ranges:
            h = hashlib.new(kind)
            offset, remaining = first * block_size, (last - first + 1) * block_size
            while remaining:
                chunk = os.pread(fd, min(remaining, 1 << 22), offset)
                if not chunk:
                    raise PycamError(f"{device} ended early at byte {offset} while verifying")
                h.update(chunk)
                offset += len(chunk)
                remaining -= len(chunk)
            if expected and h.hexdigest() != expected:
                raise PycamError(
                    f"verification failed: blocks {first}-{last} on {device} differ from the image",
                    "the card may be faulty or counterfeit; try another card",
                )
            checked += (last - first + 1) * block_size
    finally:
        os.close(fd)
    return checked


def flash(image: Path, device: Path, force: bool = False, bmap: Path | None = None) -> None:
    if not image.is_file():
        raise PycamError(f"image {image} does not exist", "build it with: pycam build")
    bmap = bmap or image.with_name(image.name + ".bmap")
    if not bmap.is_file():
        raise PycamError(f"no block map {bmap}", "pass --bmap, or rebuild: pycam build writes IMAGE.bmap")
    check_target(device, image.stat().st_size, force)
    with stage("flash"):
        run(["bmaptool", "copy", "--bmap", bmap, image, device], what="bmaptool copy", stream=True)
    with stage("verify"):
        checked = verify(device, bmap)
    log.info("%s written and verified (%d MiB read back)", device, checked // 1024**2)
