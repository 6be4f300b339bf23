"""Python wheels for the target: pinned PyPI wheels (PyAV) and the app built from app/.

Installed with pypa's `installer` into the root's /usr/local for the target's Python
(wheels of another architecture cannot go through pip's own install).
"""

from __future__ import annotations

import sys
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from pycam import ROOT
from pycam.engine.cache import Cache, digest, file_sha256
from pycam.engine.packages import PackageSet
from pycam.engine.run import run
from pycam.errors import PycamError

TARGET_PYTHON = "3.11"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
APP_DIR = ROOT / "app"
_APP_IGNORE = {"__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist", ".mypy_cache"}


def download_wheels(cache: Cache, pkgs: PackageSet) -> Path:
    """Entry holding the pinned wheels, each checked against its sha256."""

    def produce(out: Path) -> None:
        reqs = out / "requirements.txt"
        reqs.write_text("".join(f"{w.requirement} --hash=sha256:{w.sha256}\n" for w in pkgs.wheels))
        platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             *platform_args, "--python-version", TARGET_PYTHON, "--implementation", "cp",
             "--require-hashes", "-r", reqs, "-d", out],
            what="pip download (target wheels)", check_space=out)
        reqs.unlink()

    key = {"wheels": [(w.requirement, w.sha256) for w in pkgs.wheels], "platforms": PLATFORMS}
    return cache.get("wheels", key, produce)


def app_source_digest(app_dir: Path = APP_DIR) -> str:
    files = sorted(
        p for p in app_dir.rglob("*")
        if p.is_file() and not (_APP_IGNORE & set(p.relative_to(app_dir).parts)) and "tests" not in
        p.relative_to(app_dir).parts[:1]
    )
    return digest({str(p.relative_to(app_dir)): file_sha256(p) for p in files})


def build_app_wheel(cache: Cache, app_dir: Path = APP_DIR) -> Path:
    if not (app_dir / "pyproject.toml").exists():
        raise PycamError(f"no camera app at {app_dir} (app/pyproject.toml is missing)")

    def produce(out: Path) -> None:
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, app_dir],
            what="build the camera app wheel (app/)", check_space=out)

    return cache.get("appwheel", {"source": app_source_digest(app_dir)}, produce)


def install_wheel(wheel: Path, root: Path) -> None:
    prefix = "/usr/local"
    site = f"{prefix}/lib/python{TARGET_PYTHON}/dist-packages"
    scheme = {
        "purelib": str(root) + site,
        "platlib": str(root) + site,
        "headers": f"{root}{prefix}/include/python{TARGET_PYTHON}",
        "scripts": f"{root}{prefix}/bin",
        "data": f"{root}{prefix}",
    }
    destination = SchemeDictionaryDestination(
        scheme, interpreter="/usr/bin/python3", script_kind="posix", bytecode_optimization_levels=()
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"pycam\n"})


def strip_shared_objects(directory: Path) -> None:
    """PyPI wheels ship their extension modules with debug info (PyAV: 41 MB of it)."""
    objects = sorted(str(p) for p in directory.rglob("*.so*") if p.is_file() and not p.is_symlink())
    if objects:
        run(["aarch64-linux-gnu-strip", "--strip-unneeded", *objects], what="strip target shared objects")


def wheel_files(entry: Path) -> list[Path]:
    return sorted(entry.glob("*.whl"))


def target_python_matches() -> bool:
    """Bytecode compiled on the host is valid on the target only for the same minor version."""
    return f"{sys.version_info.major}.{sys.version_info.minor}" == TARGET_PYTHON

