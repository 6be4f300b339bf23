"""rootfs/packages.yml: the Debian package set, host-extracted packages, pinned wheels, trim list."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pycam import ROOT
from pycam.errors import PycamError

DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Wheel:
    requirement: str
    sha256: str


@dataclass(frozen=True)
class PackageSet:
    suite: str
    mirrors: tuple[str, ...]
    packages: tuple[str, ...]
    host_extract: tuple[str, ...]
    wheels: tuple[Wheel, ...]
    dpkg_exclude: tuple[str, ...]
    dpkg_include: tuple[str, ...]
    trim: tuple[str, ...]
    local_wheels: tuple[str, ...] = ("app",)  # directories of this repository, built into the app layer

    def key(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "mirrors": self.mirrors,
            "packages": sorted(self.packages),
            "exclude": self.dpkg_exclude,
            "include": self.dpkg_include,
        }


def load_packages(root: Path = ROOT) -> PackageSet:
    # PYCAM_PACKAGES: another package set for the same product (bench/delta_bench.py's point-release root)
    path = Path(os.environ.get("PYCAM_PACKAGES", root / "rootfs" / "packages.yml"))
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PycamError(f"cannot read {path}: {exc}") from None
    mirror = os.environ.get("PYCAM_DEBIAN_MIRROR")
    mirrors = tuple(m.replace(DEFAULT_MIRROR, mirror) if mirror else m for m in data["mirrors"])
    try:
        return PackageSet(
            suite=data["suite"],
            mirrors=mirrors,
            packages=tuple(data["packages"]),
            host_extract=tuple(data.get("host-extract", [])),
            wheels=tuple(Wheel(w["requirement"], w["sha256"]) for w in data.get("wheels", [])),
            dpkg_exclude=tuple(data.get("dpkg-exclude", [])),
            dpkg_include=tuple(data.get("dpkg-include", [])),
            trim=tuple(data.get("trim", [])),
            local_wheels=tuple(data.get("local-wheels", ["app"])),
        )
    except (KeyError, TypeError) as exc:
        raise PycamError(f"{path}: missing or malformed entry {exc}") from None
