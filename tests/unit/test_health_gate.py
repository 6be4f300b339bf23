"""The health gate's decisions (rootfs/overlay/usr/lib/pycam/health-gate), against a fake root and
stand-ins for pycam-health, rauc and systemctl that record how they were called."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pycam import ROOT

GATE = ROOT / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "health-gate"


@pytest.fixture
def device(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cmdline").write_text("console=ttyAMA0 root=/dev/vda5 rauc.slot=B panic=5\n")
    (root / "etc" / "pycam").mkdir(parents=True)
    (root / "etc" / "pycam" / "build-id").write_text("0.2.0+abc\n")
    (root / "data").mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("rauc", "systemctl"):
        stub = bindir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    return root


def _gate(root: Path, healthy: bool) -> tuple[int, str]:
    bindir = root.parent / "bin"
    probe = bindir / "pycam-health"
    probe.write_text(f"#!/bin/sh\nexit {0 if healthy else 1}\n")
    probe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYCAM_GATE_ROOT": str(root)}
    proc = subprocess.run(["sh", GATE, "5"], env=env, capture_output=True, text=True)
    calls = root.parent / "calls"
    return proc.returncode, calls.read_text() if calls.exists() else ""


def test_healthy_slot_is_marked_good_and_remembered(device: Path) -> None:
    code, calls = _gate(device, healthy=True)
    assert code == 0
    assert calls == "rauc status mark-good\n"
    assert (device / "data" / "pycam" / "proven-B").read_text().strip() == "0.2.0+abc"


def test_new_build_that_never_streams_reboots_so_the_counter_rolls_back(device: Path) -> None:
    code, calls = _gate(device, healthy=False)
    assert code == 1
    assert "mark-good" not in calls and "systemctl --no-block reboot" in calls


def test_proven_build_is_not_rebooted_for_a_camera_fault(device: Path) -> None:
    assert _gate(device, healthy=True)[0] == 0
    (device.parent / "calls").unlink()
    code, calls = _gate(device, healthy=False)
    assert code == 1 and calls == ""  # neither marked good again nor rebooted


def test_a_different_build_on_the_same_slot_must_prove_itself_again(device: Path) -> None:
    assert _gate(device, healthy=True)[0] == 0
    (device / "etc" / "pycam" / "build-id").write_text("0.3.0+def\n")
    code, calls = _gate(device, healthy=False)
    assert code == 1 and "reboot" in calls
