"""The image built by `pycam build`, booted in QEMU (real U-Boot, kernel, RAUC, systemd watchdog).

Tests share one VM and run in file order: the later ones reboot, break slot B, hang the
kernel and install a bundle, and each leaves the device booted from a good slot.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycam.definition import Product
from pycam.engine.build import Outputs, outputs
from tests.target.device import rauc_status, sh, sh_rc, slot, uboot_env, wait_unit_done
from tests.target.strategy import SLOT_LINE

BOOTED = re.compile(rb"pycam: booting slot (\w)")
GATE = "pycam-health-gate.service"


def _attempts(product: Product) -> str:
    return str(product.ota.attempts)


def test_boots_slot_a_and_health_gate_marks_it_good(shell, product: Product) -> None:
    status = rauc_status(shell)
    assert status["booted"] == "A"
    assert status["compatible"] == product.compatible
    assert wait_unit_done(shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    status = rauc_status(shell)
    assert slot(status, "rootfs.0")["boot_status"] == "good"
    # U-Boot decremented A on this boot; mark-good restored it
    assert uboot_env(shell)["BOOT_A_LEFT"] == _attempts(product)
    assert "marked slot rootfs.0 as good" in sh(shell, f"journalctl -b -u {GATE} --no-pager")
    # the gate confirmed real frames from the camera app, not just a running process
    assert "frames flowing" in sh(shell, f"journalctl -b -u {GATE} --no-pager")


def test_root_is_readonly_squashfs_and_data_persists(shell, dut, product: Product) -> None:
    fstype, options = sh(shell, "findmnt -n -o FSTYPE,OPTIONS /").split()
    assert fstype == "squashfs"
    assert "ro" in options.split(",")
    out, code = sh_rc(shell, "touch /pycam-write-test")
    assert code != 0 and "Read-only file system" in out
    assert sh(shell, "findmnt -n -o FSTYPE /data") == "ext4"
    token = uuid.uuid4().hex
    sh(shell, f"echo {token} > /data/persist-test && sync")
    machine_id = sh(shell, "cat /etc/machine-id")

    dut.reboot_and_watch("reboot", BOOTED, timeout=180)
    dut.attach_shell()
    assert sh(shell, "cat /data/persist-test") == token
    assert sh(shell, "cat /etc/machine-id") == machine_id  # kept on /data across boots


def test_boot_counting_falls_back_from_a_broken_slot(shell, dut, product: Product) -> None:
    layout, board = product.layout, product.board
    broken = board.linux_device(layout.slot_part("B", "rootfs"))
    attempts = product.ota.attempts
    # a slot B whose root cannot start: its squashfs is gone, the initramfs gives up
    sh(shell, f"dd if=/dev/zero of={broken} bs=1M count=4 conv=fsync status=none")
    sh(shell, "rauc status mark-active rootfs.1")
    env = uboot_env(shell)
    assert env["BOOT_ORDER"] == "B A" and env["BOOT_B_LEFT"] == str(attempts)

    log = dut.reboot_and_watch("reboot", re.compile(rb"pycam: booting slot A"), timeout=attempts * 150 + 200)
    tries = [(m.group(1).decode(), m.group(4).decode()) for m in SLOT_LINE.finditer(log)]
    # exactly BOOT_B_LEFT attempts on B, counting down, then A
    assert tries == [("B", str(n)) for n in range(attempts - 1, -1, -1)] + [("A", "0")], tries
    assert log.count(b"pycam-initramfs: FATAL") == attempts

    dut.attach_shell()
    status = rauc_status(shell)
    assert status["booted"] == "A"
    assert slot(status, "rootfs.1")["boot_status"] == "bad"
    assert uboot_env(shell)["BOOT_B_LEFT"] == "0"


def test_watchdog_resets_a_hung_system_and_the_boot_is_counted(shell, dut, product: Product) -> None:
    board = product.board
    assert wait_unit_done(shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    assert sh(shell, f"test -c {board.watchdog_device} && echo present") == "present"
    assert sh(shell, "systemctl show -p RuntimeWatchdogUSec --value") == f"{board.watchdog_runtime_sec}s"
    before = uboot_env(shell)
    booted = rauc_status(shell)["booted"]
    left_before = int(before[f"BOOT_{booted}_LEFT"])

    # Hang the whole system: a kernel panic that never reboots by itself (panic=0), so
    # nothing feeds the watchdog any more; only the hardware watchdog can reset it.
    sh(shell, "echo 1 > /proc/sys/kernel/sysrq; echo 0 > /proc/sys/kernel/panic")
    started = time.monotonic()
    log = dut.reboot_and_watch("echo c > /proc/sysrq-trigger", re.compile(rb"U-Boot \d{4}"), timeout=180)
    reset_after = time.monotonic() - started
    assert b"Kernel panic" in log
    assert reset_after <= board.watchdog_runtime_sec + 15, f"watchdog reset took {reset_after:.0f} s"

    log = dut.read_until(BOOTED, timeout=120)
    match = SLOT_LINE.search(log)
    assert match and match.group(1).decode() == booted
    left_now = int(match.group(3 if booted == "A" else 4).decode())
    assert left_now == left_before - 1, "the watchdog reset was not counted as a boot attempt"
    dut.attach_shell()


@pytest.fixture(scope="module")
def update_bundle(product: Product, built: Outputs) -> Path:
    """A real update: `pycam bundle` with another version, so the root differs from the image's."""
    version = f"{product.ota.version}.1"
    subprocess.run([sys.executable, "-m", "pycam", "bundle", "--board", product.board.name, "--version", version],
                   check=True)
    return outputs(product, version).bundle


@pytest.fixture(scope="module")
def bundle_server(update_bundle: Path) -> Iterator[str]:
    """The bundle over HTTP on loopback; QEMU's user network shows the host as 10.0.2.2."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(update_bundle.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://10.0.2.2:{server.server_address[1]}/{update_bundle.name}"
    server.shutdown()


def test_bundle_installs_into_b_boots_and_is_marked_good(shell, dut, product: Product, update_bundle: Path,
                                                         bundle_server: str) -> None:
    version = update_bundle.name.removesuffix(".raucb").rsplit("-", 1)[1]
    assert wait_unit_done(shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    assert rauc_status(shell)["booted"] == "A"
    sh(shell, "python3 -c \"import urllib.request as u; "
              f"u.urlretrieve('{bundle_server}', '/data/update.raucb')\"", timeout=300)
    out = sh(shell, "rauc install /data/update.raucb 2>&1", timeout=900)
    assert "Installing `/data/update.raucb` succeeded" in out, out
    sh(shell, "rm /data/update.raucb")
    env = uboot_env(shell)
    assert env["BOOT_ORDER"].split()[0] == "B" and env["BOOT_B_LEFT"] == _attempts(product)

    dut.reboot_and_watch("reboot", BOOTED, timeout=180)
    dut.attach_shell()
    status = rauc_status(shell)
    assert status["booted"] == "B"
    assert sh(shell, "cat /etc/pycam/version") == version
    assert wait_unit_done(shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    assert slot(rauc_status(shell), "rootfs.1")["boot_status"] == "good"
    assert uboot_env(shell)["BOOT_B_LEFT"] == _attempts(product)
