"""OTA end to end in QEMU: `pycam publish` to hawkBit, the device's pycam-ota polls, installs with the
real RAUC, reboots through the real U-Boot boot counter, and reports over DDI.

The hawkBit server is tests/hawkbit/fixture.py: no hawkBit can run here, so this fixture follows
hawkBit's published DDI and Management APIs (the publisher and the client speak the real API to it).
Everything on the device is real: RAUC 1.8 over D-Bus, U-Boot's BOOT_x_LEFT, the health gate.

1. v2 published -> polled, downloaded, installed, rebooted into B, success reported only after the
   health gate confirmed B; then a delta bundle for the version it runs;
3. a v2 whose app never becomes healthy (tests/target/never_healthy_app, built with PYCAM_APP_DIR):
   the gate reboots it until the boot counter brings slot A back, and the client reports the failure.

Tests 1 and 3 share one fresh device (the `devices` fleet) in file order, which saves a first boot;
the shared `dut` is untouched.
PYCAM_OTA_BENCH=<file> makes test 1 write its measurements there (bench/ota_client_bench.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycam.definition import Product
from pycam.engine.build import Outputs, outputs
from pycam.engine.delta import delta_name
from tests.hawkbit.fixture import HawkbitFixture
from tests.target.device import rauc_status, sh, slot, wait_unit_done

GATE = "pycam-health-gate.service"
NEVER_HEALTHY_APP = Path(__file__).parent / "never_healthy_app"
BOOT_LINE = re.compile(rb"pycam: booting slot (\w) ")


def _bundle(product: Product, version: str, env: dict[str, str] | None = None,
            extra: tuple[str, ...] = ()) -> Path:
    subprocess.run([sys.executable, "-m", "pycam", "bundle", "--board", product.board.name, "--version", version,
                    *extra], check=True, env={**os.environ, **(env or {})})
    return outputs(product, version).bundle


@pytest.fixture(scope="module")
def v2(product: Product, built: Outputs) -> Path:
    return _bundle(product, f"{product.ota.version}.1")


@pytest.fixture(scope="module")
def v2_never_healthy(product: Product, built: Outputs) -> Path:
    """The same system with a camera app that never streams (a test-only app tree)."""
    return _bundle(product, f"{product.ota.version}.3", env={"PYCAM_APP_DIR": str(NEVER_HEALTHY_APP)})


@pytest.fixture(scope="module")
def hawkbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HawkbitFixture]:
    server = HawkbitFixture(tmp_path_factory.mktemp("hawkbit"), polling_sleep="00:00:05")
    server.start()
    server.public_url = f"http://10.0.2.2:{server.port}"  # links as the VMs see the host (QEMU user net)
    yield server
    server.stop()


def provision(shell, hawkbit: HawkbitFixture, target: str, token: str) -> None:
    """What the factory line does: /factory/ota/hawkbit.conf for this device."""
    conf = f"""[client]
hawkbit_server            = 10.0.2.2:{hawkbit.port}
ssl                       = false
tenant_id                 = DEFAULT
target_name               = {target}
auth_token                = {token}
bundle_download_location  = /data/pycam/ota/bundle.raucb
retry_wait                = 20
post_update_reboot        = true

[device]
model                     = qemu
"""
    hawkbit.add_target(target, token)
    blob = base64.b64encode(conf.encode()).decode()
    sh(shell, "mount -o remount,rw /factory && mkdir -p /factory/ota && "
              f"echo {blob} | base64 -d > /factory/ota/hawkbit.conf && mount -o remount,ro /factory")


def publish(hawkbit: HawkbitFixture, bundles: list[Path], target: str) -> int:
    env = {**os.environ, "PYCAM_HAWKBIT_URL": hawkbit.url, "PYCAM_HAWKBIT_USER": hawkbit.user,
           "PYCAM_HAWKBIT_PASSWORD": hawkbit.password}
    out = subprocess.run([sys.executable, "-m", "pycam", "publish", *map(str, bundles), "--target", target],
                         check=True, env=env, capture_output=True, text=True).stdout
    (action,) = json.loads(out)["actions"]
    return int(action)


def wait_action(hawkbit: HawkbitFixture, action: int, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = hawkbit.actions[action].status
        if status in states:
            return status
        time.sleep(3)
    raise TimeoutError(f"action {action} still {hawkbit.actions[action].status} after {timeout:.0f} s; feedback: "
                       + json.dumps([f["body"]["status"] for f in hawkbit.feedback_for(action)])[-3000:])


def feedback_text(hawkbit: HawkbitFixture, action: int) -> str:
    return "\n".join(d for f in hawkbit.feedback_for(action) for d in f["body"]["status"].get("details", []))


def fresh_device(devices, name: str, product: Product):
    dev = devices.new(name)
    dev.transition("shell")
    assert wait_unit_done(dev.shell, GATE, timeout=product.ota.health_timeout_sec + 120) == "active"
    assert rauc_status(dev.shell)["booted"] == "A"
    return dev


@pytest.fixture(scope="module")
def camera(devices, product: Product, hawkbit: HawkbitFixture):
    """One fresh, provisioned device for this module's tests, in file order (like the shared `dut`)."""
    dev = fresh_device(devices, "ota-hawkbit", product)
    provision(dev.shell, hawkbit, "cam-1", "token-1")
    # the running client read the product default (no server); restarted, it reads /factory's file
    sh(dev.shell, "systemctl restart pycam-ota.service")
    return dev


def test_published_update_is_installed_booted_and_reported_after_the_health_gate(
        camera, product: Product, hawkbit: HawkbitFixture, v2: Path) -> None:
    version = f"{product.ota.version}.1"
    dev = camera
    published_wall = time.time()
    action = publish(hawkbit, [v2], "cam-1")
    published = time.monotonic()
    log = dev.reboot_and_watch("true", re.compile(rb"pycam: booting slot B "), timeout=1800)
    rebooted = time.monotonic()
    assert b"booting slot B" in log
    installed_at = next(f["time"] for f in hawkbit.feedback_for(action)
                        if "rebooting" in " ".join(f["body"]["status"].get("details", [])))
    dev.attach_shell()
    shell = dev.shell
    assert wait_action(hawkbit, action, {"finished", "error"}, product.ota.health_timeout_sec + 180) == "finished"
    reported = time.monotonic()

    text = feedback_text(hawkbit, action)
    assert "confirmed by the health gate" in text, text
    status = rauc_status(shell)
    assert status["booted"] == "B"
    assert slot(status, "rootfs.1")["boot_status"] == "good"
    assert sh(shell, "cat /etc/pycam/version") == version
    assert sh(shell, "systemctl is-active pycam-health-gate.service") == "active"
    executions = [f["body"]["status"]["execution"] for f in hawkbit.feedback_for(action)]
    assert executions[0] == "download" and "downloaded" in executions and executions[-1] == "closed"
    assert hawkbit.downloads[-1]["file"] == v2.name and hawkbit.downloads[-1]["sent"] == v2.stat().st_size
    # hawkBit asks for the attributes again after a successful update: the device names its new version
    assert hawkbit.targets["cam-1"].attributes.get("pycam_version") == version
    device_status = json.loads(sh(shell, "pycam-ota status"))
    assert device_status["event"] == "success" and device_status["pending"] is None
    assert sh(shell, "ls /data/pycam/ota/").split() == sorted(["history.jsonl", "status.json"])

    rss_kb = int(sh(shell, "grep VmRSS /proc/$(systemctl show -p MainPID --value pycam-ota.service)/status")
                 .split()[1])
    assert rss_kb < 64 * 1024  # the unit's MemoryMax
    bench = os.environ.get("PYCAM_OTA_BENCH")
    if bench:
        Path(bench).write_text(json.dumps({
            "bundle_bytes": v2.stat().st_size,
            "client_rss_kib": rss_kb,
            "publish_to_installed_s": round(installed_at - published_wall, 1),
            "publish_to_reboot_s": round(rebooted - published, 1),
            "publish_to_success_reported_s": round(reported - published, 1),
            "polling_sleep": hawkbit.polling_sleep,
        }, indent=1) + "\n")


def test_update_with_a_delta_bundle(camera, product: Product, hawkbit: HawkbitFixture, v2: Path) -> None:
    """On the same device after test 1: the client takes the delta made for the version it runs."""
    dev = camera
    dev.transition("shell")
    assert wait_unit_done(dev.shell, GATE, timeout=product.ota.health_timeout_sec + 120) == "active"
    running = sh(dev.shell, "cat /etc/pycam/version")
    other = "A" if rauc_status(dev.shell)["booted"] == "B" else "B"
    version = f"{product.ota.version}.2"
    full = _bundle(product, version, extra=("--delta-from", str(outputs(product, running).bundle)))
    delta = full.with_name(delta_name(product, version, running))
    assert delta.exists() and delta.with_name(delta.name + ".json").exists()
    action = publish(hawkbit, [full, delta], "cam-1")
    dev.reboot_and_watch("true", re.compile(rb"pycam: booting slot " + other.encode() + rb" "), timeout=1800)
    dev.attach_shell()
    assert wait_action(hawkbit, action, {"finished", "error"}, product.ota.health_timeout_sec + 180) == "finished"
    assert [d["file"] for d in hawkbit.downloads if d["file"].startswith(full.name.removesuffix(".raucb"))] == [
        delta.name]
    assert sh(dev.shell, "cat /etc/pycam/version") == version
    assert rauc_status(dev.shell)["booted"] == other


def test_update_that_never_becomes_healthy_is_rolled_back_and_reported(
        camera, product: Product, hawkbit: HawkbitFixture, v2_never_healthy: Path) -> None:
    """On the same device after test 1 (it runs from B then, so the bad update goes to A)."""
    dev = camera
    dev.transition("shell")
    shell = dev.shell
    assert wait_unit_done(shell, GATE, timeout=product.ota.health_timeout_sec + 120) == "active"
    before = rauc_status(shell)["booted"]
    running = sh(shell, "cat /etc/pycam/version")
    other = "A" if before == "B" else "B"
    action = publish(hawkbit, [v2_never_healthy], "cam-1")
    log = dev.reboot_and_watch("true", re.compile(rb"pycam: booting slot " + other.encode() + rb" "), timeout=1800)
    # the new slot gets its attempts (the gate reboots it each time), then the counter brings the old one back
    log += dev.read_until(re.compile(rb"pycam: booting slot " + before.encode() + rb" "),
                          timeout=product.ota.attempts * 400)
    dev.attach_shell()
    shell = dev.shell
    boots = [m.group(1).decode() for m in BOOT_LINE.finditer(log)]
    assert boots[-1] == before and boots.count(other) == product.ota.attempts, boots
    assert wait_action(hawkbit, action, {"finished", "error"}, product.ota.health_timeout_sec + 180) == "error"
    text = feedback_text(hawkbit, action)
    assert "rolled back" in text, text
    assert "confirmed by the health gate" not in text
    status = rauc_status(shell)
    assert status["booted"] == before
    assert slot(status, "rootfs.0" if other == "A" else "rootfs.1")["boot_status"] == "bad"
    assert sh(shell, "cat /etc/pycam/version") == running
    assert json.loads(sh(shell, "pycam-ota status"))["failed_versions"] == [f"{product.ota.version}.3"]
