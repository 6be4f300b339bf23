"""OTA install speed on the device, written to bench/results/ota.json.

In a QEMU VM (labgrid, the image `pycam build` made), alternating, `--rounds` times:
  full    `rauc install` of a full bundle from /data (signature, verity, both slot images written)
  dbus    the same install asked over RAUC's D-Bus API by a client already running, as pycam-ota does
          (the `rauc` CLI's own cold start is not part of it)
  raw     the same two images copied with dd (conv=fsync) into the same inactive slots: the floor
  delta   `rauc install` of the delta bundle (base check, xdelta3 against the active slot, sha256)
plus the download of each bundle over QEMU's user network. Goal: full install <= 1.3 x raw copy.
Before each timed step (untimed) everything dirty is synced and the page cache dropped, so each step
reads its input from the disk and pays only for its own writes.

Once per medium, each in its own VM:
  host  QEMU's disk as it is: a file in the host's page cache, so writing is nearly free and the
        emulated CPU (TCG, ~10x slower than the real one) is all that is measured
  sd    the same disk throttled to a microSD card in a Raspberry Pi 4 (40 MB/s read, the DDR50 bus;
        20 MB/s sequential write, a U1/A1 card): what a device's install is bound by

Run as root after `pycam build`: .venv/bin/python bench/ota_bench.py [--rounds 2] [--media host,sd]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycam.definition import load_product  # noqa: E402
from pycam.engine.build import outputs  # noqa: E402
from pycam.engine.delta import delta_name  # noqa: E402
from pycam.qemu import labgrid_env  # noqa: E402
from tests.target.device import sh, wait_unit_done  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ota.json"
VERSION = "91.0.0"
MEDIA = {
    "host": "",
    "sd": "throttling.bps-read=40000000,throttling.bps-write=20000000",
}


def settle(shell, timeout: float) -> None:
    """Nothing dirty, nothing cached: the previous step's writeback (the copy of the images to /data is
    still draining to the card) is not counted in the next, which reads its input from the disk."""
    sh(shell, "sync && echo 3 > /proc/sys/vm/drop_caches", timeout=timeout)


def timed(shell, command: str, timeout: float = 1800) -> float:
    settle(shell, timeout)
    start = time.monotonic()
    sh(shell, command, timeout=timeout)
    return round(time.monotonic() - start, 1)

# The OTA client's way to install: a resident process asks RAUC over D-Bus (pycam_ota.rauc, the
# client's own code) and waits for Completed. Started and connected before the timed step, so the
# step is RAUC's install, not a cold start of the `rauc` CLI (~1 s in the VM with the cache dropped).
DBUS_INSTALL = r"""
import sys, time
from pycam_ota.rauc import Rauc
rauc = Rauc()
rauc.conn
open("/tmp/bench-install.ready", "w").close()
open("/tmp/bench-install.go").readline()
start = time.monotonic()
error = rauc.install(sys.argv[1], {})
print(f"{time.monotonic() - start:.2f} {error or 'ok'}", flush=True)
"""


def timed_dbus(shell, bundle: str, timeout: float = 1800) -> float:
    """Seconds of one install through RAUC's D-Bus API, from a client already running (as pycam-ota)."""
    script = base64.b64encode(DBUS_INSTALL.encode()).decode()
    sh(shell, f"rm -f /tmp/bench-install.* && mkfifo /tmp/bench-install.go && echo {script} | base64 -d > "
              f"/tmp/bench-install.py && (python3 /tmp/bench-install.py {bundle} > /tmp/bench-install.out 2>&1 &) "
              "&& while [ ! -e /tmp/bench-install.ready ]; do sleep 0.2; done", timeout=120)
    settle(shell, timeout)
    sh(shell, "echo go > /tmp/bench-install.go")
    out = sh(shell, "while ! grep -q . /tmp/bench-install.out 2>/dev/null; do sleep 0.5; done; "
                    "sleep 0.5; cat /tmp/bench-install.out", timeout=timeout)
    seconds, result = out.split()[0], " ".join(out.split()[1:])
    if result != "ok":
        raise RuntimeError(f"D-Bus install of {bundle} failed: {out}")
    return round(float(seconds), 1)


def measure(product, full: Path, delta: Path, url: str, disk_opts: str, rounds: int) -> dict[str, object]:
    """One VM on one medium: downloads once, then `rounds` alternating full / raw / delta."""
    from labgrid import Environment

    from tests.target import strategy  # noqa: F401 - registers the strategy

    base = outputs(product, product.ota.version)
    results: dict[str, object] = {"qemu_disk_opts": disk_opts or "(none)"}
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(base.disk), str(disk)], check=True)
        config = Path(tmp) / "env.yaml"
        config.write_text(yaml.safe_dump(labgrid_env(product, disk, disk_opts), sort_keys=False))
        env = Environment(str(config))
        dut = env.get_target("main").get_driver("Strategy")
        dut.transition("shell")
        shell = dut.shell
        wait_unit_done(shell, "pycam-health-gate.service", timeout=900)
        results["download_full_s"] = timed(shell, f"python3 -c \"import urllib.request as u; "
                                                  f"u.urlretrieve('{url}/{full.name}', '/data/full.raucb')\"")
        results["download_delta_s"] = timed(shell, f"python3 -c \"import urllib.request as u; "
                                                   f"u.urlretrieve('{url}/{delta.name}', '/data/delta.raucb')\"")
        # the bundle's payload is a squashfs (no unsquashfs on the device: mount it)
        sh(shell, "rm -rf /data/images && mkdir -p /data/images /run/bundle && "
                  "mount -o loop,ro /data/full.raucb /run/bundle && "
                  "cp /run/bundle/rootfs.squashfs /run/bundle/kernel.vfat /data/images/ && umount /run/bundle",
           timeout=900)
        results["written_bytes"] = int(sh(shell, "cat /data/images/* | wc -c"))
        slots = json.loads(sh(shell, "rauc status --detailed --output-format=json"))
        named = {name: info for entry in slots["slots"] for name, info in entry.items()}
        root = next(n for n, i in named.items() if i["class"] == "rootfs" and i.get("bootname") != slots["booted"])
        # kernel.N is the child of rootfs.N (pycam/generate/rauc.py)
        inactive = {"rootfs": named[root]["device"], "kernel": named[root.replace("rootfs", "kernel")]["device"]}
        runs = []
        for _ in range(rounds):
            r = {"full_install_s": timed(shell, "rauc install /data/full.raucb"),
                 "full_install_dbus_s": timed_dbus(shell, "/data/full.raucb")}
            r["raw_copy_s"] = timed(shell, f"dd if=/data/images/rootfs.squashfs of={inactive['rootfs']} "
                                           f"bs=1M conv=fsync status=none && dd if=/data/images/kernel.vfat "
                                           f"of={inactive['kernel']} bs=1M conv=fsync status=none")
            r["delta_install_s"] = timed(shell, "rauc install /data/delta.raucb")
            r["full_over_raw"] = round(r["full_install_s"] / r["raw_copy_s"], 2)
            r["full_dbus_over_raw"] = round(r["full_install_dbus_s"] / r["raw_copy_s"], 2)
            r["load_avg"] = round(os.getloadavg()[0], 2)
            runs.append(r)
        results["rounds"] = runs
        results["full_over_raw_best"] = min(r["full_over_raw"] for r in runs)
        results["full_dbus_over_raw_median"] = sorted(r["full_dbus_over_raw"] for r in runs)[len(runs) // 2]
        dut.transition("off")
        env.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--media", default=",".join(MEDIA), help=f"comma-separated, of: {', '.join(MEDIA)}")
    args = parser.parse_args()
    media = args.media.split(",")
    unknown = [m for m in media if m not in MEDIA]
    if unknown:
        parser.error(f"unknown medium {unknown[0]!r}: choose from {', '.join(MEDIA)}")

    product = load_product("qemuarm64")
    base = outputs(product, product.ota.version)
    subprocess.run([sys.executable, "-m", "pycam", "bundle", "--version", VERSION, "--delta-from", str(base.bundle)],
                   check=True, cwd=ROOT)
    full = outputs(product, VERSION).bundle
    delta = full.with_name(delta_name(product, VERSION, product.ota.version))
    results: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                                  "full_bundle_bytes": full.stat().st_size, "delta_bundle_bytes": delta.stat().st_size,
                                  "goal_full_over_raw": 1.3, "media": {}}
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(full.parent)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().split("port ")[1].split()[0]
        for medium in media:
            print(f"medium {medium}: booting a VM", flush=True)
            results["media"][medium] = measure(product, full, delta, f"http://10.0.2.2:{port}",  # type: ignore[index]
                                               MEDIA[medium], args.rounds)
    finally:
        server.terminate()
        for path in full.parent.glob(f"*-{VERSION}*"):
            path.unlink()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
