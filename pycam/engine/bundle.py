"""Signed RAUC bundles (verity format) of a built root and kernel partition."""

from __future__ import annotations

import shutil
from pathlib import Path

from pycam.definition import Product
from pycam.engine.run import run
from pycam.generate.rauc import bundle_manifest
from pycam.keys import KeySet


def make_bundle(product: Product, keys: KeySet, *, rootfs: Path, kernel_vfat: Path, version: str, build: str,
                out: Path, work: Path) -> Path:
    """Write `out` atomically: a half-written bundle never carries the final name."""
    content = work / "bundle-content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    images = {"rootfs": "rootfs.squashfs", "kernel": "kernel.vfat"}
    # hard links: no copy of the payloads
    for src, name in ((rootfs, images["rootfs"]), (kernel_vfat, images["kernel"])):
        try:
            (content / name).hardlink_to(src)
        except OSError:
            shutil.copy2(src, content / name)
    (content / "manifest.raucm").write_text(bundle_manifest(product, version, build, images))
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.unlink(missing_ok=True)
    run(["rauc", "bundle", f"--cert={keys.cert}", f"--key={keys.key}", f"--keyring={keys.keyring}",
         *squashfs_args(product), content, tmp], what="rauc bundle", check_space=out.parent)
    tmp.rename(out)
    shutil.rmtree(content)
    return out


def squashfs_args(product: Product) -> list[str]:
    """ota.yml bundle.mksquashfs-args, for full and delta bundles alike."""
    args = product.ota.bundle_mksquashfs_args
    return [f"--mksquashfs-args={args}"] if args else []


def bundle_info(bundle: Path, keyring: Path) -> str:
    return run(["rauc", "info", f"--keyring={keyring}", bundle], what="rauc info", capture=True)
