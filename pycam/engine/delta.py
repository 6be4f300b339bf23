"""Delta bundles: a signed RAUC bundle carrying binary patches against an older release's images.

Method, chosen by measurement (bench/delta_bench.py, bench/results/delta.json): xdelta3 (VCDIFF)
of each slot image. The root is built reproducibly, so an unchanged file keeps its bytes, but a
change moves everything after it; xdelta3 finds the moved data (RAUC 1.8's block-hash-index does
not: it matches aligned 4 KiB blocks), it encodes in about a second where bsdiff and
`zstd --patch-from` take 20-30 s, and it decodes in ~30 MB of memory reading the source slot on
demand (bspatch and zstd hold both images in memory). Debian's RAUC is built without streaming,
so the bytes a delta saves are the bytes a device downloads.

The bundle's hook (ota/hooks/delta-install) checks the running slots against the base image
hashes before anything is written, rebuilds each image into the target slot from the active one
and verifies the result's sha256 before RAUC activates the slot.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pycam import ROOT
from pycam.definition import Product
from pycam.engine.bundle import squashfs_args
from pycam.engine.cache import describe
from pycam.engine.run import run
from pycam.errors import PycamError
from pycam.generate.rauc import bundle_manifest
from pycam.keys import KeySet
from pycam.log import log

HOOK = ROOT / "ota" / "hooks" / "delta-install"
METHOD = "xdelta3"
IMAGES = {"rootfs": "rootfs.squashfs", "kernel": "kernel.vfat"}  # slot class -> file in a full bundle


@dataclass(frozen=True)
class Release:
    """A full bundle unpacked: what a delta is made against."""

    bundle: Path
    version: str
    build: str
    compatible: str
    images: dict[str, Path]


def delta_name(product: Product, version: str, base_version: str) -> str:
    return f"{product.ota.product}-{product.board.name}-{version}.delta-from-{base_version}.raucb"


def unpack_release(bundle: Path, keys: KeySet, work: Path) -> Release:
    """Extract a full bundle after RAUC has checked its signature against our keyring."""
    if not bundle.is_file():
        raise PycamError(f"--delta-from: no bundle at {bundle}", "give the full .raucb of the release devices run")
    target = work / "delta-base"
    shutil.rmtree(target, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    run(["rauc", "extract", f"--keyring={keys.keyring}", bundle, target], what=f"rauc extract {bundle.name}")
    manifest = configparser.ConfigParser(interpolation=None)
    manifest.read(target / "manifest.raucm")
    if manifest.has_section("hooks") and "install-check" in manifest["hooks"].get("hooks", ""):
        raise PycamError(f"--delta-from {bundle.name} is itself a delta bundle",
                         "make deltas from the full bundle of the base release")
    images: dict[str, Path] = {}
    for cls, filename in IMAGES.items():
        section = f"image.{cls}"
        if not manifest.has_section(section) or manifest[section].get("filename") != filename:
            raise PycamError(f"--delta-from {bundle.name} has no {filename} image for slot class {cls}",
                             "make deltas from a full bundle built by pycam")
        images[cls] = target / filename
    update = manifest["update"]
    return Release(bundle=bundle, version=update.get("version", ""), build=update.get("build", ""),
                   compatible=update.get("compatible", ""), images=images)


def check_base(product: Product, base: Release, version: str) -> None:
    if base.compatible != product.compatible:
        raise PycamError(f"--delta-from {base.bundle.name} is for '{base.compatible}', this build is "
                         f"'{product.compatible}'", "pick a bundle built for the same board")
    if base.version == version:
        raise PycamError(f"--delta-from {base.bundle.name} has the same version {version} as this build",
                         "give the new build its own version (--version)")


# xdelta3 -B, the same on both ends: the device reads the active slot through a block device, which
# xdelta3 treats as a stream, so the encoder must not refer further back than the decoder keeps in
# memory ("non-seekable source in decode" otherwise). Measured: the patches are no larger than with a
# window holding the whole base (8.07 MB either way for the Debian-update root), decoding takes ~37 MB.
SOURCE_WINDOW = 16 * 1024 * 1024


def make_patch(base: Path, new: Path, out: Path) -> None:
    run(["xdelta3", "-e", "-9", "-f", "-B", str(SOURCE_WINDOW), "-s", base, new, out],
        what=f"xdelta3 {new.name}", check_space=out.parent)


def make_delta_bundle(product: Product, keys: KeySet, *, base_bundle: Path, images: dict[str, Path], version: str,
                      build: str, out_dir: Path, work: Path) -> Path:
    """images: slot class -> the new full image. Returns the delta bundle (its .json sidecar beside it)."""
    base = unpack_release(base_bundle, keys, work)
    check_base(product, base, version)
    content = work / "delta-content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    patches, meta = {}, {}
    for cls, new in images.items():
        patch = content / f"{cls}.xdelta"
        make_patch(base.images[cls], new, patch)
        patches[cls] = patch.name
        meta[cls] = {"patch": patch.name, "base": describe(base.images[cls]), "target": describe(new)}
        log.info("delta %s: %s -> %d bytes (full image %d)", cls, patch.name, patch.stat().st_size,
                 new.stat().st_size)
    info = {"method": METHOD, "base": {"version": base.version, "build": base.build},
            "target": {"version": version, "build": build}, "images": meta}
    (content / "delta.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.copy2(HOOK, content / HOOK.name)
    os.chmod(content / HOOK.name, 0o755)
    (content / "manifest.raucm").write_text(bundle_manifest(
        product, version, build, patches, bundle_hook=HOOK.name, image_hook="install",
        description=f"{product.ota.product} firmware for {product.board.name}, delta from {base.version}"))

    out = out_dir / delta_name(product, version, base.version)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.unlink(missing_ok=True)
    run(["rauc", "bundle", f"--cert={keys.cert}", f"--key={keys.key}", f"--keyring={keys.keyring}",
         *squashfs_args(product), content, tmp],
        what="rauc bundle (delta)", check_space=out_dir)
    sidecar = {
        "product": product.ota.product,
        "board": product.board.name,
        "compatible": product.compatible,
        "version": version,
        "build": build,
        "base": base.version,
        "base_build": base.build,
        "method": METHOD,
        "files": {out.name: describe(tmp)},
        "images": meta,
    }
    os.replace(tmp, out)
    side = out.with_name(out.name + ".json")
    side_tmp = side.with_name(f".{side.name}.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
    os.replace(side_tmp, side)
    shutil.rmtree(content)
    shutil.rmtree(work / "delta-base", ignore_errors=True)
    return out
