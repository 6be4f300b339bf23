"""Delta bundle sizes and the choice of method, written to bench/results/delta.json.

Real updates, built by the default engine from the same cache:
  app       an app-only change (one line in a copy of app/) and a version bump
  security  the root from Debian's point release (bookworm only) -> the same root with
            bookworm-security and bookworm-updates, i.e. all the updates a device would get since
            the last point release (which packages changed is recorded)
  monthly   the same, one calendar month at a time: the point release -> the point release plus the
            updates uploaded in that month (bench/debian_updates.py: how, and why it errs large);
            the goal applies to each month
For each: the full bundle, pycam's delta bundle (`pycam bundle --delta-from`), and each candidate
method on the root image (the largest part), all in the same run:
  xdelta3 (chosen), `zstd --patch-from` -19 --long, bsdiff, and RAUC's block-hash-index
  (the bytes a streaming adaptive install would fetch: new 4 KiB blocks not found in the old image)
with encode/decode time and the decoder's peak memory.

Run as root after `pycam build`: .venv/bin/python bench/delta_bench.py [--cases security,monthly,app]
(PYCAM_BUILD_DIR=<dir> keeps its builds and cache apart from build/; a run of some cases keeps the
others' last results, and each case records when it was measured.)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import debian_updates
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycam.engine.cache import file_sha256  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "delta.json"
BOARD = "qemuarm64"
GOALS = {"app": 0.03, "security": 0.12, "monthly": 0.12}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def out_dir() -> Path:
    return Path(os.environ.get("PYCAM_BUILD_DIR", ROOT / "build")) / BOARD


def bundle(version: str, env: dict[str, str], delta_from: Path | None = None) -> Path:
    cmd = [sys.executable, "-m", "pycam", "bundle", "--board", BOARD, "--version", version]
    if delta_from:
        cmd += ["--delta-from", str(delta_from)]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, **env})
    return out_dir() / f"pycam-{BOARD}-{version}.raucb"


def delta_path(version: str, base: str) -> Path:
    return out_dir() / f"pycam-{BOARD}-{version}.delta-from-{base}.raucb"


def timed(cmd: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one command.

    GNU time forks the command from its own small process: a child forked from this one would
    report this process's peak (Linux carries the old memory's high-water mark across exec).
    """
    with tempfile.NamedTemporaryFile("r") as peak:
        start = time.monotonic()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = round(time.monotonic() - start, 2)
        return seconds, int(peak.read().split()[-1])


def make_delta_flags() -> tuple[list[str], int]:
    """xdelta3's encoder flags and source window from ota/delta/make-delta, the one place that sets them."""
    spec = importlib.util.spec_from_loader("make_delta", importlib.machinery.SourceFileLoader(
        "make_delta", str(ROOT / "ota" / "delta" / "make-delta")))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.ENCODE), int(module.SOURCE_WINDOW)


def block_hash_bytes(old: Path, new: Path) -> int:
    def blocks(path: Path) -> list[bytes]:
        data = path.read_bytes()
        return [hashlib.sha256(data[i:i + 4096]).digest() for i in range(0, len(data), 4096)]

    have = set(blocks(old))
    return sum(4096 for digest in blocks(new) if digest not in have)


def methods(old: Path, new: Path, tmp: Path) -> dict[str, object]:
    out = tmp / "patch"
    check = tmp / "check"
    encode, window = make_delta_flags()  # the device streams the source: its window, both ends
    candidates = {
        "xdelta3 (chosen)": (["xdelta3", *encode, "-s", old, new, out],
                             ["xdelta3", "-d", "-f", "-B", str(window), "-s", old, out, check]),
        "zstd --patch-from -19 --long": (
            ["zstd", "-q", "-f", "-19", "--long=28", f"--patch-from={old}", new, "-o", out],
            ["zstd", "-q", "-d", "-f", "--long=28", f"--patch-from={old}", out, "-o", check]),
        "bsdiff": (["bsdiff", old, new, out], ["bspatch", old, check, out]),
    }
    results: dict[str, object] = {}
    for name, (encode, decode) in candidates.items():
        enc_s, enc_kib = timed([str(c) for c in encode])
        dec_s, dec_kib = timed([str(c) for c in decode])
        if file_sha256(check) != file_sha256(new):
            raise RuntimeError(f"{name} did not reproduce the new image")
        results[name] = {"bytes": out.stat().st_size, "encode_s": enc_s, "encode_peak_MiB": round(enc_kib / 1024),
                         "decode_s": dec_s, "decode_peak_MiB": round(dec_kib / 1024), "load_avg": load()}
        out.unlink()
        check.unlink()
    results["block-hash-index (4 KiB, streaming)"] = {"bytes": block_hash_bytes(old, new)}
    return results


def extract(bundle_path: Path, into: Path) -> Path:
    keyring = ROOT / "keys" / "dev" / "keyring.pem"
    subprocess.run(["rauc", "extract", f"--keyring={keyring}", bundle_path, into], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return into / "rootfs.squashfs"


def sidecar(bundle_path: Path) -> dict:
    return json.loads(bundle_path.with_name(bundle_path.name + ".json").read_text())


def changed_packages(old: Path, new: Path) -> dict[str, list[str]]:
    a, b = sidecar(old)["contents"], sidecar(new)["contents"]
    names = sorted(set(a) | set(b))
    return {name: [a.get(name, "-"), b.get(name, "-")] for name in names if a.get(name) != b.get(name)}


def monthly(packages: dict, old: Path, new: Path, tmp: Path) -> dict[str, object]:
    """One root per calendar month: the point release plus that month's updates, each with a delta from old."""
    apt = debian_updates.Apt(packages["mirrors"], tmp / "apt")
    changed = {name.removeprefix("deb:"): tuple(versions)
               for name, versions in changed_packages(old, new).items() if name.startswith("deb:")}
    found = debian_updates.updates(apt, changed)  # type: ignore[arg-type]
    kernel = debian_updates.kernel_update(apt)
    everything = found + ([kernel] if kernel else [])
    results: dict[str, object] = {}
    for i, month in enumerate(sorted({u.month for u in everything})):
        pins = debian_updates.month_pins(everything, month)
        pinned = {**packages, "pins": pins}  # apt preferences: see rootfs/packages.yml `pins`
        path = tmp / f"packages-{month}.yml"
        path.write_text(yaml.safe_dump(pinned, sort_keys=False))
        version = f"90.2.{i}"
        month_bundle = bundle(version, {"PYCAM_PACKAGES": str(path)}, delta_from=old)
        result = case(f"monthly:{month}", old, month_bundle, delta_path(version, "90.0.0"), tmp, compare=False)
        result["updates"] = [{"package": u.package, "from": u.old, "to": u.new,
                              "uploaded": u.uploaded.date().isoformat()} for u in everything if u.month == month]
        results[month] = result
        for leftover in out_dir().glob(f"pycam-{BOARD}-{version}*"):
            leftover.unlink()
    return results


def case(name: str, old: Path, new: Path, delta: Path, tmp: Path, compare: bool = True) -> dict[str, object]:
    """Sizes of the full and delta bundles; with compare, every candidate method on the root image."""
    goal = GOALS[name.split(":")[0]]
    full = new.stat().st_size
    old_root = extract(old, tmp / f"{name}-old")
    new_root = extract(new, tmp / f"{name}-new")
    result = {
        "full_bundle_bytes": full,
        "delta_bundle_bytes": delta.stat().st_size,
        "delta_ratio": round(delta.stat().st_size / full, 4),
        "goal_ratio": goal,
        "kernel_changed": sidecar(old).get("kernel") != sidecar(new).get("kernel"),
        "root_image_bytes": new_root.stat().st_size,
    }
    if compare:
        result["root_methods"] = methods(old_root, new_root, tmp)
    shutil.rmtree(tmp / f"{name}-old")
    shutil.rmtree(tmp / f"{name}-new")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="security,monthly,app",
                        help="comma-separated, of: security, monthly, app (the others keep their last results)")
    wanted = parser.parse_args().cases.split(",")
    unknown = set(wanted) - {"security", "monthly", "app"}
    if unknown:
        parser.error(f"unknown case {sorted(unknown)[0]!r}: choose from security, monthly, app")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    every = {"security", "monthly", "app"} <= set(wanted)
    results: dict[str, object] = {} if every or not RESULTS.exists() else json.loads(RESULTS.read_text())
    results.update({"date": now, "cores": os.cpu_count()})
    with tempfile.TemporaryDirectory(prefix="pycam-delta-") as tmpdir:
        tmp = Path(tmpdir)
        new = None
        if "security" in wanted or "monthly" in wanted:
            # security: the point release's root -> today's root with the security and stable updates
            packages = yaml.safe_load((ROOT / "rootfs" / "packages.yml").read_text())
            packages["mirrors"] = [m for m in packages["mirrors"] if "-security" not in m and "-updates" not in m]
            point = tmp / "packages-point-release.yml"
            point.write_text(yaml.safe_dump(packages, sort_keys=False))
            start = time.monotonic()
            old = bundle("90.0.0", {"PYCAM_PACKAGES": str(point)})
            base_s = time.monotonic() - start
            new = bundle("90.1.0", {}, delta_from=old)
            if "security" in wanted:
                security = case("security", old, new, delta_path("90.1.0", "90.0.0"), tmp)
                security["packages_changed"] = changed_packages(old, new)
                security["point_release_build_s"] = round(base_s, 1)
                results["security"] = {**security, "measured": now}
            if "monthly" in wanted:
                results["monthly"] = monthly(yaml.safe_load((ROOT / "rootfs" / "packages.yml").read_text()),
                                             old, new, tmp)

        if "app" in wanted:
            # app: a one-line change to the camera app on top of today's root
            new = new or bundle("90.1.0", {})
            app = tmp / "app"
            shutil.copytree(ROOT / "app", app, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
            init = next(app.rglob("pycam_app/__init__.py"))
            init.write_text(init.read_text() + f"\n# bench change {time.time_ns()}\n")
            start = time.monotonic()
            changed = bundle("90.1.1", {"PYCAM_APP_DIR": str(app)}, delta_from=new)
            build_s = round(time.monotonic() - start, 1)
            results["app"] = {**case("app", new, changed, delta_path("90.1.1", "90.1.0"), tmp),
                              "build_with_delta_s": build_s, "measured": now}
    for version in ("90.0.0", "90.1.0", "90.1.1"):
        for path in out_dir().glob(f"pycam-{BOARD}-{version}*"):
            path.unlink()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))

if __name__ == "__main__":
    main()
