"""The wic layout (Yocto) and genimage.cfg (default engine) describe the same disk."""

from __future__ import annotations

import inspect
import re
import shlex
from dataclasses import dataclass

import pytest

from pycam.definition import Product, load_product
from pycam.generate.genimage import genimage_cfg
from pycam.generate.wks import GPT_TYPE_GUID

from .conftest import BOARDS, LAYER

UNITS = {"": 1024, "K": 1024, "M": 1024**2, "G": 1024**3}  # wic's default unit for --offset is KiB


@dataclass(frozen=True)
class Area:
    name: str
    offset: int
    size: int
    gpt_type: str | None  # GUID; None for raw areas outside the table
    bootable: bool = False


def _wic_bytes(value: str, default: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", value)
    assert match, value
    return int(match.group(1)) * UNITS[match.group(2) or default]


def parse_wks(text: str) -> tuple[str, list[Area], list[Area], list[str]]:
    """(ptable, partitions in table order, raw areas, names of --mbr partitions)."""
    ptable, table, raw, mbr = "", [], [], []
    for line in text.splitlines():
        if line.startswith("bootloader"):
            args = shlex.split(line)
            ptable = args[args.index("--ptable") + 1]
        if not line.startswith("part "):
            continue
        args = shlex.split(line)
        opt: dict[str, str] = {}
        for i, arg in enumerate(args):
            if arg.startswith("--") and "=" in arg:  # --sourceparams="file=x" / --fstype=ext4
                key, _, value = arg.partition("=")
                opt[key] = value
            elif arg.startswith("--") and i + 1 < len(args):
                opt[arg] = args[i + 1]
        offset = _wic_bytes(opt["--offset"], "K")
        size = _wic_bytes(opt["--fixed-size"], "M")
        if "--no-table" in args:
            raw.append(Area(opt["--sourceparams"], offset, size, None))
        else:
            name = opt["--part-name"]
            table.append(Area(name, offset, size, opt["--part-type"], "--active" in args))
            if "--mbr" in args:
                mbr.append(name)
    return ptable, table, raw, mbr


def parse_genimage(text: str) -> tuple[str, list[Area], list[Area]]:
    """The hdimage of genimage.cfg: (table type, partitions in table order, raw areas)."""
    disk = text[text.index("hdimage"):]
    table_type = re.search(r'partition-table-type = "(\w+)"', disk)
    assert table_type
    table, raw = [], []
    for name, body in re.findall(r"partition (\S+) \{(.*?)\n\t\}", disk, re.S):
        fields = dict(re.findall(r'^\s*([\w-]+) = "?([^"\n]*)"?$', body, re.M))
        area = Area(name, int(fields.get("offset", -1)), int(fields["size"]),
                    None if fields.get("in-partition-table") == "false" else fields["partition-type-uuid"],
                    fields.get("bootable") == "true")
        (raw if area.gpt_type is None else table).append(area)
    return table_type.group(1), table, raw


def _genimage(product: Product) -> str:
    # older genimage_cfg() also took the kernel partition's file list (irrelevant to the table)
    if "kernel_files" in inspect.signature(genimage_cfg).parameters:
        return genimage_cfg(product, "disk.img", ["Image", "initrd.img"])  # type: ignore[call-arg]
    return genimage_cfg(product, "disk.img")


@pytest.mark.parametrize("board", BOARDS)
def test_wks_and_genimage_describe_the_same_disk(board: str) -> None:
    product = load_product(board)
    wks_text = (LAYER / "wic" / f"pycam-{product.board.yocto_machine}.wks.in").read_text()
    ptable, wic_parts, wic_raw, mbr = parse_wks(wks_text)
    genimage = _genimage(product)
    table_type, gen_parts, gen_raw = parse_genimage(genimage)

    # genimage packs partitions without an offset right after the previous one
    cursor, packed = 0, []
    for part in gen_parts:
        start = part.offset if part.offset >= 0 else cursor
        packed.append(Area(part.name, start, part.size, GPT_TYPE_GUID[part.gpt_type], part.bootable))
        cursor = start + part.size

    assert [(p.name, p.offset, p.size, p.gpt_type, p.bootable) for p in wic_parts] == \
           [(p.name, p.offset, p.size, p.gpt_type, p.bootable) for p in packed]
    # the U-Boot environment copies: same offsets and sizes, outside the table
    assert [(a.offset, a.size) for a in wic_raw] == [(a.offset, a.size) for a in gen_raw]
    env = product.layout.bootenv
    assert [(a.offset, a.size) for a in wic_raw] == [(env.offset, env.size), (env.redundant_offset, env.size)]
    # a hybrid MBR is GPT plus an MBR entry for the boot partition (BCM2710 boot ROM)
    assert table_type == product.layout.table == "gpt"
    if product.board.hybrid_mbr:
        assert (ptable, mbr) == ("gpt-hybrid", ["boot"])
    else:
        assert (ptable, mbr) == ("gpt", [])


@pytest.mark.parametrize("board", BOARDS)
def test_wks_partitions_match_the_linux_devices(board: str) -> None:
    """GPT numbers in the wks are the numbers fstab, system.conf and the boot script use."""
    product = load_product(board)
    machine = product.board.yocto_machine
    _, wic_parts, _, _ = parse_wks((LAYER / "wic" / f"pycam-{machine}.wks.in").read_text())
    assert [p.name for p in wic_parts] == [p.name for p in product.layout.partitions]
    system_conf = (LAYER / f"recipes-core/rauc/files/{machine}/system.conf").read_text()
    for slot in product.layout.slots:
        root = product.layout.slot_part(slot, "rootfs")
        assert f"device={product.board.linux_device(root)}" in system_conf
