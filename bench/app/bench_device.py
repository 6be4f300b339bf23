"""Camera service memory on the device itself: the built image booted in QEMU, the service as shipped.

Boots the image of `pycam build` (build/<board>/, a private copy of the disk) with the web port forwarded
to the host, waits until pycam-app streams from vivid (main + sub, the board's /etc/pycam/app.toml, the
unit's Environment=), connects one WebSocket fMP4 viewer to the main stream from the host and, while it
plays, reads from the device:

  VmRSS (/proc/<pid>/status) and Pss / Private / Anonymous / file-backed pages (/proc/<pid>/smaps_rollup)
  of the service's main process, and the mappings with the most resident memory (/proc/<pid>/smaps),
  grouped by file (anonymous memory, heap and stacks as one group each).

It also records the service's imports stage by stage on the device (VmRSS of a fresh python3 after
asyncio, aiohttp.web, av and pycam_app, with the unit's environment and what cli._lean_process blocks).
--env KEY=VALUE runs the service with an extra Environment= (a drop-in under /run) to weigh a setting.

The result goes into bench/results/app.json under "device" (or "device_variants" with --env), next to the
host figures (bench_app.py); the rest of the file is kept.
Run: .venv/bin/python bench/app/bench_device.py [--seconds 20] [--env MALLOC_ARENA_MAX=1]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import base64
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "results" / "app.json"

from pycam.definition import load_product  # noqa: E402
from pycam.engine.build import outputs  # noqa: E402
from pycam.qemu import labgrid_env  # noqa: E402
from tests.target import strategy  # noqa: E402, F401 - registers PycamQemuStrategy with labgrid

APP_PORT = 8080  # web.port of the board's app.toml (the default)

# Resident memory per mapping, grouped: one line per file, "[anon]" for anonymous memory without a
# name, "[heap]", "[stack]" and so on; sorted by Rss, in kB.
SMAPS_BY_FILE = (
    "awk '/^[0-9a-f]+-[0-9a-f]+ /{n=($6==\"\")?\"[anon]\":$6} /^Rss:/{r[n]+=$2} /^Pss:/{p[n]+=$2} "
    "END{for(k in r) if(r[k]>0) print r[k], p[k], k}' /proc/{pid}/smaps | sort -rn"
)


# VmRSS (MB) of a fresh interpreter after each import stage, as the plain-HTTP service imports them.
IMPORT_STAGES = """
import os, sys
sys.modules["ssl"] = sys.modules["_hashlib"] = None
os.environ["GNUTLS_NO_IMPLICIT_INIT"] = "1"
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
out = {"python": rss()}
import asyncio
out["+ asyncio"] = rss()
import aiohttp.web
out["+ aiohttp.web"] = rss()
import av
out["+ av"] = rss()
import pycam_app.service, pycam_app.web.server
out["+ pycam_app (service, web)"] = rss()
print(out)
"""


def import_stages(shell: Any) -> dict[str, float]:
    env = " ".join(run(shell, "systemctl show -p Environment --value pycam-app").split())
    script = base64.b64encode(IMPORT_STAGES.encode()).decode()  # one line through the serial console
    run(shell, f"echo {script} | base64 -d > /tmp/stages.py")
    out = run(shell, f"cd /tmp && env {env} python3 /tmp/stages.py", timeout=600).strip().splitlines()[-1]
    return {k: float(v) for k, v in ast.literal_eval(out).items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(shell: Any, cmd: str, timeout: float = 120) -> str:
    return "\n".join(shell.run_check(cmd, timeout=timeout))


def memory(shell: Any, pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in run(shell, f"cat /proc/{pid}/status").splitlines() if ":" in line)
    kb: dict[str, int] = {}
    for line in run(shell, f"cat /proc/{pid}/smaps_rollup").splitlines()[1:]:
        name, value, *_ = line.split()
        kb[name.rstrip(":")] = int(value)
    mb = lambda k: round(k / 1024, 1)  # noqa: E731
    return {
        "rss_mb": mb(int(status["VmRSS"].split()[0])),
        "pss_mb": mb(kb["Pss"]),
        "uss_mb": mb(kb["Private_Clean"] + kb["Private_Dirty"]),
        "anon_mb": mb(kb["Anonymous"]),
        "rss_file_mb": mb(int(status["RssFile"].split()[0])),
        "rss_shmem_mb": mb(int(status["RssShmem"].split()[0])),
        "threads": int(status["Threads"]),
    }


def by_file(shell: Any, pid: int, top: int) -> list[dict[str, Any]]:
    rows = []
    for line in run(shell, SMAPS_BY_FILE.replace("{pid}", str(pid))).splitlines()[:top]:
        rss, pss, name = line.split(None, 2)
        rows.append({"mapping": name, "rss_kb": int(rss), "pss_kb": int(pss)})
    return rows


class Viewer(threading.Thread):
    """One WebSocket fMP4 viewer of the main stream, from the host through the forwarded port."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.fragments = 0
        self.error = ""
        self._quit = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._play())
        except Exception as e:  # reported with the result; the bench then fails loudly
            self.error = repr(e)

    async def _play(self) -> None:
        async with aiohttp.ClientSession(headers=self.headers) as s, s.ws_connect(self.url + "/api/live/main") as ws:
            while not self._quit.is_set():
                msg = await ws.receive(timeout=30)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.fragments += 1
                elif msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"live stream ended: {msg.type}")

    def stop(self) -> None:
        self._quit.set()
        self.join(40)


def measure(board: str, seconds: float, samples: int, top: int, extra_env: list[str]) -> dict[str, Any]:
    from labgrid import Environment

    product = load_product(board)
    built = outputs(product, product.ota.version)
    if not built.disk.exists():
        raise SystemExit(f"no image at {built.disk}: run .venv/bin/pycam build --board {board}")
    work = Path(tempfile.mkdtemp(prefix="pycam-devmem-"))
    port = free_port()
    try:
        disk = work / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(built.disk), str(disk)], check=True)
        env = labgrid_env(product, disk)
        qemu = env["targets"]["main"]["drivers"]["QEMUDriver"]
        qemu["nic"] += f",hostfwd=tcp:127.0.0.1:{port}-:{APP_PORT}"
        (work / "env.yaml").write_text(yaml.safe_dump(env, sort_keys=False))
        environment = Environment(str(work / "env.yaml"))
        dut = environment.get_target("main").get_driver("Strategy")
        t0 = time.monotonic()
        dut.transition("shell")
        try:
            if extra_env:  # a runtime drop-in; one restart stays well inside the unit's start limit
                run(dut.shell, "pycam-health --wait 600", timeout=660)
                dropin = "/run/systemd/system/pycam-app.service.d"
                run(dut.shell, f"mkdir -p {dropin} && printf '[Service]\\nEnvironment=%s\\n' '{' '.join(extra_env)}' "
                    f"> {dropin}/bench.conf && systemctl daemon-reload && systemctl restart pycam-app", timeout=300)
            return _on_device(dut.shell, port, seconds, samples, top, time.monotonic() - t0, built)
        finally:
            dut.transition("off")
            environment.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _on_device(shell: Any, port: int, seconds: float, samples: int, top: int, boot_s: float, built: Any) -> dict:
    # The health probe returns once main-stream frames flow (TCG: Python and PyAV start slowly).
    run(shell, "pycam-health --wait 600", timeout=660)
    pid = int(run(shell, "systemctl show -p MainPID --value pycam-app").strip())
    password = run(shell, "cat /data/app/initial-password").split("password: ")[1].strip()
    headers = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    health = json.loads(run(shell, "pycam-health"))
    viewer = Viewer(f"http://127.0.0.1:{port}", headers)
    viewer.start()
    time.sleep(seconds)  # the viewer joins and plays; the service reaches its steady state
    if viewer.error or viewer.fragments == 0:
        viewer.stop()
        raise RuntimeError(f"the viewer received no fragments: {viewer.error}")
    taken = []
    for _ in range(samples):
        taken.append(memory(shell, pid))
        time.sleep(seconds / samples)
    mappings = by_file(shell, pid, top)
    clients = json.loads(run(shell, "pycam-health"))["clients"]
    viewer.stop()
    stages = import_stages(shell)
    if viewer.error:
        raise RuntimeError(f"the viewer failed while measuring: {viewer.error}")
    median = {k: statistics.median(s[k] for s in taken) for k in taken[0]}
    versions = run(shell, "python3 -c 'import aiohttp, av, sys; print(aiohttp.__version__, av.__version__, "
                          "sys.version.split()[0])'", timeout=300).split()
    return {
        "image": str(built.disk.relative_to(ROOT)),
        "board_config": "/etc/pycam/app.toml: main 640x360@10, sub 320x180@5 (default bit rates), "
        "v4l2 vivid, libx264",
        "environment": run(shell, "systemctl show -p Environment --value pycam-app").split(),
        "aiohttp": versions[0],
        "av": versions[1],
        "python": versions[2],
        "kernel": run(shell, "uname -r").strip(),
        "boot_to_shell_s": round(boot_s, 1),
        "streams": health.get("streams"),
        "encoder": health.get("encoder"),
        "clients_while_measuring": clients,
        "fragments_received": viewer.fragments,
        "samples": taken,
        "rss_mb_both_streams_one_viewer": median["rss_mb"],
        "pss_mb_both_streams_one_viewer": median["pss_mb"],
        "median": median,
        "largest_mappings": mappings,
        "import_stages_rss_mb": stages,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="qemuarm64")
    ap.add_argument("--seconds", type=float, default=20.0, help="viewer playing before and while measuring")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--top", type=int, default=25, help="largest mappings to list")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra service environment")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results/app.json alone")
    args = ap.parse_args()
    for item in args.env:
        if "=" not in item or " " in item or "'" in item:
            ap.error(f"--env {item!r}: write KEY=VALUE without spaces or quotes")
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **measure(args.board, args.seconds, args.samples, args.top, args.env)}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        data = json.loads(OUT.read_text()) if OUT.exists() else {}
        if args.env:
            data.setdefault("device_variants", {})[" ".join(args.env)] = {
                k: result[k] for k in ("time", "median", "environment", "fragments_received")}
        else:
            data["device"] = result
        OUT.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
