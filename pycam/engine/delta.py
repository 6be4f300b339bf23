"""Delta bundles: a signed RAUC bundle carrying binary patches against an older release's images.

Method, chosen by measurement (bench/delta_bench.py, bench/results/delta.json): xdelta3 (VCDIFF)
of each slot image. The root is built reproducibly, so an unchanged file keeps its bytes, but a
change moves everything after it; xdelta3 finds the moved data (RAUC 1.8's block-hash-index does
not: it matches aligned 4 KiB blocks), it encodes in about a second where bsdiff and
`zstd --patch-from` take 20-30 s, and it decodes in ~30 MB of memory reading the source slot on
demand (bspatch and zstd hold both images in memory). Debian's RAUC is built without streaming,
so the bytes a delta saves are the bytes a device downloads.

The patches and delta.json come from ota/delta/make-delta (standard library only), the one
implementation both engines run: meta-pycam's pycam-bundle-delta runs its synced copy, so a device
of either engine accepts a delta from either engine's tooling.

The bundle's hook (ota/hooks/delta-install) checks the running slots against the base image
hashes before anything is written, rebuilds each image into the target slot from the active one
and verifies the result's sha256 before RAUC activates the slot.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pycam import ROOT
from pycam.definition import Product
from pycam.engine.bundle import squashfs_args
from pycam.engine.cache import describe
from pycam.engine.run import raise_if_disk_full, run
from pycam.errors import PycamError
from pycam.generate.rauc import bundle_manifest
from pycam.keys import KeySet
from pycam.log import log

HOOK = ROOT / "ota" / "hooks" / "delta-install"
# patches + delta.json from the base and new images: shared with meta-pycam's pycam-bundle-delta
MAKE_DELTA = ROOT / "ota" / "delta" / "make-delta"
BAD_INPUT = 2  # make-delta's exit status for input it refuses (problem and hint on stderr)


def delta_name(product: Product, version: str, base_version: str) -> str:
    return f"{product.ota.product}-{product.board.name}-{version}.delta-from-{base_version}.raucb"


def extract_base(bundle: Path, keys: KeySet, work: Path) -> Path:
    """Extract a full bundle after RAUC has checked its signature against our keyring."""
    if not bundle.is_file():
        raise PycamError(f"--delta-from: no bundle at {bundle}", "give the full .raucb of the release devices run")
    target = work / "delta-base"
    shutil.rmtree(target, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    run(["rauc", "extract", f"--keyring={keys.keyring}", bundle, target], what=f"rauc extract {bundle.name}")
    return target


def make_delta_content(product: Product, base: Path, base_name: str, images: dict[str, Path], *, version: str,
                       build: str, out: Path) -> dict[str, Any]:
    """Run ota/delta/make-delta: the patches and delta.json in out; returns delta.json's content."""
    cmd = [sys.executable, str(MAKE_DELTA), "--base", str(base), "--compatible", product.compatible,
           "--version", version, "--build", build, "--out", str(out),
           *(f"--image={cls}={path}" for cls, path in images.items())]
    log.debug("$ %s", shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    for line in proc.stdout.splitlines():
        log.info("%s", line.removeprefix("make-delta: "))
    if proc.returncode == BAD_INPUT:
        said = dict(line.removeprefix("make-delta: ").split(": ", 1) for line in proc.stderr.splitlines()
                    if line.startswith(("make-delta: error: ", "make-delta: hint: ")))
        raise PycamError(f"--delta-from {base_name}: {said.get('error', proc.stderr.strip())}", said.get("hint", ""))
    if proc.returncode != 0:
        raise_if_disk_full(out, "make-delta")
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise PycamError(f"make-delta failed (exit {proc.returncode})" + (f"\n{tail}" if tail else ""))
    info: dict[str, Any] = json.loads((out / "delta.json").read_text())
    return info


def make_delta_bundle(product: Product, keys: KeySet, *, base_bundle: Path, images: dict[str, Path], version: str,
                      build: str, out_dir: Path, work: Path) -> Path:
    """images: slot class -> the new full image. Returns the delta bundle (its .json sidecar beside it)."""
    base = extract_base(base_bundle, keys, work)
    content = work / "delta-content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    info = make_delta_content(product, base, base_bundle.name, images, version=version, build=build, out=content)
    base_version, meta = info["base"]["version"], info["images"]
    shutil.copy2(HOOK, content / HOOK.name)
    os.chmod(content / HOOK.name, 0o755)
    (content / "manifest.raucm").write_text(bundle_manifest(
        product, version, build, {cls: image["patch"] for cls, image in meta.items()}, bundle_hook=HOOK.name,
        image_hook="install",
        description=f"{product.ota.product} firmware for {product.board.name}, delta from {base_version}"))

    out = out_dir / delta_name(product, version, base_version)
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
        "base": base_version,
        "base_build": info["base"]["build"],
        "method": info["method"],
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
