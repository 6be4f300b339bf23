"""Factory station speed on QEMU devices: provision + self-test per device after boot, devices per hour.

One station drives N devices at once (its fixtures), each flashed (a sparse copy of the built image),
booted and then provisioned and self-tested through labgrid, exactly as `pycam factory provision
--qemu N` does. A development factory CA and a SQLite station database in a temporary directory.

Run as root after `pycam build`: .venv/bin/python bench/factory_bench.py [--devices N] [--rounds R]
Writes bench/results/factory.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycam.definition import load_product  # noqa: E402
from pycam.engine.build import outputs  # noqa: E402
from pycam.factory import fleet, report  # noqa: E402
from pycam.factory.ca import FactoryCA, init_ca  # noqa: E402
from pycam.factory.config import load_line  # noqa: E402
from pycam.factory.db import StationDB  # noqa: E402
from pycam.factory.netserver import NetServer  # noqa: E402
from pycam.factory.station import Station, log_progress  # noqa: E402
from pycam.log import setup  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "factory.json"


APP_EVENTS = re.compile(r"^\[\s*([0-9.]+)\] \S+ \S+: (.*(?:Starting|Started|Stopping|Stopped|Reloading|Reloaded|"
                        r"serving on|reloaded|reload failed).*)$")


def app_timeline(shell: Any, login: float) -> list[tuple[float, str]]:
    """The camera app's life on the device (systemd's and the app's journal lines), in seconds since the
    console login: when its boot-time start ended, when the station's restart or reload happened."""
    lines = shell.run_check("journalctl -b -u pycam-app.service -o short-monotonic --no-pager", timeout=120)
    events = []
    for line in lines:
        m = APP_EVENTS.match(line)
        if m:
            events.append((round(float(m.group(1)) - login, 1), m.group(2)[:120]))
    return events


def one_round(n: int, work: Path, round_no: int) -> dict[str, object]:
    product = load_product("qemuarm64")
    image = outputs(product, product.ota.version).disk
    base = load_line()
    line = dataclasses.replace(base, database=str(work / "station.db"), output=work / "out", ca=work / "ca")
    if not (work / "ca" / "ca.key").exists():
        init_ca(work / "ca")
    net = NetServer()
    station = Station(line, StationDB(line.database), FactoryCA.load(line.ca), hardware=product.board.hardware,
                      version=product.ota.version, net=net, progress=log_progress)
    names = [f"r{round_no}d{i + 1}" for i in range(n)]
    per_device: dict[str, dict[str, object]] = {}
    t_round = time.monotonic()
    try:
        with fleet.qemu_devices(product, image, work / f"round{round_no}", names) as devices:
            flashed = time.monotonic() - t_round

            def run(name: str) -> None:
                t0 = time.monotonic()
                devices[name].transition("shell")
                boot = time.monotonic() - t0
                shell = devices[name].shell
                login = float(shell.run_check("cut -d' ' -f1 /proc/uptime")[0])
                out = station.provision(name, shell)
                per_device[name] = {"boot_s": round(boot, 1), "provision_selftest_s": out.seconds,
                                    "outcome": out.outcome, "did": out.did, "steps_s": out.steps,
                                    "failed": [r.test for r in out.results if r.verdict == "fail"],
                                    "error": out.error, "app_timeline": app_timeline(shell, login)}

            threads = [threading.Thread(target=run, args=(name,)) for name in names]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        net.close()
    wall = time.monotonic() - t_round
    report.summary(line, station.db)
    return {"devices": n, "flash_s": round(flashed, 1), "wall_s": round(wall, 1), "per_device": per_device,
            "load_avg_1m_end": round(os.getloadavg()[0], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=2, help="devices per round (the station's fixtures)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args()
    setup()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pycam-factory-bench-") as tmp:
        rounds = [one_round(args.devices, Path(tmp), r + 1) for r in range(args.rounds)]
    load1 = os.getloadavg()[0]
    times = [d["provision_selftest_s"] for r in rounds for d in r["per_device"].values()]  # type: ignore[attr-defined]
    boots = [d["boot_s"] for r in rounds for d in r["per_device"].values()]  # type: ignore[attr-defined]
    passed = sum(1 for r in rounds for d in r["per_device"].values() if d["outcome"] == "pass")  # type: ignore[attr-defined]
    total = sum(int(r["devices"]) for r in rounds)  # type: ignore[call-overload]
    wall = sum(float(r["wall_s"]) for r in rounds)  # type: ignore[arg-type]
    result = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "host": {"cpus": os.cpu_count(), "load_avg_1m_start": round(load0, 2), "load_avg_1m_end": round(load1, 2)},
        "qemu": "virt cortex-a57 -smp 2 -m 1024 (TCG), one VM per fixture",
        "goal_provision_selftest_s": 60,
        "provision_selftest_s": {"mean": round(statistics.mean(times), 1), "max": max(times), "min": min(times)},
        "boot_to_login_s": {"mean": round(statistics.mean(boots), 1), "max": max(boots)},
        "passed": f"{passed}/{total}",
        "devices_per_hour_per_station": round(total / wall * 3600, 1),
        "devices_per_hour_per_fixture_after_boot": round(3600 / statistics.mean(times), 1),
        "rounds": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
