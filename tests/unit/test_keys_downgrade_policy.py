"""The device's downgrade policy (rootfs/overlay/usr/lib/pycam/rauc-pre-install): its version scheme,
and the handler run as RAUC 1.8 runs it (RAUC_BUNDLE_MOUNT_POINT, exit status, "<< error" lines)
against a fake root and a real bundle's manifest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycam import ROOT
from pycam.errors import PycamError
from pycam.keys import version

HANDLER = ROOT / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "rauc-pre-install"


policy = version.policy()


@pytest.mark.parametrize(("older", "newer"), [
    ("0.1.0", "0.1.0.1"),
    ("0.1.0.1", "0.2.0"),
    ("0.9.0", "0.10.0"),
    ("1.2.0-rc.1", "1.2.0-rc.2"),
    ("1.2.0-rc.2", "1.2.0-rc.10"),
    ("1.2.0-alpha", "1.2.0-alpha.1"),
    ("1.2.0-alpha.9", "1.2.0-beta"),
    ("1.2.0-rc.1", "1.2.0"),
    ("1.2.0", "1.2.1-rc.1"),
    ("1", "1.0.1"),
])
def test_version_order(older: str, newer: str) -> None:
    assert policy.compare(older, newer) == -1
    assert policy.compare(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), [("1.2", "1.2.0"), ("1.2.0+build.5", "1.2.0+other"), ("2.0.0", "2.0.0")])
def test_version_equal(a: str, b: str) -> None:
    assert policy.compare(a, b) == 0


@pytest.mark.parametrize("bad", ["", "v1.2.0", "1..2", "1.2.x", "1.2.0-", "1.2.0-rc..1", "latest"])
def test_version_scheme_refuses_garbage(bad: str) -> None:
    with pytest.raises(policy.BadVersion, match=r"not a pycam version|empty pre-release"):
        policy.parse(bad)


def test_decisions() -> None:
    assert policy.decide("0.2.0", "0.1.0", allowed=False)[0]
    assert policy.decide("0.1.0", "0.1.0", allowed=False)[0]  # a retry of the same version
    ok, why = policy.decide("0.0.9", "0.1.0", allowed=False)
    assert not ok and "downgrade" in why and "0.0.9" in why and "0.1.0" in why and "allow-downgrade" in why
    ok, why = policy.decide("0.0.9", "0.1.0", allowed=True)
    assert ok and "downgrade" in why
    assert not policy.decide(None, "0.1.0", allowed=False)[0]
    assert not policy.decide("0.2.0", None, allowed=False)[0]
    assert not policy.decide("nightly", "0.1.0", allowed=False)[0]


def _run(root: Path, mount: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    mount.mkdir(parents=True, exist_ok=True)
    lines = ["[update]", "compatible=pycam-qemuarm64"] + ([f"version={version}"] if version else [])
    (mount / "manifest.raucm").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYCAM_HANDLER_ROOT": str(root), "RAUC_BUNDLE_MOUNT_POINT": str(mount)}
    return subprocess.run([sys.executable, str(HANDLER)], env=env, capture_output=True, text=True)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "pycam").mkdir(parents=True)
    (root / "etc" / "pycam" / "version").write_text("0.2.0\n")
    return root


def test_handler_refuses_a_downgrade_with_a_message_rauc_logs(device: Path, tmp_path: Path) -> None:
    result = _run(device, tmp_path / "bundle", "0.1.0")
    assert result.returncode == 1
    assert result.stdout.startswith("<< error pycam: downgrade refused")
    refusal = (device / "run" / "pycam" / "rauc-refusal").read_text()
    assert "downgrade" in refusal and "0.1.0" in refusal


def test_handler_override_and_upgrade(device: Path, tmp_path: Path) -> None:
    (device / "run" / "pycam").mkdir(parents=True)
    (device / "run" / "pycam" / "allow-downgrade").touch()
    result = _run(device, tmp_path / "bundle", "0.1.0")
    assert result.returncode == 0 and "allowed by /run/pycam/allow-downgrade" in result.stdout
    (device / "run" / "pycam" / "allow-downgrade").unlink()
    assert _run(device, tmp_path / "bundle", "0.3.0").returncode == 0
    assert not (device / "run" / "pycam" / "rauc-refusal").exists()


def test_handler_refuses_a_bundle_without_version(device: Path, tmp_path: Path) -> None:
    result = _run(device, tmp_path / "bundle", None)
    assert result.returncode == 1 and "no version" in result.stdout


def test_handler_outside_rauc_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAUC_BUNDLE_MOUNT_POINT"}
    result = subprocess.run([sys.executable, str(HANDLER)], env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "RAUC_BUNDLE_MOUNT_POINT" in result.stderr


def test_handler_reads_the_manifest_rauc_mounts(product, tmp_path: Path) -> None:
    """A verity bundle's payload carries manifest.raucm: what the handler reads at the mount point."""
    from tests.bundles import Signer, craft
    from tests.unit.conftest import need

    need("rauc", "unsquashfs")
    from pycam import keys

    pki = keys.init(tmp_path / "pki")
    bundle = craft(product, Signer(pki.cert, pki.key), tmp_path / "b.raucb", version="0.0.7", payload=65536)
    out = tmp_path / "extracted"
    subprocess.run(["rauc", f"--keyring={pki.keyring}", "extract", str(bundle), str(out)], check=True,
                   capture_output=True)
    assert policy.bundle_version(out) == "0.0.7"


def test_build_refuses_a_version_devices_would_refuse() -> None:
    version.check_version("0.2.0-rc.1")
    with pytest.raises(PycamError, match="devices refuse bundles outside the version scheme") as err:
        version.check_version("nightly")
    assert "--version 1.2.0" in err.value.hint
