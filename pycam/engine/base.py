"""Stage `base`: the Debian root from packages with mmdebstrap, cached by its package set.

Two mmdebstrap runs: the root itself (maintainer scripts run under qemu-user, sped up by
eatmydata, no initramfs-tools so no 14-minute initramfs), and an `extract` run that
unpacks the kernel and busybox natively on the host for the kernel stage to pick from.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pycam.engine.cache import Cache
from pycam.engine.packages import PackageSet
from pycam.engine.run import run

HOOKS = Path("/usr/share/mmdebstrap/hooks")
# bump when the commands below change in a way the package set does not show
RECIPE = 4
EXTRACT_RECIPE = 2


def _mirror_args(pkgs: PackageSet) -> list[str]:
    return [pkgs.suite, *pkgs.mirrors]


def _pin_args(pkgs: PackageSet, out: Path) -> list[str]:
    """apt preferences in the chroot before apt resolves anything (packages.yml `pins`)."""
    if not pkgs.pins:
        return []
    prefs = out / "pycam-pins.pref"
    prefs.write_text(pkgs.apt_preferences())
    return [f'--setup-hook=mkdir -p "$1/etc/apt/preferences.d" && cp {prefs} "$1/etc/apt/preferences.d/pycam-pins"']


def build_base(cache: Cache, pkgs: PackageSet, epoch: int, refresh: bool = False) -> Path:
    """A directory holding root.tar (the Debian root, not yet configured for pycam)."""

    def produce(out: Path) -> None:
        cmd = [
            "mmdebstrap",
            "--architectures=arm64",
            "--variant=minbase",
            "--mode=root",
            f"--hook-dir={HOOKS / 'merged-usr'}",
            f"--hook-dir={HOOKS / 'eatmydata'}",
            '--aptopt=Apt::Install-Recommends "false"',
            *_pin_args(pkgs, out),
            *[f"--dpkgopt=path-exclude={p}" for p in pkgs.dpkg_exclude],
            *[f"--dpkgopt=path-include={p}" for p in pkgs.dpkg_include],
            "--include=" + ",".join(pkgs.packages),
            # the camera service's account: video group for /dev/video*, home on /data
            "--customize-hook=chroot \"$1\" useradd --system --home-dir /data/app --no-create-home"
            " --shell /usr/sbin/nologin --groups video pycam",
            # Debian's bytecode is timestamp-checked; on a read-only root stale .pyc would be
            # recompiled in memory at every start: replace it with never-checked bytecode, natively
            f"--customize-hook={sys.executable} -m pycam.engine.pycompile \"$1\"",
            *_mirror_args(pkgs)[:1],
            str(out / "root.tar"),
            *_mirror_args(pkgs)[1:],
        ]
        run(cmd, what="mmdebstrap (Debian root)", env={"SOURCE_DATE_EPOCH": str(epoch)}, stream=True,
            check_space=out)

    return cache.get("base", {"recipe": RECIPE, "packages": pkgs.key(), "epoch": epoch}, produce, refresh=refresh)


def extract_host_packages(cache: Cache, pkgs: PackageSet, refresh: bool = False) -> Path:
    """A directory `tree/` with host-extract packages unpacked (kernel, busybox)."""

    def produce(out: Path) -> None:
        run(
            [
                "mmdebstrap",
                "--architectures=arm64",
                "--variant=extract",
                "--mode=root",
                *_pin_args(pkgs, out),
                "--include=" + ",".join(pkgs.host_extract),
                *_mirror_args(pkgs)[:1],
                str(out / "tree"),
                *_mirror_args(pkgs)[1:],
            ],
            what="mmdebstrap (kernel and busybox)",
            check_space=out,
        )
        # only what the kernel stage picks from is worth caching
        tree = out / "tree"
        for sub in ("dev", "etc", "tmp", "var", "run", "proc", "sys"):
            shutil.rmtree(tree / sub, ignore_errors=True)
        # unpacked, not installed: no postinst ran depmod, so the kernel stage could not resolve deps
        for moddir in (tree / "lib" / "modules").iterdir():
            run(["depmod", "-b", tree, moddir.name], what="depmod (Debian kernel)")

    key: dict[str, object] = {"recipe": EXTRACT_RECIPE, "host-extract": sorted(pkgs.host_extract),
                              "mirrors": pkgs.mirrors}
    if pkgs.pins:
        key["pins"] = sorted(pkgs.pins)
    return cache.get("extract", key, produce, refresh=refresh)
