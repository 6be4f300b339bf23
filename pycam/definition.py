"""The product definition: board/, partitions/ and ota/ read into typed objects.

Every engine and tool reads the product through this module, so a fact (a partition
size, a slot's device, the compatible string) lives in exactly one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pycam import ROOT
from pycam.errors import PycamError

_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$")


def parse_size(value: object, what: str) -> int:
    """'16MiB' -> bytes. Binary units only: a partition table has no use for 1000s."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise PycamError(f"{what}: cannot read size {value!r}", "write a size like 512KiB, 16MiB or 1GiB")
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PycamError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PycamError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PycamError(f"{path} must hold a mapping")
    return data


def _require(data: dict[str, Any], key: str, where: Path) -> Any:
    if key not in data:
        raise PycamError(f"{where}: missing key '{key}'")
    return data[key]


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based position in the partition table
    name: str
    role: str  # boot | kernel | rootfs | factory | data
    fs: str  # vfat | squashfs | ext4
    size: int
    offset: int | None = None
    slot: str | None = None  # A | B for slot partitions
    mount: str | None = None
    mount_options: str = "defaults"


@dataclass(frozen=True)
class BootEnv:
    offset: int
    size: int
    redundant_offset: int


ROLES = {"boot", "kernel", "rootfs", "factory", "data"}
FILESYSTEMS = {"vfat", "squashfs", "ext4"}


@dataclass(frozen=True)
class Layout:
    name: str
    table: str
    disk_size: int
    bootenv: BootEnv
    partitions: tuple[Partition, ...]

    def by_role(self, role: str) -> list[Partition]:
        return [p for p in self.partitions if p.role == role]

    @property
    def slots(self) -> list[str]:
        """Boot names in order: ['A', 'B']."""
        return sorted({p.slot for p in self.partitions if p.slot})

    def slot_part(self, slot: str, role: str) -> Partition:
        for part in self.partitions:
            if part.slot == slot and part.role == role:
                return part
        raise KeyError(f"{role} of slot {slot}")


def load_layout(path: Path) -> Layout:
    data = _load_yaml(path)
    env = _require(data, "bootenv", path)
    bootenv = BootEnv(
        offset=parse_size(env["offset"], f"{path}: bootenv.offset"),
        size=parse_size(env["size"], f"{path}: bootenv.size"),
        redundant_offset=parse_size(env["redundant-offset"], f"{path}: bootenv.redundant-offset"),
    )
    parts: list[Partition] = []
    for number, raw in enumerate(_require(data, "partitions", path), start=1):
        where = f"{path}: partition {raw.get('name', number)}"
        role, fs = raw.get("role"), raw.get("fs")
        if role not in ROLES:
            raise PycamError(f"{where}: role {role!r} is not one of {sorted(ROLES)}")
        if fs not in FILESYSTEMS:
            raise PycamError(f"{where}: fs {fs!r} is not one of {sorted(FILESYSTEMS)}")
        if role in ("kernel", "rootfs") and raw.get("slot") not in ("A", "B"):
            raise PycamError(f"{where}: a {role} partition needs slot: A or B")
        parts.append(
            Partition(
                number=number,
                name=raw["name"],
                role=role,
                fs=fs,
                size=parse_size(raw["size"], f"{where}: size"),
                offset=parse_size(raw["offset"], f"{where}: offset") if "offset" in raw else None,
                slot=raw.get("slot"),
                mount=raw.get("mount"),
                mount_options=raw.get("mount-options", "defaults"),
            )
        )
    layout = Layout(
        name=data.get("name", path.stem),
        table=data.get("table", "gpt"),
        disk_size=parse_size(_require(data, "disk-size", path), f"{path}: disk-size"),
        bootenv=bootenv,
        partitions=tuple(parts),
    )
    _check_layout(layout, path)
    return layout


def _check_layout(layout: Layout, path: Path) -> None:
    env = layout.bootenv
    first = layout.partitions[0].offset or 0
    if env.redundant_offset < env.offset + env.size:
        raise PycamError(f"{path}: the two bootenv copies overlap")
    if env.redundant_offset + env.size > first:
        raise PycamError(f"{path}: bootenv must end before the first partition (offset {first})")
    for slot in layout.slots:
        for role in ("kernel", "rootfs"):
            if not any(p.slot == slot and p.role == role for p in layout.partitions):
                raise PycamError(f"{path}: slot {slot} has no {role} partition",
                                 "every slot needs one kernel and one rootfs partition")
    total = (first or 0) + sum(p.size for p in layout.partitions)
    if total > layout.disk_size:
        raise PycamError(f"{path}: partitions need {total} bytes but disk-size is {layout.disk_size}")


@dataclass(frozen=True)
class Board:
    name: str
    path: Path  # board/<name>/
    description: str
    arch: str
    layout_name: str
    disk_linux: str
    partition_prefix: str
    uboot_iface: str
    uboot_devnum: str
    uboot_binary: str | None
    loadaddr: dict[str, str]
    console: str
    cmdline: str
    modules: tuple[str, ...]
    initramfs_modules: tuple[str, ...]
    load_modules: tuple[str, ...]  # loaded at every boot (no hardware to autoload them, e.g. vivid)
    watchdog_device: str
    watchdog_runtime_sec: int
    watchdog_reboot_sec: int
    hardware: dict[str, Any]
    qemu: dict[str, Any] = field(default_factory=dict)
    yocto_machine: str = ""
    # the device tree U-Boot hands to the kernel (the Raspberry Pi firmware's is ${fdt_addr})
    fdt_addr: str = "${fdtcontroladdr}"
    # also list the boot partition in a hybrid MBR (boot ROMs that cannot read GPT: BCM2710)
    hybrid_mbr: bool = False

    def linux_device(self, part: Partition) -> str:
        return f"{self.disk_linux}{self.partition_prefix}{part.number}"

    @property
    def app_config(self) -> Path:
        return self.path / "app.toml"


def available_boards(root: Path = ROOT) -> list[str]:
    return sorted(p.parent.name for p in (root / "board").glob("*/board.yml"))


def load_board(name: str, root: Path = ROOT) -> Board:
    path = root / "board" / name / "board.yml"
    if not path.exists():
        raise PycamError(
            f"unknown board {name!r}",
            f"choose one of: {', '.join(available_boards(root)) or '(none)'} (a board is board/<name>/board.yml)",
        )
    data = _load_yaml(path)
    disk, boot, kernel = data.get("disk", {}), data.get("bootloader", {}), data.get("kernel", {})
    watchdog = data.get("watchdog", {})
    iface, _, devnum = str(disk.get("uboot", "mmc 0")).partition(" ")
    return Board(
        name=name,
        path=path.parent,
        description=data.get("description", name),
        arch=_require(data, "arch", path),
        layout_name=_require(data, "layout", path),
        disk_linux=_require(disk, "linux", path),
        partition_prefix=disk.get("partition-prefix", ""),
        uboot_iface=iface,
        uboot_devnum=devnum or "0",
        uboot_binary=boot.get("uboot-binary"),
        loadaddr={k: str(v) for k, v in boot.get("loadaddr", {}).items()},
        console=_require(kernel, "console", path),
        cmdline=kernel.get("cmdline", ""),
        modules=tuple(kernel.get("modules", [])),
        initramfs_modules=tuple(kernel.get("initramfs-modules", [])),
        load_modules=tuple(kernel.get("load", [])),
        watchdog_device=watchdog.get("device", "/dev/watchdog0"),
        watchdog_runtime_sec=int(watchdog.get("runtime-sec", 20)),
        watchdog_reboot_sec=int(watchdog.get("reboot-sec", 60)),
        hardware=data.get("hardware", {}),
        qemu=data.get("qemu", {}),
        yocto_machine=data.get("yocto", {}).get("machine", name),
        fdt_addr=str(boot.get("fdt", "${fdtcontroladdr}")),
        hybrid_mbr=bool(disk.get("hybrid-mbr", False)),
    )


@dataclass(frozen=True)
class OtaPolicy:
    product: str
    version: str
    compatible_template: str
    bundle_format: str
    bundle_mksquashfs_args: str
    attempts: int
    order: tuple[str, ...]
    boot_script: Path
    health_timeout_sec: int

    def compatible(self, board: Board) -> str:
        return self.compatible_template.format(board=board.name, product=self.product)


def load_ota(root: Path = ROOT) -> OtaPolicy:
    path = root / "ota" / "ota.yml"
    data = _load_yaml(path)
    boot = data.get("boot", {})
    return OtaPolicy(
        product=_require(data, "product", path),
        version=str(_require(data, "version", path)),
        compatible_template=_require(data, "compatible", path),
        bundle_format=data.get("bundle", {}).get("format", "verity"),
        bundle_mksquashfs_args=str(data.get("bundle", {}).get("mksquashfs-args", "")),
        attempts=int(boot.get("attempts", 3)),
        order=tuple(boot.get("order", ["A", "B"])),
        boot_script=root / boot.get("script", "ota/boot.cmd.in"),
        health_timeout_sec=int(data.get("health", {}).get("timeout-sec", 300)),
    )


@dataclass(frozen=True)
class Product:
    """One board's firmware: the board, its partition layout and the update policy."""

    root: Path
    board: Board
    layout: Layout
    ota: OtaPolicy

    @property
    def compatible(self) -> str:
        return self.ota.compatible(self.board)


def load_product(board_name: str, root: Path = ROOT) -> Product:
    board = load_board(board_name, root)
    layout = load_layout(root / "partitions" / f"{board.layout_name}.yml")
    return Product(root=root, board=board, layout=layout, ota=load_ota(root))
