"""Stage `rootfs`: the Debian base made into the pycam root, packed as squashfs in two layers.

The system layer (kernel modules, PyAV, overlay, generated configuration, units, trimming)
is cached and does not depend on the app's code. The app goes under /opt/pycam, a
top-level directory the system layer does not have, and is appended to a copy of the
system squashfs with mksquashfs's append mode: an app-only change compresses kilobytes,
not the whole root.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pycam import ROOT
from pycam.definition import Product
from pycam.engine import wheels
from pycam.engine.cache import Cache, digest, file_sha256, tree_sha256
from pycam.engine.packages import PackageSet
from pycam.engine.run import run
from pycam.generate.rauc import KEYRING_PATH
from pycam.generate.rootfiles import root_files
from pycam.log import log

OVERLAY = ROOT / "rootfs" / "overlay"
UNITS = ROOT / "rootfs" / "units.yml"
APP_UNIT = ROOT / "app" / "systemd" / "pycam-app.service"
RECIPE = 5
# xz with 1 MiB blocks: the smallest root of the settings measured (bench/results/squashfs.json)
# 256 KiB blocks, not 1 MiB: a changed file re-encodes the blocks (and shared fragment blocks) it sits
# in, so smaller blocks halve the delta of a security update for a 6 % larger root (bench/delta_bench.py)
SQUASHFS_OPTS = ["-comp", "xz", "-b", "256K"]


APP_PREFIX = "/opt/pycam"
# Links into the app layer: the build id names the app too, and a version bump alone must not
# rebuild (and re-compress) the system layer, or every release would cost a cold rootfs.
APP_LAYER_FILES = {"/etc/pycam/build-id": "build-id", "/etc/pycam/version": "version"}


@dataclass(frozen=True)
class RootInputs:
    base: Path
    kernel: Path
    site: Path  # pinned wheels, installed (wheels.install_site_packages)
    local: tuple[Path, ...]  # wheels of the local packages (camera app, OTA client), installed under APP_PREFIX
    keyring: Path
    release: bool
    version: str


def system_key(product: Product, pkgs: PackageSet, inputs: RootInputs) -> dict[str, Any]:
    """Everything the system layer depends on: not the app's code, only its unit and commands."""
    return {
        "recipe": RECIPE,
        "base": inputs.base.name,
        "kernel": inputs.kernel.name,
        "site": inputs.site.name,
        "app-commands": local_commands(inputs),
        "overlay": tree_sha256(OVERLAY),
        "units": UNITS.read_text(),
        "app-unit": file_sha256(APP_UNIT) if APP_UNIT.exists() else None,
        "generated": _system_files(product, inputs.version),
        "keyring": file_sha256(inputs.keyring),
        "trim": pkgs.trim,
        "release": inputs.release,
        "squashfs": SQUASHFS_OPTS,
    }


def build_system(cache: Cache, product: Product, pkgs: PackageSet, inputs: RootInputs, epoch: int) -> Path:
    """Entry with system.squashfs: the whole root but /opt/pycam."""

    def produce(out: Path) -> None:
        root = out / "root"
        root.mkdir()
        _populate(root, product, pkgs, inputs)
        (out / "packages.json").write_text(json.dumps(installed_packages(root), indent=1, sort_keys=True) + "\n")
        _squash(root, out / "system.squashfs", epoch, append=False)
        shutil.rmtree(root)

    return cache.get(f"system-{product.board.name}", system_key(product, pkgs, inputs), produce)


def build_rootfs(cache: Cache, product: Product, inputs: RootInputs, system: Path, epoch: int) -> Path:
    """Entry with rootfs.squashfs and build-id: `system` (build_system's entry) with the app appended.

    The build id names exactly these inputs."""
    key = {"system": system.name, "app": [file_sha256(w) for w in inputs.local], "prefix": APP_PREFIX,
           "version": inputs.version}
    build_id = f"{inputs.version}+{digest(key)[:12]}"

    def produce(out: Path) -> None:
        layer = out / "layer"
        prefix = layer / APP_PREFIX.lstrip("/")
        for wheel in inputs.local:
            wheels.install_wheel(wheel, layer, prefix=APP_PREFIX)
        wheels.compile_tree(layer, prefix / "lib")
        (prefix / "build-id").write_text(build_id + "\n")
        (prefix / "version").write_text(inputs.version + "\n")
        shutil.copy2(system / "system.squashfs", out / "rootfs.squashfs")
        _squash(layer, out / "rootfs.squashfs", epoch, append=True)
        (out / "build-id").write_text(build_id + "\n")
        shutil.rmtree(layer)

    log.info("[rootfs] app layer %s on %s", APP_PREFIX, system.name)
    return cache.get(f"rootfs-{product.board.name}", key, produce)


def local_commands(inputs: RootInputs) -> list[str]:
    """Console scripts of every local package: the system layer links them into /usr/local/bin."""
    return sorted({c for wheel in inputs.local for c in wheels.console_scripts(wheel)})


def installed_packages(root: Path) -> dict[str, str]:
    """Debian packages (dpkg status) and Python distributions in the root -> version: the manifest's bill."""
    found: dict[str, str] = {}
    status = root / "var" / "lib" / "dpkg" / "status"
    for para in status.read_text().split("\n\n") if status.exists() else []:
        fields = dict(line.split(": ", 1) for line in para.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found[f"deb:{fields['Package']}"] = fields.get("Version", "")
    for meta in root.glob(f"usr/local/lib/python{wheels.TARGET_PYTHON}/dist-packages/*.dist-info/METADATA"):
        head = dict(line.split(": ", 1) for line in meta.read_text().split("\n\n")[0].splitlines() if ": " in line)
        found[f"py:{head.get('Name', meta.parent.name)}"] = head.get("Version", "")
    return found


def _squash(tree: Path, image: Path, epoch: int, *, append: bool) -> None:
    opts = [] if append else ["-noappend", *SQUASHFS_OPTS]
    run(["mksquashfs", tree, image, *opts, "-quiet", "-no-progress", "-mkfs-time", str(epoch),
         "-all-time", str(epoch)], what=f"mksquashfs ({'app layer' if append else 'system layer'})",
        check_space=image.parent)


def _populate(root: Path, product: Product, pkgs: PackageSet, inputs: RootInputs) -> None:
    log.info("[rootfs] unpacking the Debian base")
    with tarfile.open(inputs.base / "root.tar") as tar:
        tar.extractall(root, filter="fully_trusted")  # our own mmdebstrap output: devices and owners matter

    log.info("[rootfs] kernel modules")
    shutil.copytree(inputs.kernel / "modules" / "lib" / "modules", root / "usr" / "lib" / "modules",
                    symlinks=True, dirs_exist_ok=True)

    log.info("[rootfs] Python packages (pinned wheels)")
    with tarfile.open(inputs.site / "site.tar") as tar:
        tar.extractall(root, filter="fully_trusted")
    _app_hooks(root, local_commands(inputs))

    log.info("[rootfs] overlay, generated configuration, units")
    shutil.copytree(OVERLAY, root, symlinks=True, dirs_exist_ok=True)
    for path, text in _system_files(product, inputs.version).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    keyring = root / KEYRING_PATH.lstrip("/")
    shutil.copy2(inputs.keyring, keyring)
    keyring.chmod(0o644)
    if APP_UNIT.exists():
        shutil.copy2(APP_UNIT, root / "etc" / "systemd" / "system" / APP_UNIT.name)
    _units(root)

    for mountpoint in ("data", "factory"):
        (root / mountpoint).mkdir(exist_ok=True)
    _login(root, release=inputs.release)
    _trim(root, pkgs.trim)
    _read_only_root(root)


def _system_files(product: Product, version: str) -> dict[str, str]:
    """root_files but those the app layer carries."""
    return {path: text for path, text in root_files(product, version).items() if path not in APP_LAYER_FILES}


def _app_hooks(root: Path, commands: list[str]) -> None:
    """Where the system finds the app layer: its site-packages, its commands, the build id."""
    site = root / "usr" / "local" / "lib" / f"python{wheels.TARGET_PYTHON}" / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "pycam-app.pth").write_text(wheels.site_packages(APP_PREFIX) + "\n")
    bindir = root / "usr" / "local" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for command in commands:
        (bindir / command).symlink_to(f"{APP_PREFIX}/bin/{command}")
    for path, name in APP_LAYER_FILES.items():
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"{APP_PREFIX}/{name}")
    opt = root / "opt"
    if opt.exists():
        opt.rmdir()  # the app layer brings /opt; appending would rename a clash to opt_1


def _units(root: Path) -> None:
    units = yaml.safe_load(UNITS.read_text())
    for unit in units.get("enable", []):
        run(["systemctl", f"--root={root}", "enable", unit], what=f"enable {unit}")
    for unit in units.get("mask", []):
        run(["systemctl", f"--root={root}", "mask", unit], what=f"mask {unit}")


def _read_only_root(root: Path) -> None:
    """What systemd-tmpfiles and PAM would otherwise try to create at boot on the read-only root."""
    (root / "etc" / "machine-id").write_text("")  # bound from /data by the initramfs
    dbus_id = root / "var" / "lib" / "dbus" / "machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (root / "var" / "cache" / "private").mkdir(mode=0o700, parents=True, exist_ok=True)
    (root / "etc" / "default" / "locale").write_text("LANG=C.UTF-8\n")


def _login(root: Path, release: bool) -> None:
    """Development images: root logs in on the console without a password. Release: locked."""
    shadow = root / "etc" / "shadow"
    lines = shadow.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("root:"):
            fields = line.split(":")
            fields[1] = "*" if release else ""
            lines[i] = ":".join(fields)
    shadow.write_text("\n".join(lines) + "\n")


def _trim(root: Path, patterns: tuple[str, ...]) -> None:
    removed = 0
    for pattern in patterns:
        for entry in sorted(root.glob(pattern.lstrip("/")), reverse=True):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    log.info("[rootfs] trimmed %d paths", removed)
