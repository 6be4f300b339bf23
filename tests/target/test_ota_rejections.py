"""Issue 5, test 2: bundles the device must refuse, on one fresh QEMU device, with the real RAUC 1.8.

Each bundle is made on the host: signed by the real `rauc bundle` with the product's own manifest
(tests/bundles.py; small random slot images keep transfers and installs quick), then damaged or
signed by the wrong certificate. For every refusal: `rauc install` fails with an error naming the
problem, the device still runs slot A, A stays primary in BOOT_ORDER, and slot B is not made
bootable. No reboot is needed: all refusals happen before anything would be activated.

Revocation reaches devices through the keyring of the next image (pycam keys revoke writes the
CRL into keys/<dir>/keyring.pem, which the build installs as /etc/rauc/keyring.pem). Rebuilding an
image for this test would take minutes, so the test gives the running device exactly that next
keyring -- the development keyring plus a CRL revoking one certificate, made by pycam.keys.revoke
on a copy of the development PKI -- by bind-mounting it over /etc/rauc/keyring.pem. RAUC reads the
keyring file at every verification and checks CRLs because the image's system.conf says check-crl.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycam import keys
from pycam.definition import Product
from tests.bundles import Signer, craft, issue
from tests.target.device import rauc_status, sh, sh_rc, uboot_env

GATE = "pycam-health-gate.service"  # stopped on this device: see the `device` fixture
NOW = dt.datetime.now(dt.UTC)
DOWNGRADE = "0.0.9"


@dataclass(frozen=True)
class Crafted:
    directory: Path
    revoking_keyring: Path


@pytest.fixture(scope="module")
def crafted(product: Product, built, tmp_path_factory: pytest.TempPathFactory) -> Crafted:
    """Every bundle of the test, made on the host. `built` first: the image's keys are keys/dev."""
    out = tmp_path_factory.mktemp("rejections")
    dev = keys.KeySet(keys.keys_dir()).require()
    newer = _bump(product.ota.version)
    good = Signer(dev.cert, dev.key)

    # a bundle nothing is wrong with but its signer: a CA the device does not trust
    foreign = keys.init(out / "foreign-pki")
    craft(product, Signer(foreign.cert, foreign.key), out / "bad-signature.raucb", version=newer)

    # payload flipped after signing: the signature (over the manifest and verity root hash) is intact
    tampered = craft(product, good, out / "tampered.raucb", version=newer, keyring=dev.keyring)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 4] ^= 0xFF  # inside the squashfs payload (random slot images, ~80 % of the file)
    tampered.write_bytes(bytes(data))

    whole = craft(product, good, out / "whole.raucb", version=newer, keyring=dev.keyring)
    (out / "truncated.raucb").write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    whole.unlink()

    craft(product, good, out / "wrong-compatible.raucb", version=newer, compatible="pycam-otherboard",
          keyring=dev.keyring)

    expired = issue(dev, out / "signers", "expired", NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1))
    craft(product, expired, out / "expired.raucb", version=newer)

    # the next image's keyring after `pycam keys revoke`: a copy of the development PKI revokes a signer
    pki_copy = out / "dev-pki"
    shutil.copytree(dev.directory, pki_copy)
    revoked_keys = keys.KeySet(pki_copy)
    revoked = issue(revoked_keys, out / "signers", "revoked", NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=30))
    from pycam.keys import pki

    keys.revoke(revoked_keys, pki.resolve_serial(revoked_keys, str(revoked.cert)), reason="keyCompromise")
    craft(product, revoked, out / "revoked.raucb", version=newer, keyring=dev.keyring)

    # an older version, signed by a rotated signer (new key, same CA): refused as a downgrade, and
    # once allowed, installed by a device whose keyring predates that signer
    rotated = issue(dev, out / "signers", "rotated", NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=30))
    craft(product, rotated, out / "downgrade.raucb", version=DOWNGRADE, keyring=dev.keyring)
    return Crafted(out, revoked_keys.keyring)


def _bump(version: str) -> str:
    return f"{version}.7"


@pytest.fixture(scope="module")
def server(crafted: Crafted) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(crafted.directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://10.0.2.2:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def device(devices):
    started = time.monotonic()
    strategy = devices.new("rejections")
    strategy.transition("shell")
    shell = strategy.shell
    # Freeze the boot state: the health gate's mark-good would reset BOOT_A_LEFT in the middle of the
    # before/after comparisons, and the camera app's encoder would only slow the installs down. This
    # device never reboots, so nothing needs its slot confirmed (test_image.py covers the gate).
    sh(shell, f"systemctl stop {GATE} pycam-app.service")
    print(f"fresh device: shell after {time.monotonic() - started:.0f} s")
    return shell


def _state(shell) -> dict[str, object]:
    status = rauc_status(shell)
    env = uboot_env(shell)
    slots = {name: entry for item in status["slots"] for name, entry in item.items()}
    return {
        "booted": status["booted"],
        "primary": status["boot_primary"],
        "BOOT_ORDER": env.get("BOOT_ORDER"),
        "BOOT_A_LEFT": env.get("BOOT_A_LEFT"),
        "BOOT_B_LEFT": env.get("BOOT_B_LEFT"),
        "states": {name: (s.get("state"), s.get("boot_status")) for name, s in slots.items()},
    }


def _install(shell, server: str, name: str) -> tuple[str, int]:
    sh(shell, "python3 -c \"import urllib.request as u; "
              f"u.urlretrieve('{server}/{name}', '/data/b.raucb')\"", timeout=180)
    out, code = sh_rc(shell, "rauc install /data/b.raucb 2>&1", timeout=300)
    sh(shell, "rm -f /data/b.raucb")
    return out, code


def _active_root_digest(shell, product: Product) -> str:
    """sha256 of the squashfs in slot A's root partition (its bytes_used: the superblock's u64 at 40)."""
    device = product.board.linux_device(product.layout.slot_part("A", "rootfs"))
    size = f"python3 -c \"import struct; print(struct.unpack_from('<Q', open('{device}', 'rb').read(96), 40)[0])\""
    return sh(shell, f"head -c $({size}) {device} | sha256sum | cut -d' ' -f1", timeout=180)


REFUSALS = [
    # (bundle, what the error must say)
    ("bad-signature.raucb", "unable to get local issuer certificate"),
    ("truncated.raucb", "Invalid bundle format: Signature size"),
    ("wrong-compatible.raucb", "Compatible mismatch"),
    ("expired.raucb", "certificate has expired"),
    ("downgrade.raucb", "Pre-install handler error"),
]


def test_refusals_leave_the_device_as_it_was(device, server: str, product: Product) -> None:
    shell = device
    before = _state(shell)
    assert before["booted"] == "A" and str(before["BOOT_ORDER"]).split()[0] == "A", before
    started = time.monotonic()
    root = _active_root_digest(shell, product)
    timings = {"active root sha256": round(time.monotonic() - started, 1)}
    for name, says in REFUSALS:
        started = time.monotonic()
        out, code = _install(shell, server, name)
        timings[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {[line for line in out.splitlines() if 'LastError' in line]}")
        assert code != 0 and "failed" in out, f"{name} was not refused:\n{out}"
        assert says in out, f"{name}: the error does not say {says!r}:\n{out}"
        assert _state(shell) == before, f"{name} changed the device's slots or boot order"
    # RAUC 1.8 does not forward a system handler's message to its D-Bus client: the reason is in
    # RAUC's log and in /run/pycam/rauc-refusal (for the OTA client to report)
    assert "downgrade refused" in sh(shell, "cat /run/pycam/rauc-refusal")
    journal = sh(shell, "journalctl -u rauc --no-pager -n 40 -o cat")
    assert f"downgrade refused: bundle version {DOWNGRADE} is older than the running {product.ota.version}" \
        in journal, journal
    assert _active_root_digest(shell, product) == root
    print("refusal round trips (download + rauc install), s:", timings)


def test_revoked_certificate_is_refused(device, server: str, crafted: Crafted) -> None:
    shell = device
    before = _state(shell)
    keyring = crafted.revoking_keyring.read_text()
    sh(shell, f"cat > /data/next-keyring.pem <<'EOF'\n{keyring}EOF")
    sh(shell, "mount --bind /data/next-keyring.pem /etc/rauc/keyring.pem")
    try:
        out, code = _install(shell, server, "revoked.raucb")
    finally:
        sh(shell, "umount /etc/rauc/keyring.pem; rm -f /data/next-keyring.pem")
    assert code != 0 and "certificate revoked" in out, out
    assert _state(shell) == before


def test_tampered_payload_is_refused_and_b_stays_unbootable(device, server: str) -> None:
    shell = device
    before = _state(shell)
    out, code = _install(shell, server, "tampered.raucb")
    assert code != 0 and "failed" in out, out
    after = _state(shell)
    assert after["booted"] == "A" and after["primary"] == before["primary"]
    assert str(after["BOOT_ORDER"]).split()[0] == "A", after
    # RAUC marks the target slot unbootable before writing it; it must not have become bootable
    order = str(after["BOOT_ORDER"]).split()
    assert "B" not in order or after["BOOT_B_LEFT"] == "0", after
    print("tampered payload:", out.strip().splitlines()[-3:])


def test_downgrade_override_installs(device, server: str, product: Product) -> None:
    """The explicit override works, and a device whose keyring predates the rotated signer accepts it."""
    shell = device
    sh(shell, "mkdir -p /run/pycam && touch /run/pycam/allow-downgrade")
    try:
        out, code = _install(shell, server, "downgrade.raucb")
    finally:
        sh(shell, "rm -f /run/pycam/allow-downgrade")
    assert code == 0 and "succeeded" in out, out
    env = uboot_env(shell)
    assert env["BOOT_ORDER"].split()[0] == "B" and env["BOOT_B_LEFT"] == str(product.ota.attempts)
    assert rauc_status(shell)["booted"] == "A"
    journal = sh(shell, "journalctl -u rauc --no-pager -n 40 -o cat")
    assert "allowed by /run/pycam/allow-downgrade" in journal
