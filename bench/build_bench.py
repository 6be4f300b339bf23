"""Build-speed and size benchmarks of the default engine, written to bench/results/build.json.

  cold   `pycam build` with an empty cache (Debian packages fetched, root configured, all stages)
  app    an app-only change (one line in a copy of app/) -> new image and bundle, cache warm
  noop   the same build again (nothing changed)
  squashfs  the root packed with each candidate compressor, same run, same files

Run as root: .venv/bin/python bench/build_bench.py [--skip-cold]
The machine is shared: the load average is recorded next to each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "build.json"
COMPRESSORS = {
    "zstd-3-128K": ["-comp", "zstd", "-Xcompression-level", "3", "-b", "128K"],
    "zstd-15-1M": ["-comp", "zstd", "-Xcompression-level", "15", "-b", "1M"],
    "zstd-19-1M": ["-comp", "zstd", "-Xcompression-level", "19", "-b", "1M"],
    "xz-1M (chosen)": ["-comp", "xz", "-b", "1M"],
}


def load() -> float:
    return os.getloadavg()[0]


def pycam_build(build_dir: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    start, load_before = time.monotonic(), load()
    subprocess.run([sys.executable, "-m", "pycam", "build"], check=True, cwd=ROOT,
                   env={**os.environ, "PYCAM_BUILD_DIR": str(build_dir), **(env or {})})
    seconds = time.monotonic() - start
    manifest = json.loads((build_dir / "qemuarm64" / "manifest.json").read_text())
    return {"seconds": round(seconds, 1), "stages_s": manifest["timings_s"],
            "load_avg_before": round(load_before, 2), "load_avg_after": round(load(), 2)}


def app_change(build_dir: Path) -> tuple[dict[str, object], dict[str, object]]:
    """(a one-line app change, then the same build again with nothing changed)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        shutil.copytree(ROOT / "app", app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        init = next(app.rglob("pycam_app/__init__.py"))
        init.write_text(init.read_text() + f"\n# bench change {time.time_ns()}\n")
        env = {"PYCAM_APP_DIR": str(app)}
        return pycam_build(build_dir, env), pycam_build(build_dir, env)


def squashfs_candidates(build_dir: Path) -> dict[str, object]:
    entry = max((build_dir / "cache").glob("rootfs-qemuarm64-*"), key=lambda p: p.stat().st_mtime)
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "root"
        subprocess.run(["unsquashfs", "-q", "-d", tree, entry / "rootfs.squashfs"], check=True,
                       stdout=subprocess.DEVNULL)
        du = subprocess.run(["du", "-sb", tree], check=True, capture_output=True, text=True).stdout.split()[0]
        results["root_bytes_unpacked"] = int(du)
        for name, opts in COMPRESSORS.items():
            out = Path(tmp) / "t.sq"
            start = time.monotonic()
            subprocess.run(["mksquashfs", tree, out, "-noappend", "-quiet", "-no-progress", *opts], check=True,
                           stdout=subprocess.DEVNULL)
            results[name] = {"bytes": out.stat().st_size, "MiB": round(out.stat().st_size / 2**20, 1),
                             "seconds": round(time.monotonic() - start, 1), "load_avg": round(load(), 2)}
            out.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-cold", action="store_true", help="reuse build/ instead of an empty cache")
    args = parser.parse_args()
    results: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count()}
    if args.skip_cold:
        build_dir = ROOT / "build"
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if "cold" in previous:
            results["cold"] = {**previous["cold"], "measured": previous.get("date")}
        results["warm"] = pycam_build(build_dir)
    else:
        build_dir = Path(tempfile.mkdtemp(prefix="pycam-bench-"))
        results["cold"] = pycam_build(build_dir)
    results["app_change"], results["noop"] = app_change(build_dir)
    manifest = json.loads((build_dir / "qemuarm64" / "manifest.json").read_text())
    results["sizes_bytes"] = {name: f["size"] for name, f in manifest["files"].items()}
    results["squashfs"] = squashfs_candidates(build_dir)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if not args.skip_cold:
        shutil.rmtree(build_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
