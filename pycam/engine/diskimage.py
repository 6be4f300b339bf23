"""Stage `image`: boot script, U-Boot environment copies and the GPT disk image (genimage), plus .bmap."""

from __future__ import annotations

import shutil
from pathlib import Path

from pycam.definition import Product
from pycam.engine.cache import Cache, file_sha256
from pycam.engine.run import run
from pycam.generate.bootenv import env_copy, initial_vars
from pycam.generate.bootscript import boot_script
from pycam.generate.genimage import ENV_IMAGES, genimage_cfg, kernel_vfat_cfg

KERNEL_FILES = ["Image", "initrd.img"]


def compile_boot_script(product: Product, out: Path) -> Path:
    (out / "boot.cmd").write_text(boot_script(product))
    run(["mkimage", "-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "pycam boot",
         "-d", out / "boot.cmd", out / "boot.scr"], what="mkimage (boot script)")
    return out / "boot.scr"


def write_env_images(product: Product, out: Path) -> None:
    """Both copies valid from the first boot; copy 1 carries the newer flag."""
    size = product.layout.bootenv.size
    variables = initial_vars(product)
    (out / ENV_IMAGES[0]).write_bytes(env_copy(variables, size, flag=1))
    (out / ENV_IMAGES[1]).write_bytes(env_copy(variables, size, flag=0))


def _genimage(cfg_text: str, work: Path, inputs: Path, epoch: int | None = None) -> Path:
    """Run genimage on `cfg_text` with `inputs`; returns its output directory."""
    tmp, out, empty = (work / d for d in ("tmp", "out", "empty-root"))
    for d in (tmp, out, empty):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    cfg = work / "genimage.cfg"
    cfg.write_text(cfg_text)
    # an empty --rootpath: otherwise genimage fills the ext4/vfat images from /
    run(["genimage", "--config", cfg, "--inputpath", inputs, "--outputpath", out, "--tmppath", tmp,
         "--rootpath", empty], what="genimage", check_space=work,
        # mtools stamps the files it copies with SOURCE_DATE_EPOCH when it is set
        env={"SOURCE_DATE_EPOCH": str(epoch)} if epoch is not None else None)
    return out


def build_kernel_vfat(cache: Cache, product: Product, kernel: Path, epoch: int) -> Path:
    """Entry with kernel.vfat: the kernel partition image a slot boots from (reproducible)."""

    def produce(out: Path) -> None:
        inputs = out / "input"
        inputs.mkdir()
        for name in KERNEL_FILES:
            shutil.copy2(kernel / name, inputs / name)
        result = _genimage(kernel_vfat_cfg(product, sizes), out / "work", inputs, epoch)
        shutil.move(result / "kernel.vfat", out / "kernel.vfat")
        shutil.rmtree(out / "work")
        shutil.rmtree(inputs)

    sizes = {n: (kernel / n).stat().st_size for n in KERNEL_FILES}
    key = {"kernel": kernel.name, "cfg": kernel_vfat_cfg(product, sizes), "epoch": epoch,
           "files": {n: file_sha256(kernel / n) for n in KERNEL_FILES}}
    return cache.get(f"kernelfs-{product.board.name}", key, produce) / "kernel.vfat"


def build_disk(product: Product, work: Path, kernel_vfat: Path, rootfs_squashfs: Path, disk_name: str) -> Path:
    """genimage in `work`; returns the disk image path (inside work/out)."""
    inputs = work / "input"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    compile_boot_script(product, inputs)
    write_env_images(product, inputs)
    shutil.copy2(kernel_vfat, inputs / "kernel.vfat")
    shutil.copy2(rootfs_squashfs, inputs / "rootfs.squashfs")
    out = _genimage(genimage_cfg(product, disk_name), work, inputs)
    return out / disk_name


def bmap(image: Path, bmap_path: Path) -> None:
    run(["bmaptool", "create", "-o", bmap_path, image], what="bmaptool create")
