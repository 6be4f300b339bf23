"""The device's downgrade policy (rootfs/overlay/usr/lib/pycam/rauc-pre-install, shell and awk): its
version scheme, and the handler run as RAUC 1.8 runs it (RAUC_BUNDLE_MOUNT_POINT, exit status,
"<< error" lines) against a fake root and a real bundle's manifest — with each awk a device may have
(mawk in the Debian image, busybox awk in a small Yocto one, gawk)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pycam.errors import PycamError
from pycam.keys import version

HANDLER = version.HANDLER
AWKS = {"gawk": ["gawk"], "mawk": ["mawk"], "busybox": ["busybox", "awk"]}


@pytest.fixture(params=sorted(AWKS))
def awk_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH whose awk is the one under test (skipped when the host lacks it: scripts/setup-host)."""
    command = AWKS[request.param]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} missing (run: sudo scripts/setup-host)")
    shim = tmp_path_factory.mktemp(f"awk-{request.param}")
    (shim / "awk").write_text(f"#!/bin/sh\nexec {' '.join(command)} \"$@\"\n")
    (shim / "awk").chmod(0o755)
    return f"{shim}:{os.environ['PATH']}"


def handler(path: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(HANDLER), *args], env={**(env or os.environ), "PATH": path},
                          capture_output=True, text=True)


def compare(path: str, a: str, b: str) -> int:
    result = handler(path, "compare", a, b)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.mark.parametrize(("older", "newer"), [
    ("0.1.0", "0.1.0.1"),
    ("0.1.0.1", "0.2.0"),
    ("0.9.0", "0.10.0"),
    ("1.2.0-rc.1", "1.2.0-rc.2"),
    ("1.2.0-rc.2", "1.2.0-rc.10"),
    ("1.2.0-alpha", "1.2.0-alpha.1"),
    ("1.2.0-alpha.9", "1.2.0-beta"),
    ("1.2.0-2", "1.2.0-alpha"),
    ("1.2.0-Beta", "1.2.0-alpha"),
    ("1.2.0-rc.1", "1.2.0"),
    ("1.2.0", "1.2.1-rc.1"),
    ("1", "1.0.1"),
    ("99999999999999999998", "99999999999999999999"),  # beyond a double's precision
])
def test_version_order(awk_path: str, older: str, newer: str) -> None:
    assert compare(awk_path, older, newer) == -1
    assert compare(awk_path, newer, older) == 1


@pytest.mark.parametrize(("a", "b"), [("1.2", "1.2.0"), ("1.2.0+build.5", "1.2.0+other"), ("2.0.0", "2.0.0"),
                                      ("007.1", "7.1"), (" 1.2.0\n", "1.2.0")])
def test_version_equal(awk_path: str, a: str, b: str) -> None:
    assert compare(awk_path, a, b) == 0


@pytest.mark.parametrize("bad", ["", "v1.2.0", "1..2", "1.2.x", "1.2.0-", "1.2.0-rc..1", "latest", "1.2.0-rc.",
                                 "1.2.0+", "1,2"])
def test_version_scheme_refuses_garbage(awk_path: str, bad: str) -> None:
    result = handler(awk_path, "check", bad)
    assert result.returncode == 2
    assert "not a pycam version" in result.stderr or "empty pre-release" in result.stderr
    assert handler(awk_path, "compare", bad, "1.0").returncode == 2


def test_host_and_device_share_the_order() -> None:
    assert version.compare("0.9.0", "0.10.0") == -1
    with pytest.raises(version.BadVersion, match="not a pycam version"):
        version.compare("nightly", "0.1.0")


def test_handler_usage_errors(awk_path: str) -> None:
    for args in (["check"], ["compare", "1.0"], ["frobnicate"]):
        result = handler(awk_path, *args)
        assert result.returncode == 2 and "usage" in result.stderr


def _run(root: Path, mount: Path, version: str | None, path: str | None = None,
         extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    mount.mkdir(parents=True, exist_ok=True)
    lines = ["[update]", "compatible=pycam-qemuarm64", *extra] + ([f"version={version}"] if version else [])
    (mount / "manifest.raucm").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYCAM_HANDLER_ROOT": str(root), "RAUC_BUNDLE_MOUNT_POINT": str(mount)}
    return handler(path or os.environ["PATH"], env=env)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "pycam").mkdir(parents=True)
    (root / "etc" / "pycam" / "version").write_text("0.2.0\n")
    return root


def test_handler_refuses_a_downgrade_with_a_message_rauc_logs(awk_path: str, device: Path, tmp_path: Path) -> None:
    result = _run(device, tmp_path / "bundle", "0.1.0", awk_path)
    assert result.returncode == 1
    assert result.stdout == ("<< error pycam: downgrade refused: bundle version 0.1.0 is older than the running "
                             "0.2.0 (create /run/pycam/allow-downgrade to allow it)\n")
    refusal = (device / "run" / "pycam" / "rauc-refusal").read_text()
    assert "downgrade" in refusal and "0.1.0" in refusal


def test_handler_override_upgrade_and_retry(awk_path: str, device: Path, tmp_path: Path) -> None:
    (device / "run" / "pycam").mkdir(parents=True)
    (device / "run" / "pycam" / "allow-downgrade").touch()
    result = _run(device, tmp_path / "bundle", "0.1.0", awk_path)
    assert result.returncode == 0 and "allowed by /run/pycam/allow-downgrade" in result.stdout
    (device / "run" / "pycam" / "allow-downgrade").unlink()
    (device / "run" / "pycam" / "rauc-refusal").write_text("an earlier refusal\n")
    result = _run(device, tmp_path / "bundle", "0.3.0", awk_path)
    assert result.returncode == 0 and result.stdout == "<< debug pycam: version 0.3.0 over running 0.2.0\n"
    assert not (device / "run" / "pycam" / "rauc-refusal").exists()
    assert _run(device, tmp_path / "bundle", "0.2.0", awk_path).returncode == 0  # a retry of the same version


def test_handler_refuses_what_it_cannot_order(awk_path: str, device: Path, tmp_path: Path) -> None:
    result = _run(device, tmp_path / "bundle", None, awk_path)
    assert result.returncode == 1 and "the bundle's manifest has no version" in result.stdout
    result = _run(device, tmp_path / "bundle", "nightly", awk_path)
    assert result.returncode == 1 and "'nightly' is not a pycam version" in result.stdout
    (device / "etc" / "pycam" / "version").unlink()
    result = _run(device, tmp_path / "bundle", "0.3.0", awk_path)
    assert result.returncode == 1 and "the running version is unknown (no /etc/pycam/version)" in result.stdout


def test_handler_reads_version_only_from_the_update_section(awk_path: str, device: Path, tmp_path: Path) -> None:
    mount = tmp_path / "bundle"
    mount.mkdir()
    (mount / "manifest.raucm").write_text("[image.rootfs]\nversion=9.9.9\n\n[update]\ncompatible=x\n"
                                          "Version = 0.1.0\n\n[bundle]\nversion=9.9.9\n")
    env = {**os.environ, "PYCAM_HANDLER_ROOT": str(device), "RAUC_BUNDLE_MOUNT_POINT": str(mount)}
    result = handler(awk_path, env=env)
    assert result.returncode == 1 and "bundle version 0.1.0 is older" in result.stdout


def test_handler_outside_rauc_says_so(awk_path: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAUC_BUNDLE_MOUNT_POINT"}
    result = handler(awk_path, env=env)
    assert result.returncode == 2 and "RAUC_BUNDLE_MOUNT_POINT" in result.stderr


def test_handler_reads_the_manifest_rauc_mounts(product, device: Path, tmp_path: Path) -> None:
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
    env = {**os.environ, "PYCAM_HANDLER_ROOT": str(device), "RAUC_BUNDLE_MOUNT_POINT": str(out)}
    result = handler(os.environ["PATH"], env=env)
    assert result.returncode == 1 and "bundle version 0.0.7 is older than the running 0.2.0" in result.stdout


def test_build_refuses_a_version_devices_would_refuse() -> None:
    version.check_version("0.2.0-rc.1")
    with pytest.raises(PycamError, match="devices refuse bundles outside the version scheme") as err:
        version.check_version("nightly")
    assert "--version 1.2.0" in err.value.hint
    assert "'nightly' is not a pycam version" in str(err.value)
