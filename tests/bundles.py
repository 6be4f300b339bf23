"""Crafted RAUC bundles for refusal tests: the product's own manifest (pycam.generate.rauc), signed
by the real `rauc bundle` with any certificate, optionally without the keyring check that
`pycam bundle` does (so that expired or foreign signers can be made at all)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from pycam.definition import Product
from pycam.generate.rauc import bundle_manifest
from pycam.keys import KeySet, pki


@dataclass(frozen=True)
class Signer:
    cert: Path | str
    key: Path | str


def issue(keys: KeySet, directory: Path, name: str, not_before: dt.datetime, not_after: dt.datetime) -> Signer:
    """A signing certificate from keys' CA with its own key (the CA is what devices trust)."""
    ca_cert, ca_key = pki.load_ca(keys)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue_signing_cert(ca_cert, ca_key, key.public_key(), not_before, not_after)
    directory.mkdir(parents=True, exist_ok=True)
    signer = Signer(directory / f"{name}.cert.pem", directory / f"{name}.key.pem")
    pki.write_public(Path(signer.cert), cert.public_bytes(pki.PEM))
    pki.write_private(Path(signer.key), key)
    return signer


def craft(product: Product, signer: Signer, out: Path, *, version: str, compatible: str | None = None,
          payload: int = 1 << 20, keyring: Path | None = None) -> Path:
    """A verity bundle of random rootfs/kernel images of `payload` bytes each."""
    content = out.with_name(out.name + ".content")
    content.mkdir(parents=True)
    images = {"rootfs": "rootfs.squashfs", "kernel": "kernel.vfat"}
    for name in images.values():
        (content / name).write_bytes(os.urandom(payload))
    manifest = bundle_manifest(product, version, f"{version}+crafted", images)
    if compatible is not None:
        manifest = manifest.replace(f"compatible={product.compatible}\n", f"compatible={compatible}\n")
    (content / "manifest.raucm").write_text(manifest)
    args = ["rauc", "bundle", f"--cert={signer.cert}", f"--key={signer.key}", str(content), str(out)]
    if keyring is not None:
        args.insert(2, f"--keyring={keyring}")
    subprocess.run(args, check=True, capture_output=True)
    return out
