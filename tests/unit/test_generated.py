"""Generated files agree with the one product definition (partitions/, board/, ota/)."""

from __future__ import annotations

import configparser
import json
import re
import subprocess
from pathlib import Path

import pytest

from pycam.engine.diskimage import compile_boot_script, write_env_images
from pycam.generate.bootscript import boot_script, substitutions
from pycam.generate.fstab import DATA_BINDS, fstab
from pycam.generate.genimage import ENV_IMAGES, genimage_cfg
from pycam.generate.rauc import bundle_manifest, system_conf
from pycam.generate.systemd import watchdog_conf
from tests.unit.conftest import need


def test_boot_script_is_complete_and_compiles(product, tmp_path: Path) -> None:
    text = boot_script(product)
    assert not re.search(r"@[A-Z0-9_]+@", text), "unfilled placeholder"
    layout, board = product.layout, product.board
    for slot in layout.slots:
        assert f"setenv root_dev {board.linux_device(layout.slot_part(slot, 'rootfs'))}" in text
        assert f"setenv kernel_part {layout.slot_part(slot, 'kernel').number}" in text
    values = substitutions(product)
    assert int(values["ENV1_BLK"], 16) * 512 == layout.bootenv.offset
    assert int(values["ENV2_BLK"], 16) * 512 == layout.bootenv.redundant_offset
    assert "rauc.slot=${slot}" in text and "rootfstype=squashfs ro" in text
    need("mkimage")
    scr = compile_boot_script(product, tmp_path)
    info = subprocess.run(["mkimage", "-l", scr], check=True, capture_output=True, text=True).stdout
    assert "Script" in info


def test_system_conf_slots_follow_the_layout(product) -> None:
    conf = configparser.ConfigParser()
    conf.read_string(system_conf(product))
    assert conf["system"]["compatible"] == product.compatible
    assert conf["system"]["bootloader"] == "uboot"
    assert conf["system"]["data-directory"].startswith("/data/")
    board, layout = product.board, product.layout
    for index, slot in enumerate(layout.slots):
        root = conf[f"slot.rootfs.{index}"]
        assert root["bootname"] == slot
        assert root["device"] == board.linux_device(layout.slot_part(slot, "rootfs"))
        kernel = conf[f"slot.kernel.{index}"]
        assert kernel["parent"] == f"rootfs.{index}"
        assert kernel["device"] == board.linux_device(layout.slot_part(slot, "kernel"))


def test_fstab_mounts(product) -> None:
    rows = [line.split() for line in fstab(product).splitlines() if line and not line.startswith("#")]
    mounts = {row[1]: row for row in rows}
    assert mounts["/factory"][3].startswith("ro")
    assert mounts["/data"][0] == product.board.linux_device(product.layout.by_role("data")[0])
    for target, source in DATA_BINDS.items():
        assert mounts[target][0] == source and "bind" in mounts[target][3]


def test_watchdog_conf(product) -> None:
    conf = configparser.ConfigParser()
    conf.read_string(watchdog_conf(product.board))
    assert conf["Manager"]["RuntimeWatchdogSec"] == f"{product.board.watchdog_runtime_sec}s"


def test_bundle_manifest(product) -> None:
    conf = configparser.ConfigParser()
    conf.read_string(bundle_manifest(product, "1.2.3", "b", {"rootfs": "r.sq", "kernel": "k.vfat"}))
    assert conf["update"]["compatible"] == product.compatible
    assert conf["bundle"]["format"] == "verity"
    assert conf["image.rootfs"]["filename"] == "r.sq"


def test_genimage_disk_matches_the_layout(product, tmp_path: Path) -> None:
    """Run genimage on the generated config and read the GPT back: names, offsets, sizes, env area."""
    need("genimage", "sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4", "mkimage")
    inputs, out, tmp, empty = (tmp_path / d for d in ("in", "out", "tmp", "empty"))
    for d in (inputs, out, tmp, empty):
        d.mkdir()
    compile_boot_script(product, inputs)
    write_env_images(product, inputs)
    for name, size in (("kernel.vfat", 1 << 20), ("rootfs.squashfs", 1 << 20)):
        (inputs / name).write_bytes(b"\x5a" * size)
    cfg = tmp_path / "genimage.cfg"
    cfg.write_text(genimage_cfg(product, "disk.img"))
    subprocess.run(["genimage", "--config", cfg, "--inputpath", inputs, "--outputpath", out, "--tmppath", tmp,
                    "--rootpath", empty], check=True, capture_output=True)
    disk = out / "disk.img"
    table = json.loads(subprocess.run(["sfdisk", "--json", disk], check=True, capture_output=True,
                                      text=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    parts = table["partitions"]
    layout = product.layout
    assert [p["name"] for p in parts] == [p.name for p in layout.partitions]
    for got, want in zip(parts, layout.partitions, strict=True):
        assert got["size"] * 512 == want.size
        if want.offset is not None:
            assert got["start"] * 512 == want.offset
    data = disk.read_bytes()
    env = layout.bootenv
    assert data[env.offset:env.offset + env.size] == (inputs / ENV_IMAGES[0]).read_bytes()
    assert data[env.redundant_offset:env.redundant_offset + env.size] == (inputs / ENV_IMAGES[1]).read_bytes()
    assert parts[0]["start"] * 512 >= env.redundant_offset + env.size


def test_kernel_partition_image_is_reproducible(product, tmp_path: Path) -> None:
    """Fixed volume id, no time-stamped label, files stamped with the build epoch: deltas stay small."""
    need("genimage", "mkfs.vfat", "mcopy", "mdir")
    from pycam.engine.cache import Cache
    from pycam.engine.diskimage import KERNEL_FILES, build_kernel_vfat

    kernel = tmp_path / "kernel"
    kernel.mkdir()
    for name in KERNEL_FILES:
        (kernel / name).write_bytes(name.encode() * 1000)
    epoch = 1704067200  # 2024-01-01 00:00 UTC
    vfat = build_kernel_vfat(Cache(tmp_path / "cache"), product, kernel, epoch)
    listing = subprocess.run(["mdir", "-i", str(vfat), "::/"], check=True, capture_output=True, text=True,
                             env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}).stdout
    assert "has no label" in listing and "5043-4D4B" in listing
    stamped = [line for line in listing.splitlines() if line.split() and line.split()[0] in ("IMAGE", "initrd")]
    assert len(stamped) == 2 and all("2024-01-01" in line for line in stamped), listing


def test_kernel_image_is_sized_to_its_files_not_the_partition(product) -> None:
    """Each install writes the whole image: empty FAT space would be written to the card every time."""
    from pycam.errors import PycamError
    from pycam.generate.genimage import kernel_vfat_size

    partition = product.layout.by_role("kernel")[0].size
    content = 34_400_000  # Debian's arm64 Image + pycam's initramfs
    size = kernel_vfat_size(product, content)
    assert content < size < partition and size % (1 << 20) == 0
    with pytest.raises(PycamError, match="do not fit the kernel partition"):
        kernel_vfat_size(product, partition)
