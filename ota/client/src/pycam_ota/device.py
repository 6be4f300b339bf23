"""What the client asks of the device: versions, slots, RAUC, the health gate, reboot.

`Device` is the interface the update logic uses; `SystemDevice` is the real one (RAUC over
D-Bus, systemd, the files the image carries). Host tests substitute a fake because RAUC
cannot install on the host; the QEMU tests run this one.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pycam_ota.rauc import Rauc

log = logging.getLogger("pycam-ota")
VERSION_FILE = Path("/etc/pycam/version")
BUILD_ID_FILE = Path("/etc/pycam/build-id")
ALLOW_DOWNGRADE = Path("/run/pycam/allow-downgrade")


class Device(Protocol):
    def version(self) -> str: ...

    def build_id(self) -> str: ...

    def compatible(self) -> str: ...

    def booted_slot(self) -> str:
        """Boot name of the running slot (A or B)."""
        ...

    def install(self, source: str, args: dict[str, tuple[str, Any]],
                progress: Callable[[int, str], None]) -> str | None:
        """Install a bundle (path or URL); None on success, else the installer's error."""
        ...

    def primary_slot(self) -> str:
        """Boot name of the slot the bootloader starts next."""
        ...

    def health(self, slot: str) -> str:
        """'good' once the health gate confirmed this boot, 'failed', or 'pending'."""
        ...

    def allow_downgrade(self) -> None: ...

    def reboot(self) -> None: ...


class SystemDevice:
    def __init__(self, health_unit: str = "pycam-health-gate.service", data: Path = Path("/data")) -> None:
        self.rauc = Rauc()
        self.health_unit = health_unit
        self.data = data

    def version(self) -> str:
        return VERSION_FILE.read_text().strip()

    def build_id(self) -> str:
        return BUILD_ID_FILE.read_text().strip() if BUILD_ID_FILE.exists() else ""

    def compatible(self) -> str:
        return str(self.rauc.prop("Compatible"))

    def booted_slot(self) -> str:
        booted = str(self.rauc.prop("BootSlot"))
        if booted:
            return booted
        match = re.search(r"rauc\.slot=(\S+)", Path("/proc/cmdline").read_text())
        return match.group(1) if match else ""

    def install(self, source: str, args: dict[str, tuple[str, Any]],
                progress: Callable[[int, str], None]) -> str | None:
        return self.rauc.install(source, args, progress)

    def primary_slot(self) -> str:
        return self.rauc.bootname(self.rauc.primary())

    def health(self, slot: str) -> str:
        """The gate (a oneshot) succeeded in this boot and recorded this build as proven on the slot."""
        out = subprocess.run(["systemctl", "show", "--property=ActiveState,Result", self.health_unit],
                             capture_output=True, text=True, check=False).stdout
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        state, result = props.get("ActiveState", ""), props.get("Result", "")
        if state == "failed" or result not in ("", "success"):
            return "failed"
        if state != "active":
            return "pending"
        proven = self.data / "pycam" / f"proven-{slot}"
        if proven.exists() and proven.read_text().strip() == self.build_id():
            return "good"
        return "pending"

    def allow_downgrade(self) -> None:
        ALLOW_DOWNGRADE.parent.mkdir(parents=True, exist_ok=True)
        ALLOW_DOWNGRADE.touch()

    def reboot(self) -> None:
        log.info("rebooting into the new slot")
        subprocess.run(["systemctl", "reboot"], check=True)
