"""Boot time in QEMU (TCG): pycam's image to the camera's first frame, next to a stock Debian boot to login.

Both boot in the same run with the same QEMU machine (-smp 2 -m 1024, Debian's U-Boot as -bios).
The stock image is what a Debian user gets: mmdebstrap minbase + systemd + linux-image-arm64 +
initramfs-tools with its defaults, on an ext4 root (built once and kept in build/bench/, ~20 min).

Run as root after `pycam build`: .venv/bin/python bench/boot_bench.py [--runs N]
Writes bench/results/boot.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycam.definition import load_product  # noqa: E402
from pycam.engine.build import build_dir, outputs  # noqa: E402
from pycam.qemu import command  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "boot.json"
STOCK = build_dir() / "bench" / "stock-debian.img"
MIRRORS = ["deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian-security bookworm-security main"]

STOCK_BOOT = textwrap.dedent("""\
    setenv bootargs "console=ttyAMA0 root=/dev/vda1 rw rootwait"
    load virtio 0:1 ${kernel_addr_r} /boot/vmlinuz
    load virtio 0:1 ${ramdisk_addr_r} /boot/initrd.img
    booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
    """)


def build_stock() -> dict[str, float]:
    """The comparison image; returns how long it took (it is cached afterwards)."""
    if STOCK.exists():
        return {}
    STOCK.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=STOCK.parent) as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["mmdebstrap", "--architectures=arm64", "--variant=minbase", "--mode=root",
                        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                        "--include=systemd-sysv,udev,linux-image-arm64,initramfs-tools,kmod",
                        '--customize-hook=chroot "$1" passwd -d root',
                        "--customize-hook=echo debian > \"$1/etc/hostname\"",
                        "bookworm", str(root), *MIRRORS], check=True)
        boot = root / "boot"
        kernel = sorted(boot.glob("vmlinuz-*"))[-1]
        initrd = sorted(boot.glob("initrd.img-*"))[-1]
        shutil.copy(kernel, boot / "vmlinuz")
        shutil.copy(initrd, boot / "initrd.img")
        (Path(tmp) / "boot.cmd").write_text(STOCK_BOOT)
        subprocess.run(["mkimage", "-A", "arm64", "-T", "script", "-C", "none", "-d", Path(tmp) / "boot.cmd",
                        boot / "boot.scr"], check=True, stdout=subprocess.DEVNULL)
        cfg = Path(tmp) / "genimage.cfg"
        cfg.write_text(textwrap.dedent("""\
            image root.ext4 { ext4 { label = "root" use-mke2fs = true } size = 3G }
            image stock.img {
                hdimage { partition-table-type = "gpt" }
                partition root { image = "root.ext4" bootable = true }
            }
            """))
        for d in ("out", "gtmp"):
            (Path(tmp) / d).mkdir()
        subprocess.run(["genimage", "--config", cfg, "--rootpath", root, "--outputpath", Path(tmp) / "out",
                        "--tmppath", Path(tmp) / "gtmp", "--inputpath", Path(tmp) / "out"], check=True)
        shutil.move(Path(tmp) / "out" / "stock.img", STOCK)
    return {"stock_image_build_s": round(time.monotonic() - start, 1)}


def boot(disk: Path, *, pycam: bool) -> dict[str, float]:
    product = load_product("qemuarm64")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(disk), str(work)], check=True)
        cmd = command(product, work)
        start = time.monotonic()
        child = pexpect.spawn(cmd[0], cmd[1:], timeout=600, encoding="utf-8", codec_errors="replace")
        result: dict[str, float] = {}
        child.expect("Starting kernel")
        result["kernel_start_s"] = round(time.monotonic() - start, 1)
        child.expect("login: ")
        result["login_prompt_s"] = round(time.monotonic() - start, 1)
        if pycam:
            child.sendline("root")
            child.expect("# ")
            child.sendline("pycam-health --wait 300 >/dev/null; pycam-health | grep first_frame_boottime_s")
            child.expect(r'"first_frame_boottime_s": ([0-9.]+)')
            # boottime counts from the kernel's start; add the host time U-Boot took to get there
            result["first_frame_boottime_s"] = round(float(child.match.group(1)), 1)
            result["first_frame_s"] = round(result["kernel_start_s"] + float(child.match.group(1)), 1)
        child.terminate(force=True)
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    product = load_product("qemuarm64")
    image = outputs(product, product.ota.version).disk
    if not image.exists():
        raise SystemExit(f"build the image first: pycam build ({image} missing)")
    results: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                  "qemu": "-M virt -cpu cortex-a57 -smp 2 -m 1024, TCG", **build_stock()}
    runs = []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        load = os.getloadavg()[0]
        runs.append({"load_avg": round(load, 2), "pycam": boot(image, pycam=True),
                     "stock_debian": boot(STOCK, pycam=False)})
    results["runs"] = runs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
