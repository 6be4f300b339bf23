"""Camera application benchmarks; results go to bench/results/app.json (quoted in app/README.md).

  encode:  libx264 (ultrafast, zerolatency, 1 thread) frames/s per stream size, synthetic frames
  service: pycam-app as its own process, synthetic 640x360@15 main + 320x180@10 sub, with the systemd
           unit's Environment= (malloc settings): resident memory (VmRSS, and PSS/USS/anonymous from
           smaps_rollup) with both streams and one viewer; CPU with 0, 1 and 3 WebSocket viewers
  memory:  the one-viewer figure, median of 3 runs, with the venv's aiohttp and with Debian bookworm's
           python3-aiohttp 3.8.4 and its dependencies (the device's; `apt-get download`, unpacked under
           build/bench/debian-aiohttp/, first on PYTHONPATH); where the memory goes: RSS after each
           import stage, and the one-viewer service figure with
           each memory lever undone in turn (see app/README.md, Memory)
  latency: glass-to-glass on loopback: synthetic capture timestamp -> frame decoded and shown in headless
           Chromium (MSE), read back from the picture (needs /usr/bin/chromium and playwright)

Run: .venv/bin/python bench/app/bench_app.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pycam_app import config
from pycam_app.capture.synthetic import SyntheticSource
from pycam_app.encoder import H264Encoder

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "results" / "app.json"
CLK = os.sysconf("SC_CLK_TCK")


def bench_encode(seconds: float) -> dict[str, Any]:
    out = {}
    enc_cfg = config.EncoderConfig(name="libx264")
    for w, h in ((320, 180), (640, 360), (1280, 720), (1920, 1080)):
        sc = config.StreamConfig(width=w, height=h, fps=15, bitrate=max(200_000, w * h * 2), keyframe_interval=2)
        enc = H264Encoder(sc, enc_cfg)
        src = SyntheticSource(w, h, 15)
        src.open()
        src.moving = True
        frames = [src.make_frame(i, time.time()) for i in range(30)]
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 4:
            enc.encode(frames[n % 30], n * 6000)
            n += 1
        out[f"{w}x{h}"] = round(n / (time.perf_counter() - t0), 1)
    return {"libx264_fps": out}


def write_config(tmp: Path, port: int) -> Path:
    p = tmp / "app.toml"
    p.write_text(f"""
runtime_dir = "{tmp}/run"
factory_dir = "{tmp}/factory"
log_level = "warning"
[capture]
source = "synthetic"
[main]
width = 640
height = 360
fps = 15
bitrate = 800000
keyframe_interval = 1.0
[sub]
width = 320
height = 180
fps = 10
bitrate = 200000
[web]
bind = "127.0.0.1"
port = {port}
tls = "off"
[storage]
data_dir = "{tmp}/data"
""")
    return p


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS from /proc/<pid>/status; PSS, USS (private pages) and anonymous pages from smaps_rollup."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        kb[name.rstrip(":")] = int(value)
    return {
        "rss_mb": round(rss_mb(pid), 1),
        "pss_mb": round(kb["Pss"] / 1024, 1),
        "uss_mb": round((kb["Private_Clean"] + kb["Private_Dirty"]) / 1024, 1),
        "anon_mb": round(kb["Anonymous"] / 1024, 1),
    }


def unit_environment() -> dict[str, str]:
    """Environment= of the systemd unit, so the bench runs the service with the device's settings."""
    env: dict[str, str] = {}
    for line in (ROOT / "app" / "systemd" / "pycam-app.service").read_text().splitlines():
        if line.startswith("Environment="):
            for item in line.split("=", 1)[1].split():
                key, _, value = item.partition("=")
                env[key] = value
    return env


async def viewer(url: str, headers: dict[str, str], stop: asyncio.Event, counter: list[int]) -> None:
    async with aiohttp.ClientSession(headers=headers) as s, s.ws_connect(url + "/api/live/main") as ws:
        while not stop.is_set():
            msg = await ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                counter[0] += 1


async def measure(pid: int, url: str, headers: dict[str, str], viewers: int, seconds: float) -> dict[str, float]:
    stop = asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(viewer(url, headers, stop, counter)) for _ in range(viewers)]
    await asyncio.sleep(1.0)  # let viewers join
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
    mem = memory_mb(pid)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"cpu_percent": round(cpu, 1), **mem, "fragments_received": counter[0]}


class Service:
    """pycam-app as its own process with the bench configuration; a context manager."""

    def __init__(self, env: dict[str, str | None] | None = None, preimport: str = "") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pycam-bench-"))
        port = 18000 + (os.getpid() + int(time.time())) % 1000
        cfg = write_config(self.tmp, port)
        cmd = [str(Path(sys.executable).with_name("pycam-app")), "--config", str(cfg)]
        if preimport:  # e.g. "ssl": undo a lever that depends on a module not being imported yet
            code = f"import sys, {preimport}; from pycam_app.cli import main; sys.exit(main(sys.argv[1:]))"
            cmd = [sys.executable, "-c", code, "--config", str(cfg)]
        full = {**os.environ, **unit_environment()}
        for key, value in (env or {}).items():  # None: leave the variable out
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=full)
        self.url = f"http://127.0.0.1:{port}"
        self.headers: dict[str, str] = {}

    def __enter__(self) -> Service:
        tmp, proc = self.tmp, self.proc
        deadline = time.monotonic() + 30
        while not (tmp / "data" / "initial-password").exists() or not (tmp / "run" / "endpoint.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("service did not start")
            time.sleep(0.2)
        password = (tmp / "data" / "initial-password").read_text().split("password: ")[1].strip()
        self.headers = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.tmp, ignore_errors=True)


def bench_service(seconds: float) -> dict[str, Any]:
    with Service() as svc:
        proc, url, headers = svc.proc, svc.url, svc.headers
        result: dict[str, Any] = {
            "config": "synthetic, main 640x360@15 800 kbit/s, sub 320x180@10, libx264",
            "environment": unit_environment(),
            "aiohttp": _version("aiohttp"),
            "av": _version("av"),
        }
        for n in (0, 1, 3):
            result[f"viewers_{n}"] = asyncio.run(measure(proc.pid, url, headers, n, seconds))
        base, three = (result[f"viewers_{n}"]["cpu_percent"] for n in (0, 3))
        result["cpu_percent_per_viewer"] = round((three - base) / 3, 2)
        result["rss_mb_both_streams_one_viewer"] = result["viewers_1"]["rss_mb"]
        result["pss_mb_both_streams_one_viewer"] = result["viewers_1"]["pss_mb"]
        return result


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


IMPORT_STAGES = [
    ("python", ""),
    ("+ asyncio", "import asyncio"),
    ("+ aiohttp.web", "import aiohttp.web"),
    ("+ av", "import av"),
    ("+ pycam_app (service, web)", "import pycam_app.service, pycam_app.web.server"),
]


def import_stages(block_ssl: bool) -> dict[str, float]:
    """VmRSS (MB) of a fresh interpreter after each import stage, as the service imports them."""
    lines = [
        "import os, sys",
        "def rss():",
        "    for l in open('/proc/self/status'):",
        "        if l.startswith('VmRSS:'): return int(l.split()[1]) / 1024",
        "out = []",
    ]
    if block_ssl:  # what cli._lean_process does for a plain-HTTP service
        lines.insert(1, "sys.modules['ssl'] = sys.modules['_hashlib'] = None")
        lines.insert(2, "os.environ['GNUTLS_NO_IMPLICIT_INIT'] = '1'")
    for _, stmt in IMPORT_STAGES:
        lines += [stmt or "pass", "out.append(round(rss(), 1))"]
    lines.append("print(out)")
    env = {**os.environ, **unit_environment()}
    r = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, env=env, check=True)
    values = json.loads(r.stdout.strip().splitlines()[-1])
    return {name: v for (name, _), v in zip(IMPORT_STAGES, values, strict=True)}


# Debian bookworm's aiohttp as on the device, with the Python dependencies it pulls in there.
DEBIAN_AIOHTTP = ("python3-aiohttp", "python3-yarl", "python3-multidict", "python3-frozenlist", "python3-aiosignal",
                  "python3-async-timeout", "python3-charset-normalizer", "python3-attr")


def debian_aiohttp() -> Path | None:
    """dist-packages with Debian's aiohttp (downloaded and byte-compiled once), or None off Debian bookworm."""
    out = ROOT / "build" / "bench" / "debian-aiohttp"
    site = out / "usr" / "lib" / "python3" / "dist-packages"
    if (site / "aiohttp").is_dir():
        return site
    if shutil.which("apt-get") is None or "bookworm" not in Path("/etc/os-release").read_text():
        return None
    debs = out / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *DEBIAN_AIOHTTP], cwd=debs, check=True, capture_output=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(site)], check=True, capture_output=True)
    return site


def median_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in ("rss_mb", "pss_mb", "uss_mb", "anon_mb")}


def one_viewer(seconds: float, **kw: Any) -> dict[str, Any]:
    with Service(**kw) as svc:
        return asyncio.run(measure(svc.proc.pid, svc.url, svc.headers, 1, seconds))


def bench_memory(seconds: float) -> dict[str, Any]:
    """The one-viewer figure with each memory lever undone in turn (same measurement as the service's)."""
    variants: dict[str, dict[str, Any]] = {
        "as shipped": {},
        "ssl imported (undoes: plain HTTP never loads ssl)": {"preimport": "ssl"},
        "OpenSSL hashing (undoes: plain HTTP never loads _hashlib/libcrypto)": {"preimport": "_hashlib"},
        "GnuTLS initialised at load (undoes: GNUTLS_NO_IMPLICIT_INIT=1)": {"env": {"GNUTLS_NO_IMPLICIT_INIT": "0"}},
        "glibc dynamic mmap threshold (undoes: MALLOC_MMAP/TRIM_THRESHOLD_)": {
            "env": {"MALLOC_MMAP_THRESHOLD_": None, "MALLOC_TRIM_THRESHOLD_": None}
        },
    }
    site = debian_aiohttp()
    venv = [one_viewer(seconds) for _ in range(3)]
    out: dict[str, Any] = {
        "one_viewer_median_of_3": {"aiohttp " + _version("aiohttp"): median_of(venv)},
        "import_stages_rss_mb": import_stages(block_ssl=False),
        "import_stages_rss_mb_plain_http": import_stages(block_ssl=True),
        "one_viewer": {},
    }
    if site is not None:
        debian = [one_viewer(seconds, env={"PYTHONPATH": str(site)}) for _ in range(3)]
        out["one_viewer_median_of_3"]["aiohttp 3.8.4 (Debian bookworm)"] = median_of(debian)
    for name, kw in variants.items():
        m = one_viewer(seconds, **kw)
        out["one_viewer"][name] = {k: m[k] for k in ("rss_mb", "pss_mb", "uss_mb", "anon_mb")}
    return out


def bench_latency(seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "app"))
    from conftest import CHROMIUM, CHROMIUM_FLAGS, Server, password_of, small_config

    if CHROMIUM is None:
        return {"skipped": "chromium not installed"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright not installed"}
    tmp = Path(tempfile.mkdtemp(prefix="pycam-lat-"))
    cfg = small_config(
        tmp,
        main={"width": 640, "height": 360, "fps": 15, "bitrate": 800_000, "keyframe_interval": 1.0},
        sub={"width": 320, "height": 180, "fps": 10, "bitrate": 200_000},
    )
    server = Server(cfg)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            base = f"http://{server.host}:{server.port}"
            page.goto(base + "/login")
            page.fill("#password", password_of(server.svc))
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            page.goto(base + "/?stats=1&stream=main")
            page.wait_for_function("window.pycam.stats.decoded >= 30", timeout=30_000)
            page.evaluate("window.pycam.stats.latencies = []")
            page.wait_for_timeout(seconds * 1000)
            lat = sorted(page.evaluate("window.pycam.stats.latencies"))
            browser.close()
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "stream": "main 640x360@15, libx264 ultrafast/zerolatency, fMP4 over WebSocket, MSE, loopback",
        "frames": len(lat),
        "median_ms": statistics.median(lat),
        "p95_ms": lat[int(len(lat) * 0.95)],
        "min_ms": lat[0],
        "max_ms": lat[-1],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    results = {
        "host": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg()[0],
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "encode": bench_encode(args.seconds),
        "service": bench_service(args.seconds),
        "memory": bench_memory(args.seconds),
        "latency": bench_latency(args.seconds),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    for key in ("device", "device_variants"):  # bench_device.py's figures (the QEMU image) stay
        if key in previous:
            results[key] = previous[key]
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
