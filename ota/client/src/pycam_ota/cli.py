"""pycam-ota: the device's update client.

pycam-ota [run]       poll forever (the systemd service)
pycam-ota once        one poll: finish a pending update's report, or look for a new one
pycam-ota status      the last outcome and the action in flight, as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pycam_ota.config import ConfigError, find, parse
from pycam_ota.state import State

log = logging.getLogger("pycam-ota")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pycam-ota", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", default="run", choices=("run", "once", "status"))
    ap.add_argument("--config", help="configuration file (default: the first of /factory/ota/hawkbit.conf, "
                                     "/etc/pycam/hawkbit.conf, /data/pycam/hawkbit.conf)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="pycam-ota: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        cfg = parse(Path(args.config), Path(args.config).read_text()) if args.config else find()
    except (ConfigError, OSError) as exc:
        print(f"pycam-ota: error: {exc}", file=sys.stderr)
        return 2
    if args.command == "status":
        state = State(Path(cfg.state_dir))
        json.dump({"config": str(cfg.path), "mode": cfg.mode, "pending": state.pending(), **state.status()},
                  sys.stdout, indent=1, sort_keys=True)
        print()
        return 0

    from pycam_ota.client import Client
    from pycam_ota.device import SystemDevice

    client = Client(cfg, SystemDevice(cfg.health_unit))
    log.info("config %s: %s", cfg.path, {"hawkbit": cfg.controller_base, "index": cfg.index_url}.get(cfg.mode,
                                                                                                      "no server"))
    if args.command == "once":
        client.step()
        return 0
    try:
        client.run()
    except KeyboardInterrupt:
        return 130
    return 0
