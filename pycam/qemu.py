"""Booting a built image in QEMU: `pycam qemu`, and the labgrid environment the tests use.

The VM boots a persistent working copy of the disk image, so the U-Boot environment, the
boot counters and /data survive restarts, as they would on a board's flash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pycam.definition import Product
from pycam.engine import hosttools
from pycam.engine.build import build_dir, outputs
from pycam.errors import PycamError
from pycam.log import log


def machine_args(product: Product) -> list[str]:
    """Everything but the machine/cpu/memory, disk and serial (labgrid adds those itself)."""
    q = product.board.qemu
    return ["-smp", str(q.get("smp", 1)), *q.get("devices", [])]


def bios(product: Product) -> str:
    path = product.board.uboot_binary
    if not path or not Path(path).exists():
        raise PycamError(f"U-Boot for {product.board.name} not found at {path}", f"run: {hosttools.SETUP}")
    return path


def working_copy(product: Product, fresh: bool = False, disk: Path | None = None) -> Path:
    image = outputs(product, product.ota.version).disk
    copy = disk or build_dir() / product.board.name / "qemu" / "disk.img"
    if copy.exists() and not fresh:
        if image.exists() and image.stat().st_mtime > copy.stat().st_mtime:
            log.warning("%s is older than the built image; pass --fresh to start from the new image", copy)
        return copy
    if not image.exists():
        raise PycamError(f"no image at {image}", f"build it first: pycam build --board {product.board.name}")
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_name(copy.name + ".tmp")
    subprocess.run(["cp", "--sparse=always", str(image), str(tmp)], check=True)
    os.replace(tmp, copy)
    log.info("fresh working copy %s", copy)
    return copy


def command(product: Product, disk: Path) -> list[str]:
    q = product.board.qemu
    return [
        "qemu-system-aarch64",
        "-machine", q.get("machine", "virt"),
        "-cpu", q.get("cpu", "cortex-a57"),
        "-m", str(q.get("memory", 1024)),
        *machine_args(product),
        "-bios", bios(product),
        "-drive", f"if=virtio,format=raw,file={disk}",
        "-nic", "user,model=virtio-net-pci",
        "-nographic",
    ]


def run_interactive(product: Product, fresh: bool = False, disk: Path | None = None) -> int:
    hosttools.require_tools(hosttools.QEMU_TOOLS)
    copy = working_copy(product, fresh, disk)
    cmd = command(product, copy)
    log.info("booting %s (quit: Ctrl-a x)", copy)
    return subprocess.call(cmd)


def labgrid_env(product: Product, disk: Path, disk_opts: str = "") -> dict[str, Any]:
    """A labgrid environment (as a dict for YAML) for this board's QEMU target.

    disk_opts: extra QEMU -drive options, e.g. throttling to a real medium's speed (bench/ota_bench.py).
    """
    q = product.board.qemu
    qemu_bin = shutil.which("qemu-system-aarch64") or "qemu-system-aarch64"
    return {
        "targets": {
            "main": {
                "drivers": {
                    "QEMUDriver": {
                        "qemu_bin": "qemu",
                        "machine": q.get("machine", "virt"),
                        "cpu": q.get("cpu", "cortex-a57"),
                        "memory": f"{q.get('memory', 1024)}M",
                        "bios": "bios",
                        "disk": "disk",
                        **({"disk_opts": disk_opts} if disk_opts else {}),
                        "extra_args": " ".join(machine_args(product)),
                        "nic": "user,model=virtio-net-pci",
                    },
                    "ShellDriver": {
                        # bash may precede its prompt with the bracketed-paste switch
                        "prompt": r"(?:\x1b\[\?2004h)?root@[\w-]+:[^ ]+# ",
                        "login_prompt": r"login: ",
                        "username": "root",
                        "login_timeout": 600,
                    },
                    "PycamQemuStrategy": {},
                },
            },
        },
        "tools": {"qemu": qemu_bin},
        "images": {"bios": bios(product), "disk": str(disk)},
    }
