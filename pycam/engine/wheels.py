"""Python wheels for the target: pinned PyPI wheels (PyAV) and the local packages (app/, ota/client/).

Installed with pypa's `installer` into the root's /usr/local for the target's Python
(wheels of another architecture cannot go through pip's own install).
"""

from __future__ import annotations

import compileall
import configparser
import os
import py_compile
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from pycam import ROOT
from pycam.engine.cache import Cache, digest, file_sha256
from pycam.engine.packages import PackageSet
from pycam.engine.run import run
from pycam.errors import PycamError
from pycam.log import log

TARGET_PYTHON = "3.11"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
APP_DIR = ROOT / "app"  # PYCAM_APP_DIR builds another app tree into the image
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


def install_site_packages(cache: Cache, wheel_entry: Path) -> Path:
    """Entry with site.tar: the pinned wheels installed under /usr/local, stripped and byte-compiled.

    Cached apart from the root so an app change neither unpacks 96 MB of PyAV nor strips it again.
    """

    def produce(out: Path) -> None:
        staging = out / "root"
        for wheel in wheel_files(wheel_entry):
            install_wheel(wheel, staging)
        strip_shared_objects(staging / "usr" / "local" / "lib")
        compile_tree(staging, staging / "usr" / "local" / "lib" / f"python{TARGET_PYTHON}")
        with tarfile.open(out / "site.tar", "w") as tar:
            tar.add(staging / "usr", arcname="usr", filter=_root_owned)
        shutil.rmtree(staging)

    return cache.get("sitepackages", {"wheels": wheel_entry.name, "python": TARGET_PYTHON}, produce)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def compile_tree(root: Path, tree: Path) -> None:
    """Bytecode that never goes stale: the root is read-only, so Python could not rewrite it."""
    if not target_python_matches():
        log.warning("host Python is not %s: leaving bytecode to the target", TARGET_PYTHON)
        return
    if tree.is_dir():
        compileall.compile_dir(tree, quiet=2, workers=0, ddir="/" + str(tree.relative_to(root)),
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def _is_source(rel: Path) -> bool:
    """Not build output, caches or tests: what goes into the wheel (pip wheel writes build/, *.egg-info)."""
    parts = rel.parts
    return not (_APP_IGNORE & set(parts)) and parts[:1] != ("tests",) and not any(
        p.endswith(".egg-info") for p in parts)


def source_digest(src: Path) -> str:
    files = sorted(p for p in src.rglob("*") if p.is_file() and _is_source(p.relative_to(src)))
    return digest({str(p.relative_to(src)): file_sha256(p) for p in files})


def app_source_digest(app_dir: Path = APP_DIR) -> str:
    return source_digest(app_dir)


def local_dirs(pkgs: PackageSet) -> list[tuple[str, Path]]:
    """rootfs/packages.yml local-wheels -> (cache stage, directory); `app` is PYCAM_APP_DIR when set."""
    dirs = []
    for rel in pkgs.local_wheels:
        if rel == "app":
            dirs.append(("appwheel", Path(os.environ.get("PYCAM_APP_DIR", APP_DIR))))
        else:
            dirs.append(("wheel-" + rel.strip("/").replace("/", "-"), ROOT / rel))
    return dirs


def build_local_wheel(cache: Cache, src: Path, stage: str) -> Path:
    """Entry holding the wheel of one local package, cached by the digest of its source tree."""
    if not (src / "pyproject.toml").exists():
        raise PycamError(f"no Python package at {src} ({src / 'pyproject.toml'} is missing)",
                         "fix local-wheels in rootfs/packages.yml (or PYCAM_APP_DIR)")

    def produce(out: Path) -> None:
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, src],
            what=f"build the wheel of {src}", check_space=out)

    return cache.get(stage, {"source": source_digest(src)}, produce)


def build_app_wheel(cache: Cache, app_dir: Path | None = None) -> Path:
    app_dir = app_dir or Path(os.environ.get("PYCAM_APP_DIR", APP_DIR))
    if not (app_dir / "pyproject.toml").exists():
        raise PycamError(f"no camera app at {app_dir} (app/pyproject.toml is missing)")
    return build_local_wheel(cache, app_dir, "appwheel")


def site_packages(prefix: str) -> str:
    # Debian's Python reads /usr/local/lib/pythonX.Y/dist-packages; other prefixes use site-packages
    name = "dist-packages" if prefix == "/usr/local" else "site-packages"
    return f"{prefix}/lib/python{TARGET_PYTHON}/{name}"


def console_scripts(wheel: Path) -> list[str]:
    """The commands a wheel declares (entry_points.txt, [console_scripts])."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        if not names:
            return []
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.read_string(zf.read(names[0]).decode())
    return sorted(parser["console_scripts"]) if parser.has_section("console_scripts") else []


def install_wheel(wheel: Path, root: Path, prefix: str = "/usr/local") -> None:
    site = site_packages(prefix)
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


def wheel_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].replace("_", "-")


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def wheel_files(entry: Path) -> list[Path]:
    return sorted(entry.glob("*.whl"))


def target_python_matches() -> bool:
    """Bytecode compiled on the host is valid on the target only for the same minor version."""
    return f"{sys.version_info.major}.{sys.version_info.minor}" == TARGET_PYTHON

