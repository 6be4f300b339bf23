"""OTA on a QEMU device of its own: delta bundles, power cuts during an install, /data across updates.

Every update is a real new build (`pycam bundle --version V --delta-from <previous full bundle>`:
the version and build id in the root differ), served over HTTP from the host; the device installs
with `rauc install <url>` (RAUC downloads the bundle itself). The hawkBit client's end-to-end
tests are in test_ota_hawkbit.py. Tests run in file order on the one device and each leaves it
booted from a good slot; the versions only go up (the device refuses downgrades).
"""

from __future__ import annotations

import functools
import http.server
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycam.definition import Product
from pycam.engine.build import Outputs, outputs
from pycam.engine.delta import delta_name
from tests.target.device import app_api, rauc_status, sh, sh_rc, slot, uboot_env, wait_unit_done

BOOTED = re.compile(rb"pycam: booting slot (\w)")
GATE = "pycam-health-gate.service"
# default run: a handful of power cuts and update cycles; `pytest -m soak` runs the long suites
CUTS = int(os.environ.get("PYCAM_POWER_CUTS", "3"))
SOAK_CUTS = int(os.environ.get("PYCAM_SOAK_POWER_CUTS", "200"))
UPDATE_CYCLES = 10


class Releases:
    """Bundles built on demand, each with a delta from the release before it, served over HTTP."""

    def __init__(self, product: Product, built: Outputs) -> None:
        self.product = product
        self.chain = [product.ota.version]
        self.directory = built.directory
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def full(self, version: str) -> Path:
        return outputs(self.product, version).bundle

    def delta(self, version: str, base: str) -> Path:
        return self.directory / delta_name(self.product, version, base)

    def next(self) -> str:
        """Build the next release (full + delta from the current newest) and return its version."""
        base = self.chain[-1]
        major, minor, _ = (int(x) for x in base.split("."))
        version = f"{major}.{minor + 1}.0"
        subprocess.run([sys.executable, "-m", "pycam", "bundle", "--board", self.product.board.name,
                        "--version", version, "--delta-from", str(self.full(base))], check=True)
        self.chain.append(version)
        return version

    def url(self, bundle: Path) -> str:
        return f"http://10.0.2.2:{self.server.server_address[1]}/{bundle.name}"

    def close(self) -> None:
        self.server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def releases(product: Product, built: Outputs) -> Iterator[Releases]:
    r = Releases(product, built)
    yield r
    r.close()


@pytest.fixture(scope="module")
def device(devices: Any, product: Product):
    dev = devices.new("ota-updates")
    dev.transition("shell")
    assert wait_unit_done(dev.shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    yield dev
    dev.transition("off")


def other(slot_name: str) -> str:
    return "B" if slot_name == "A" else "A"


def fetch(dev: Any, url: str) -> str:
    """Download to /data, as the OTA client does (RAUC 1.8 without streaming would fill /tmp)."""
    sh(dev.shell, f"python3 -c \"import urllib.request as u; u.urlretrieve('{url}', '/data/update.raucb')\"",
       timeout=600)
    return "/data/update.raucb"


def install(dev: Any, url: str, timeout: float = 900) -> tuple[str, int]:
    out = sh_rc(dev.shell, f"rauc install {fetch(dev, url)} 2>&1", timeout=timeout)
    sh(dev.shell, "rm -f /data/update.raucb")
    return out


def reboot_into(dev: Any, product: Product, expected_slot: str) -> None:
    log = dev.reboot_and_watch("reboot", BOOTED, timeout=300)
    assert BOOTED.search(log).group(1).decode() == expected_slot  # type: ignore[union-attr]
    dev.attach_shell()
    assert wait_unit_done(dev.shell, GATE, timeout=product.ota.health_timeout_sec + 60) == "active"
    status = rauc_status(dev.shell)
    assert status["booted"] == expected_slot
    assert slot(status, "rootfs.0" if expected_slot == "A" else "rootfs.1")["boot_status"] == "good"


def version(dev: Any) -> str:
    return sh(dev.shell, "cat /etc/pycam/version")


def test_delta_bundle_installs_boots_and_is_marked_good(device: Any, product: Product, releases: Releases) -> None:
    base = version(device)
    new = releases.next()
    delta = releases.delta(new, base)
    assert delta.stat().st_size < releases.full(new).stat().st_size * 0.03
    booted = rauc_status(device.shell)["booted"]
    out, code = install(device, releases.url(delta))
    assert code == 0, out
    journal = sh(device.shell, "journalctl -b -u rauc --no-pager -o cat | grep delta-install")  # the hook's lines
    assert "running slots match base" in journal
    assert "rootfs rebuilt" in journal and "kernel rebuilt" in journal and "sha256 verified" in journal
    assert uboot_env(device.shell)["BOOT_ORDER"].split()[0] == other(booted)
    reboot_into(device, product, other(booted))
    assert version(device) == new


def test_delta_for_another_base_is_refused_and_nothing_changes(device: Any, releases: Releases) -> None:
    running = version(device)
    wrong = releases.delta(running, releases.chain[-2])  # made for the release before this one
    status, env = rauc_status(device.shell), uboot_env(device.shell)
    out, code = install(device, releases.url(wrong))
    assert code != 0
    assert "delta base mismatch" in out and "install the full bundle" in out
    assert uboot_env(device.shell)["BOOT_ORDER"] == env["BOOT_ORDER"]
    after = rauc_status(device.shell)
    assert after["booted"] == status["booted"]
    assert slot(after, "rootfs.0")["boot_status"] == slot(status, "rootfs.0")["boot_status"]
    assert slot(after, "rootfs.1")["boot_status"] == slot(status, "rootfs.1")["boot_status"]


def _power_cuts(device: Any, product: Product, releases: Releases, cuts: int, seed: int) -> None:
    """Cut the power at random moments of a full install; the device must come up on a good slot."""
    rng = random.Random(seed)
    target = releases.next()
    url = releases.url(releases.full(target))
    token = uuid.uuid4().hex
    sh(device.shell, f"echo {token} > /data/power-cut-token && sync")
    bundle = fetch(device, url)
    started = time.monotonic()
    out, code = sh_rc(device.shell, f"rauc install {bundle} 2>&1", timeout=900)  # how long an install takes
    assert code == 0, out
    duration = time.monotonic() - started
    for cut in range(cuts):
        before = rauc_status(device.shell)["booted"]
        sh(device.shell, f"systemd-run --unit=pycam-cut-{cut} rauc install {bundle}")
        delay = rng.uniform(0, duration * 1.1)
        time.sleep(delay)
        device.transition("off")  # QEMU killed: the power is gone mid-write
        log = device.power_on_and_watch(BOOTED, timeout=300)
        came_up = BOOTED.search(log).group(1).decode()  # type: ignore[union-attr]
        device.attach_shell()
        gate = wait_unit_done(device.shell, GATE, timeout=product.ota.health_timeout_sec + 60)
        status = rauc_status(device.shell)
        print(f"power cut {cut + 1}/{cuts} (seed {seed}) after {delay:.1f} s of a {duration:.0f} s install: "
              f"was on {before}, came up on {came_up}")
        assert gate == "active", f"cut {cut} (seed {seed}, {delay:.1f} s): the slot it came up on is not healthy"
        assert slot(status, "rootfs.0" if came_up == "A" else "rootfs.1")["boot_status"] == "good"
        assert sh(device.shell, "cat /data/power-cut-token") == token
        # the bundle in /data may be what the cut hit: check it, fetch again if needed
        if sh_rc(device.shell, f"rauc info {bundle} >/dev/null 2>&1")[1] != 0:
            bundle = fetch(device, url)
    booted = rauc_status(device.shell)["booted"]
    out, code = install(device, url)  # the retry succeeds
    assert code == 0, out
    reboot_into(device, product, other(booted))
    assert version(device) == target


def test_power_cuts_during_an_install_always_leave_a_good_slot(device: Any, product: Product,
                                                               releases: Releases) -> None:
    _power_cuts(device, product, releases, CUTS, seed=int(os.environ.get("PYCAM_POWER_CUT_SEED", "2026")))


@pytest.mark.soak
def test_soak_power_cuts(device: Any, product: Product, releases: Releases) -> None:
    _power_cuts(device, product, releases, SOAK_CUTS, seed=int(time.time()))


def _recording(dev: Any) -> dict[str, Any]:
    app_api(dev.shell, "POST", "/api/services/camera-control/actions/start-recording", {})
    time.sleep(8)
    app_api(dev.shell, "POST", "/api/services/camera-control/actions/stop-recording", {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        closed = [r for r in app_api(dev.shell, "GET", "/api/recordings?kind=manual")["recordings"]
                  if r["state"] == "closed"]
        if closed:
            return closed[0]
        time.sleep(3)
    raise AssertionError("the app listed no recording after start/stop-recording")


def _data_state(dev: Any, rec: dict[str, Any]) -> dict[str, str]:
    return {
        "sensitivity": str(app_api(dev.shell, "GET", "/api/services/motion-detection/properties/sensitivity")),
        "recording": sh(dev.shell, f"python3 /tmp/api.py GET /api/recordings/{rec['id']}/video | sha256sum"),
        "credentials": sh(dev.shell, "sha256sum < /data/app/credentials.json"),
        "machine-id": sh(dev.shell, "cat /etc/machine-id"),
    }


@pytest.mark.soak
def test_data_survives_update_cycles(device: Any, product: Product, releases: Releases) -> None:
    """Settings, a recording, the credentials and the machine id survive 10 updates (full and delta)."""
    app_api(device.shell, "PUT", "/api/services/motion-detection/properties/sensitivity", {"value": "high"})
    rec = _recording(device)
    before = _data_state(device, rec)
    assert "high" in before["sensitivity"]
    for cycle in range(UPDATE_CYCLES):
        base = version(device)
        new = releases.next()
        bundle = releases.delta(new, base) if cycle % 2 == 0 else releases.full(new)
        booted = rauc_status(device.shell)["booted"]
        out, code = install(device, releases.url(bundle))
        assert code == 0, out
        reboot_into(device, product, other(booted))
        assert version(device) == new
        assert _data_state(device, rec) == before, f"/data changed across update {cycle + 1} ({bundle.name})"
