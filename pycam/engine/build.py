"""`pycam build`: the default engine's pipeline from Debian packages to image, bundle and manifest.

  base (mmdebstrap, cached by package set) ─┐
  extract (kernel, busybox) → kernel+initramfs ├→ rootfs (squashfs) → disk image (+bmap) → bundle
  wheels (PyAV) + app wheel ────────────────┘

Outputs land in build/<board>/ under their final names only when complete; the manifest
is written last and lists every output with its size and sha256.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pycam import ROOT, __version__
from pycam.definition import Product
from pycam.engine import assemble, base, diskimage, hosttools, kernel, wheels
from pycam.engine.bundle import make_bundle
from pycam.engine.cache import Cache, describe
from pycam.engine.delta import make_delta_bundle
from pycam.engine.packages import load_packages
from pycam.engine.run import oserror
from pycam.errors import PycamError
from pycam.keys import KeySet, check_signing_cert
from pycam.keys.version import check_version
from pycam.log import log, stage

# Fixed timestamps make the root byte-for-byte reproducible (small deltas); the package
# set, not the commit, decides what the base is, so this is not the commit time.
DEFAULT_EPOCH = 1704067200  # 2024-01-01


def build_dir() -> Path:
    return Path(os.environ.get("PYCAM_BUILD_DIR", ROOT / "build"))


def epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))


@dataclass
class BuildOptions:
    version: str | None = None
    release: bool = False
    refresh_base: bool = False
    image: bool = True
    bundle: bool = True
    delta_from: Path | None = None  # a full bundle of an older release: also make a delta against it
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outputs:
    directory: Path
    disk: Path
    bmap: Path
    bundle: Path
    manifest: Path

    @property
    def bundle_manifest(self) -> Path:
        return self.bundle.with_name(self.bundle.name + ".json")


def outputs(product: Product, version: str) -> Outputs:
    d = build_dir() / product.board.name
    name = f"{product.ota.product}-{product.board.name}"
    return Outputs(
        directory=d,
        disk=d / f"{name}.img",
        bmap=d / f"{name}.img.bmap",
        bundle=d / f"{name}-{version}.raucb",
        manifest=d / "manifest.json",
    )


def _publish(src: Path, dst: Path) -> None:
    """Give a finished output its final name in one rename (work/ is on the same filesystem)."""
    os.replace(src, dst)


def check_board(product: Product) -> None:
    """The default engine boots boards whose bootloader comes from Debian (bootloader.uboot-binary)."""
    board = product.board
    if not board.uboot_binary:
        raise PycamError(
            f"board {board.name} has no bootloader for the default engine (its U-Boot and firmware come "
            "from the Yocto build)",
            f"build it with kas: kas build kas.yml:board/{board.name}/kas.yml (README, 'The Yocto engine')",
        )


def check_host(product: Product) -> None:
    hosttools.require_root()
    hosttools.require_tools()
    hosttools.require_binfmt(product.board.arch)
    hosttools.require_space(build_dir())


@contextmanager
def exclusive(cache: Path) -> Iterator[None]:
    """One build at a time per cache (build directories may share one): a build prunes the entries
    it did not use, which would pull them from under another build."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another pycam build is using the cache %s: waiting for it to finish", cache)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(product: Product, keys: KeySet, opts: BuildOptions) -> Outputs:
    started = time.monotonic()
    check_board(product)
    check_host(product)
    for warning in check_signing_cert(keys.require(), opts.release):
        log.warning("%s", warning)
    version = opts.version or product.ota.version
    check_version(version)
    out = outputs(product, version)
    work = out.directory / "work"
    try:
        with exclusive(build_dir() / "cache"):
            out.directory.mkdir(parents=True, exist_ok=True)
            work.mkdir(exist_ok=True)
            return _build(product, keys, opts, version, out, work, started)
    except OSError as exc:
        raise oserror(exc, "build", out.directory) from exc


def _build(product: Product, keys: KeySet, opts: BuildOptions, version: str, out: Outputs, work: Path,
           started: float) -> Outputs:
    cache = Cache(build_dir() / "cache")
    pkgs = load_packages()
    when = epoch()

    with stage("base", opts.timings):
        base_entry = base.build_base(cache, pkgs, when, refresh=opts.refresh_base)
    with stage("extract", opts.timings):
        extract_entry = base.extract_host_packages(cache, pkgs, refresh=opts.refresh_base)
    with stage("kernel", opts.timings):
        kernel_entry = kernel.build_kernel(cache, extract_entry, product, when)
    with stage("wheels", opts.timings):
        wheel_entry = wheels.download_wheels(cache, pkgs)
        site_entry = wheels.install_site_packages(cache, wheel_entry)
        local_entries = [wheels.build_local_wheel(cache, src, stage) for stage, src in wheels.local_dirs(pkgs)]
    with stage("rootfs", opts.timings):
        inputs = assemble.RootInputs(
            base=base_entry,
            kernel=kernel_entry,
            site=site_entry,
            local=tuple(wheels.wheel_files(entry)[0] for entry in local_entries),
            keyring=keys.keyring,
            release=opts.release,
            version=version,
        )
        system_entry = assemble.build_system(cache, product, pkgs, inputs, when)
        rootfs_entry = assemble.build_rootfs(cache, product, inputs, system_entry, when)
        rootfs = rootfs_entry / "rootfs.squashfs"
        build_id = (rootfs_entry / "build-id").read_text().strip()
        kernel_vfat = diskimage.build_kernel_vfat(cache, product, kernel_entry, when)

    if opts.image:
        with stage("image", opts.timings):
            disk = diskimage.build_disk(product, work / "genimage", kernel_vfat, rootfs, out.disk.name)
            diskimage.bmap(disk, work / "disk.bmap")
            _publish(work / "disk.bmap", out.bmap)
            _publish(disk, out.disk)
    if opts.bundle:
        with stage("bundle", opts.timings):
            make_bundle(product, keys, rootfs=rootfs, kernel_vfat=kernel_vfat, version=version,
                        build=build_id, out=out.bundle, work=work)
    if opts.delta_from:
        with stage("delta", opts.timings):
            delta = make_delta_bundle(product, keys, base_bundle=opts.delta_from,
                                      images={"rootfs": rootfs, "kernel": kernel_vfat}, version=version,
                                      build=build_id, out_dir=out.directory, work=work)
            log.info("delta bundle %s: %d bytes (full bundle %d)", delta.name, delta.stat().st_size,
                     out.bundle.stat().st_size if out.bundle.exists() else 0)

    cache.prune({base_entry, extract_entry, kernel_entry, wheel_entry, site_entry, *local_entries, system_entry,
                 rootfs_entry, kernel_vfat.parent})
    opts.timings["total"] = round(time.monotonic() - started, 1)
    info = {"rootfs": describe(rootfs), "kernel.vfat": describe(kernel_vfat)}
    contents = json.loads((system_entry / "packages.json").read_text())
    for wheel in inputs.local:
        contents[f"py:{wheels.wheel_name(wheel)}"] = wheels.wheel_version(wheel)
    if opts.bundle:
        write_manifest(product, out.bundle_manifest, version, build_id, kernel_entry, opts,
                       {out.bundle.name: describe(out.bundle), **info}, contents)
    if opts.image:
        files = {p.name: describe(p) for p in (out.disk, out.bmap, out.bundle) if p.exists()}
        write_manifest(product, out.manifest, version, build_id, kernel_entry, opts, {**files, **info}, contents)
    log.info("build %s done in %.0f s: %s", build_id, opts.timings["total"], out.directory)
    return out


def write_manifest(product: Product, path: Path, version: str, build_id: str, kernel_entry: Path,
                   opts: BuildOptions, files: dict[str, dict[str, object]], contents: dict[str, str]) -> None:
    """Written last, atomically: its presence means every file it lists is complete."""
    manifest = {
        "product": product.ota.product,
        "board": product.board.name,
        "compatible": product.compatible,
        "version": version,
        "build": build_id,
        "release": opts.release,
        "kernel": (kernel_entry / "kernel.version").read_text().strip(),
        "modules": len(kernel.module_names(kernel_entry)),
        "engine": f"pycam {__version__} (debian)",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "timings_s": opts.timings,
        "files": files,
        "contents": contents,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
