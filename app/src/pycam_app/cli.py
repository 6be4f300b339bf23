"""pycam-app: run the camera service."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys

from . import __version__, config, lean


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="pycam-app", description="pycam camera service")
    ap.add_argument(
        "--config", default="/etc/pycam/app.toml", help="TOML configuration (missing file = built-in defaults)"
    )
    ap.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    ap.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    ap.add_argument("--version", action="version", version=f"pycam-app {__version__}")
    return ap.parse_args(argv)


def _lean_process(cfg: config.Config) -> None:
    """Process-wide memory savings, applied before asyncio, aiohttp and PyAV are imported (README, Memory).

    - Plain HTTP (web.tls off, or auto without the device certificate): make ``import ssl`` fail, as on
      a Python built without it. asyncio, aiohttp and http.client all treat ssl as optional; the service
      makes no outgoing TLS connections. Saves ~1 MB with aiohttp 3.8 and ~3.5 MB with aiohttp >= 3.10,
      whose client builds two CA-loaded SSL contexts at import time. With HTTPS nothing changes.
    - Plain HTTP also blocks ``_hashlib``, hashlib's OpenSSL backend: hashlib and hmac then use Python's
      built-in SHA-1/SHA-256/MD5 and libcrypto is never loaded (~3.5 MB: the library's touched pages
      and OpenSSL 3's provider set-up). auth.pbkdf2_sha256 computes PBKDF2 itself in that case.
    - FFmpeg's bundled GnuTLS initialises itself in a library constructor when PyAV loads it (~0.9 MB);
      GnuTLS skips that with GNUTLS_NO_IMPLICIT_INIT and libavformat initialises it explicitly before
      any TLS URL (which the service never opens).

    A certificate that arrives later (provisioning, then `systemctl reload`) lifts the block again
    (lean.allow_openssl), and the service serves HTTPS as if it had started with the certificate.
    """
    os.environ.setdefault("GNUTLS_NO_IMPLICIT_INIT", "1")
    if not cfg.web.tls_wanted():
        lean.block_openssl()


_early_reload = False  # SIGHUP while Python and PyAV were still loading


def _remember_reload(signum: int, frame: object) -> None:
    global _early_reload
    _early_reload = True


async def _serve(cfg: config.Config) -> None:
    import asyncio

    from .service import CameraService

    svc = CameraService(cfg)
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    if _early_reload:
        reload.set()  # the identity may have changed after CameraService read it: look again once serving

    async def reloads() -> None:
        while True:
            await reload.wait()
            reload.clear()
            await svc.reload()

    await svc.start()
    task = asyncio.create_task(reloads())
    try:
        await stop.wait()
    finally:
        task.cancel()
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
    # SIGHUP = `systemctl reload` (re-read /factory). Its default action would end the process during
    # the long imports below: remember it, and reload once serving.
    signal.signal(signal.SIGHUP, _remember_reload)
    _lean_process(cfg)
    import asyncio

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(cfg))
    return 0
