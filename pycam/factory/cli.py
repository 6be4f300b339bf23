"""`pycam factory ...`: the station's command line (registered by pycam/cli.py)."""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pycam.errors import PycamError
from pycam.log import log


def _line(args: argparse.Namespace):
    from pycam.factory.config import load_line

    return load_line(Path(args.line) if args.line else None)


def cmd_ca_init(args: argparse.Namespace) -> int:
    from pycam.factory.ca import init_ca

    line = _line(args)
    directory = Path(args.dir) if args.dir else line.ca
    init_ca(directory, force=args.force)
    log.info("development factory CA written to %s (ca.key 0600, git-ignored)", directory)
    return 0


def _station(line: Any, net: Any, operator: str):
    from pycam.definition import load_product
    from pycam.factory.ca import FactoryCA
    from pycam.factory.db import StationDB
    from pycam.factory.station import Station

    product = load_product(line.board)
    ca = FactoryCA.load(line.ca)
    db = StationDB(line.database)
    return Station(line, db, ca, hardware=product.board.hardware, version=product.ota.version, net=net,
                   operator=operator), product


def cmd_provision(args: argparse.Namespace) -> int:
    from pycam.engine.build import outputs
    from pycam.factory import fleet, report
    from pycam.factory.netserver import NetServer

    line = _line(args)
    if args.reprovision and not args.reason:
        raise PycamError("--reprovision needs --reason (re-provisioning is audited)", "add --reason '...'")
    net = NetServer(port=args.net_port)
    station, product = _station(line, net, args.operator)
    image = Path(args.image) if args.image else outputs(product, product.ota.version).disk
    outcomes = []
    try:
        if args.lg_env:
            ctx = fleet.rig_devices(Path(args.lg_env), Path(args.image) if args.image else None)
        else:
            work = Path(tempfile.mkdtemp(prefix="pycam-factory-"))
            ctx = fleet.qemu_devices(product, image, work, [f"dut{i + 1}" for i in range(args.qemu)])
        with ctx as devices:
            lock = threading.Lock()

            def one(name: str, strategy: Any) -> None:
                from pycam.factory.station import Outcome

                t0 = time.monotonic()
                station.progress(name, "boot", "start", "")
                try:
                    strategy.transition("shell")
                except Exception as e:  # a device that does not boot is a failed device, not a failed line
                    station.progress(name, "boot", "fail", str(e).splitlines()[0][:200])
                    with lock:
                        outcomes.append(Outcome(name, "error", failed_step="boot", error=str(e).splitlines()[0]))
                    return
                station.progress(name, "boot", "done", f"{time.monotonic() - t0:.0f} s")
                out = station.provision(name, strategy.shell, reprovision=args.reprovision, reason=args.reason,
                                        run_selftest=not args.no_selftest)
                with lock:
                    outcomes.append(out)

            threads = [threading.Thread(target=one, args=item, name=item[0]) for item in devices.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        net.close()
    csv_path, html_path = report.summary(line, station.db)
    for out in sorted(outcomes, key=lambda o: o.device):
        print(json.dumps({"device": out.device, "did": out.did, "mac": out.mac, "outcome": out.outcome,
                          "failed_step": out.failed_step, "error": out.error, "seconds": out.seconds}))
    log.info("line summary: %s, %s", csv_path, html_path)
    return 0 if outcomes and all(o.outcome == "pass" for o in outcomes) else 1


def cmd_summary(args: argparse.Namespace) -> int:
    from pycam.factory import report
    from pycam.factory.db import StationDB

    line = _line(args)
    csv_path, html_path = report.summary(line, StationDB(line.database))
    print(csv_path)
    print(html_path)
    return 0


def cmd_allocations(args: argparse.Namespace) -> int:
    from pycam.factory.db import StationDB

    line = _line(args)
    for a in StationDB(line.database).allocations():
        print(f"{a.did}\t{a.mac}\t{a.status}\t{a.station}\t{a.hw_id}\t{a.reason}")
    return 0


def register(subparsers: Any) -> None:
    f = subparsers.add_parser("factory", help="factory line: provision devices and run the self-test station")
    fsub = f.add_subparsers(dest="factory_command", required=True)

    def with_line(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--line", help="line configuration (default factory/line.yml)")
        return p

    c = with_line(fsub.add_parser("ca-init", help="create a development factory CA (station.ca)"))
    c.add_argument("--dir", help="CA directory (default: station.ca of the line)")
    c.add_argument("--force", action="store_true", help="replace an existing CA")
    c.set_defaults(func=cmd_ca_init)

    p = with_line(fsub.add_parser("provision", help="flash, boot, provision and self-test devices"))
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--qemu", type=int, metavar="N", help="N QEMU devices flashed from the built image")
    where.add_argument("--lg-env", metavar="ENV", help="labgrid environment of a rig (every target is a device)")
    p.add_argument("--image", help="disk image to flash (default: the build's image)")
    p.add_argument("--reprovision", action="store_true", help="replace an existing identity (audited)")
    p.add_argument("--reason", default="", help="why re-provisioning (recorded in the audit log)")
    p.add_argument("--operator", default="", help="operator name for the audit log")
    p.add_argument("--no-selftest", action="store_true", help="provision only")
    p.add_argument("--net-port", type=int, default=0, help="station throughput server port (default: any)")
    p.set_defaults(func=cmd_provision)

    s = with_line(fsub.add_parser("summary", help="write the line summary (CSV + HTML) from the station database"))
    s.set_defaults(func=cmd_summary)

    a = with_line(fsub.add_parser("allocations", help="list allocated DIDs and MACs with their state"))
    a.set_defaults(func=cmd_allocations)
