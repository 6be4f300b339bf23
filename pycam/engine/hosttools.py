"""Checks that the build host can run the engine, before any stage starts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pycam import ROOT
from pycam.errors import PycamError

SETUP = "sudo scripts/setup-host"

# tool -> Debian package (the package list itself is scripts/host-packages.txt)
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mksquashfs": "squashfs-tools",
    "genimage": "genimage",
    "mkimage": "u-boot-tools",
    "rauc": "rauc",
    "bmaptool": "bmap-tools",
    "depmod": "kmod",
    "cpio": "cpio",
    "zstd": "zstd",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk",
    "aarch64-linux-gnu-strip": "binutils-aarch64-linux-gnu",
    "systemctl": "systemd",
    "eatmydata": "eatmydata",
    "xdelta3": "xdelta3",
}
QEMU_TOOLS = {"qemu-system-aarch64": "qemu-system-arm", "qemu-img": "qemu-utils"}

MIN_FREE_BYTES = 4 * 1024**3


def host_packages() -> list[str]:
    text = (ROOT / "scripts" / "host-packages.txt").read_text()
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def missing_packages() -> list[str]:
    """Packages of scripts/host-packages.txt that dpkg does not have installed."""
    wanted = host_packages()
    result = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *wanted],
                            capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in wanted if p not in installed]


def missing_tools(tools: dict[str, str]) -> list[str]:
    return [f"{tool} (Debian package {pkg})" for tool, pkg in tools.items() if shutil.which(tool) is None]


def require_tools(tools: dict[str, str] = TOOLS) -> None:
    missing = missing_tools(tools)
    if missing:
        raise PycamError("missing host tools: " + ", ".join(missing), f"run: {SETUP}")


BINFMT = Path("/proc/sys/fs/binfmt_misc")


def require_binfmt(arch: str, binfmt: Path = BINFMT) -> None:
    """mmdebstrap runs the foreign root's maintainer scripts through qemu-user."""
    if arch != "arm64":
        raise PycamError(f"architecture {arch!r} is not supported by the default engine (arm64 only)")
    status = binfmt / "status"
    handler = binfmt / "qemu-aarch64"
    if not status.exists():
        raise PycamError("binfmt_misc is not mounted, so arm64 programs cannot run in the build chroot",
                         f"run: {SETUP}")
    if not handler.exists() or not handler.read_text().startswith("enabled"):
        raise PycamError("no enabled qemu-aarch64 binfmt handler: arm64 chroots cannot run", f"run: {SETUP}")


def require_root() -> None:
    if os.geteuid() != 0:
        raise PycamError(
            "the default engine must run as root (mmdebstrap's root mode, loop-free genimage, file ownership)",
            "run it with sudo",
        )


def require_space(path: Path, needed: int = MIN_FREE_BYTES) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < needed:
        raise PycamError(
            f"only {free // 1024**2} MiB free under {path}; a build needs about {needed // 1024**2} MiB",
            "free some space, or set PYCAM_BUILD_DIR to a directory on a bigger disk",
        )
