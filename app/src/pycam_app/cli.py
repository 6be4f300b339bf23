"""pycam-app: run the camera service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from . import __version__, config


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="pycam-app", description="pycam camera service")
    ap.add_argument(
        "--config", default="/etc/pycam/app.toml", help="TOML configuration (missing file = built-in defaults)"
    )
    ap.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    ap.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    ap.add_argument("--version", action="version", version=f"pycam-app {__version__}")
    return ap.parse_args(argv)


async def _serve(cfg: config.Config) -> None:
    from .service import CameraService

    svc = CameraService(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await svc.start()
    try:
        await stop.wait()
    finally:
        await svc.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        print(f"pycam-app: configuration error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        sys.stdout.write(config.to_toml(cfg))
        return 0
    if args.check_config:
        print(f"{args.config}: ok")
        return 0
    # journald adds its own timestamps; keep lines short.
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("libav").setLevel(logging.ERROR)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(cfg))
    return 0
