"""Host tests of the OTA client (ota/client) and of `pycam publish`, against the hawkBit fixture.

No hawkBit server can run here: tests/hawkbit/fixture.py follows hawkBit's published DDI and
Management APIs instead. RAUC cannot install on the host either: the client's tests use
FakeDevice (below) where the device would call RAUC over D-Bus; the QEMU tests
(tests/target/test_ota_hawkbit.py) run the same client against the real RAUC.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hawkbit.fixture import HawkbitFixture

COMPATIBLE = "pycam-qemuarm64"


@pytest.fixture
def hawkbit(tmp_path: Path) -> Iterator[HawkbitFixture]:
    server = HawkbitFixture(tmp_path / "hawkbit-storage", polling_sleep="00:00:07")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP (Range requests included), like the default OTA server."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(RangeHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def make_bundle(directory: Path, version: str, base: str | None = None, size: int = 300_000,
                compatible: str = COMPATIBLE) -> Path:
    """A stand-in bundle file with the sidecar `pycam bundle` writes (the client never opens it: FakeDevice)."""
    name = f"pycam-qemuarm64-{version}" + (f".delta-from-{base}" if base else "") + ".raucb"
    path = directory / name
    head = f"BUNDLE {name}\n".encode()  # FakeDevice reads which bundle it was handed
    seed = hashlib.sha256(name.encode()).digest()
    path.write_bytes(head + (seed * (size // len(seed) + 1))[:size - len(head)])
    sidecar = {"version": version, "compatible": compatible, "size": size,
               "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    if base:
        sidecar["base"] = base
    path.with_name(name + ".json").write_text(json.dumps(sidecar))
    return path


@dataclass
class FakeDevice:
    """Stands in for RAUC + U-Boot + the health gate on the host (RAUC cannot install here).

    Like RAUC, it refuses a delta whose base is not the running version ("delta base"), and it
    reads the bundle it is given (a missing file is an error).
    """

    running: str = "0.1.0"
    slot: str = "A"
    compat: str = COMPATIBLE
    gate: str = "good"
    refuse_deltas: bool = False
    installs: list[str] = field(default_factory=list)
    reboots: int = 0
    primary: str = "A"
    downgrade_allowed: bool = False
    on_install: Callable[[str], None] | None = None

    def version(self) -> str:
        return self.running

    def build_id(self) -> str:
        return f"{self.running}+test"

    def compatible(self) -> str:
        return self.compat

    def booted_slot(self) -> str:
        return self.slot

    def install(self, source: str, args: dict[str, Any], progress: Callable[[int, str], None]) -> str | None:
        if self.on_install:
            self.on_install(source)
        with open(source, "rb") as f:  # a missing bundle fails here, as it would in RAUC
            name = f.readline().decode().removeprefix("BUNDLE ").strip()
        self.installs.append(name)
        progress(0, "Installing")
        progress(40, "Checking bundle")
        base = name.split(".delta-from-")[1].removesuffix(".raucb") if ".delta-from-" in name else None
        if base is not None and (self.refuse_deltas or base != self.running):
            return f"Failed to check bundle: delta base {base} is not the running version {self.running}"
        progress(100, "Installing done.")
        self.primary = "B" if self.slot == "A" else "A"
        return None

    def primary_slot(self) -> str:
        return self.primary

    def health(self, slot: str) -> str:
        return self.gate

    def allow_downgrade(self) -> None:
        self.downgrade_allowed = True

    def reboot(self) -> None:
        self.reboots += 1

    def boot_into(self, slot: str, version: str) -> None:
        self.slot, self.running = slot, version
