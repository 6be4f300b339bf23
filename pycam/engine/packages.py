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
    pins: tuple[tuple[str, str], ...] = ()  # (package, version): apt installs exactly these versions

    def key(self) -> dict[str, Any]:
        key: dict[str, Any] = {
            "suite": self.suite,
            "mirrors": self.mirrors,
            "packages": sorted(self.packages),
            "exclude": self.dpkg_exclude,
            "include": self.dpkg_include,
        }
        if self.pins:  # absent when unused: existing cache entries stay valid
            key["pins"] = sorted(self.pins)
        return key

    def apt_preferences(self) -> str:
        """The pins as an apt preferences file: they also hold the packages mmdebstrap installs first
        (apt, perl-base, ...), which `package=version` in the package list cannot downgrade."""
        return "\n".join(f"Package: {name}\nPin: version {version}\nPin-Priority: 1001\n"
                         for name, version in sorted(self.pins))


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
            pins=_pins(data.get("pins") or {}, path),
        )
    except (KeyError, TypeError) as exc:
        raise PycamError(f"{path}: missing or malformed entry {exc}") from None


def _pins(data: object, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise PycamError(f"{path}: pins must map package names to version strings",
                         'e.g. pins: {libssl3: "3.0.20-1~deb12u2"}')
    return tuple((str(name), version) for name, version in data.items())
