"""A device's slots in files, for running a delta bundle's hook (ota/hooks/delta-install) on the host:
two slot pairs, a system.conf naming them and a kernel command line, as RAUC's hook sees them on a
device. Used for the default engine's bundles (tests/unit/test_delta.py) and for the content the Yocto
layer's copy of make-delta makes (tests/yocto/test_delta_recipe.py)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

SLOT_SIZE = 8 << 20


def images(directory: Path, seed: int, root: bytes | None = None) -> dict[str, Path]:
    """Slot class -> a small stand-in image (random root, a repetitive kernel partition)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rootfs, kernel = directory / "rootfs.squashfs", directory / "kernel.vfat"
    rootfs.write_bytes(root if root is not None else rng.randbytes(3 << 20))
    kernel.write_bytes(b"kernel" * 50000)
    return {"rootfs": rootfs, "kernel": kernel}


def changed(old: bytes) -> bytes:
    """An update: a few bytes changed early (everything after moves), a new block at the end."""
    return old[:4096] + b"new file contents" + old[4096:2 << 20] + os.urandom(64 << 10) + old[2 << 20:]


class Device:
    """bundle: a delta bundle's content (extracted, or as an engine made it before signing);
    base: slot class -> the image the running slots (slot A) hold."""

    def __init__(self, tmp: Path, bundle: Path, base: dict[str, Path]) -> None:
        self.bundle = bundle
        self.slots = {}
        for name, content in (("rootfs.0", base["rootfs"].read_bytes()), ("rootfs.1", b""),
                              ("kernel.0", base["kernel"].read_bytes()), ("kernel.1", b"")):
            path = tmp / name
            path.write_bytes(content + b"\xff" * (SLOT_SIZE - len(content)))  # an old image's tail follows
            self.slots[name] = path
        self.conf = tmp / "system.conf"
        self.conf.write_text("[system]\ncompatible=pycam-qemuarm64\nbootloader=uboot\n\n" + "".join(
            f"[slot.rootfs.{i}]\ndevice={self.slots[f'rootfs.{i}']}\ntype=raw\nbootname={b}\n\n"
            f"[slot.kernel.{i}]\ndevice={self.slots[f'kernel.{i}']}\ntype=raw\nparent=rootfs.{i}\n\n"
            for i, b in enumerate("AB")))
        self.cmdline = tmp / "cmdline"
        self.boot("A")

    def boot(self, slot: str) -> None:
        self.cmdline.write_text(f"console=ttyAMA0 root=/dev/vda4 rauc.slot={slot}\n")

    def hook(self, action: str, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "RAUC_SYSTEM_CONFIG": str(self.conf), "PYCAM_CMDLINE": str(self.cmdline),
                    "RAUC_SYSTEM_COMPATIBLE": "pycam-qemuarm64", "RAUC_MF_COMPATIBLE": "pycam-qemuarm64", **env}
        return subprocess.run([str(self.bundle / "delta-install"), action], env=full_env, capture_output=True,
                              text=True)

    def install(self, cls: str, target: str) -> subprocess.CompletedProcess[str]:
        return self.hook("slot-install", RAUC_SLOT_CLASS=cls, RAUC_SLOT_DEVICE=str(self.slots[target]))
