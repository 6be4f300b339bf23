"""pycam-health: probe the running service's health endpoint (the OTA health gate runs it).

pycam-health              print the health JSON (exit 0 if reachable)
pycam-health --wait 60    exit 0 as soon as main-stream frames flow (first frame seen and the counter
                          advancing), 1 with a message on stderr on timeout
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import config


def _base_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        raise SystemExit(f"pycam-health: configuration error: {e}") from e
    # The service records where it listens (HTTP or HTTPS, real port); fall back to the config.
    for d in (Path(cfg.runtime_dir),):
        try:
            return str(json.loads((d / "endpoint.json").read_text())["url"]).rstrip("/")
        except (OSError, ValueError, KeyError):
            pass
    import os
    import tempfile

    try:
        p = Path(tempfile.gettempdir()) / f"pycam-app-{os.getuid()}" / "endpoint.json"
        return str(json.loads(p.read_text())["url"]).rstrip("/")
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{cfg.web.port}"


def fetch(url: str, timeout: float = 3.0) -> dict[str, Any]:
    # Loopback self-check: the device certificate names the device, not 127.0.0.1, so do not verify it.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url + "/api/health", timeout=timeout, context=ctx) as r:
        data = json.loads(r.read())
    if not isinstance(data, dict):
        raise ValueError("health endpoint did not return a JSON object")
    return data


def wait(url: str | Callable[[], str], seconds: float, interval: float = 0.5) -> tuple[bool, str]:
    """url may be a function, asked again on every try: the service can move while the health gate
    waits (provisioning restarts it on HTTPS), and a restart also restarts its frame counter."""
    resolve: Callable[[], str] = url if callable(url) else (lambda: str(url))
    deadline = time.monotonic() + seconds
    first: int | None = None
    last_url = ""
    reason = "no answer yet"
    while True:
        current = resolve()
        if current != last_url:
            first, last_url = None, current
        try:
            doc = fetch(current, timeout=max(0.5, min(3.0, deadline - time.monotonic())))
            frames = int(doc.get("frames") or 0)
            if doc.get("first_frame_boottime_s") is None or frames == 0:
                reason = f"service up (source {doc.get('source')}) but no frame captured yet"
            elif first is None or frames < first:
                first = frames
                reason = f"frames={frames}, waiting for the counter to advance"
            elif frames > first:
                return True, f"frames flowing: {first} -> {frames} on the main stream ({doc.get('encoder')})"
            else:
                reason = f"frame counter stuck at {frames}"
        except (OSError, ValueError) as e:
            reason = f"{current}/api/health unreachable: {getattr(e, 'reason', e)}"
        if time.monotonic() >= deadline:
            return False, reason
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="pycam-health", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--wait", type=float, metavar="SECONDS", help="wait up to SECONDS for frames to flow on the main stream"
    )
    ap.add_argument("--config", default="/etc/pycam/app.toml", help="service configuration (for the port)")
    ap.add_argument("--url", help="service base URL, e.g. http://127.0.0.1:8080 (default: from the service)")
    args = ap.parse_args(argv)
    url = _base_url(args)
    if args.wait is not None:
        ok, message = wait(url if args.url else lambda: _base_url(args), args.wait)
        if ok:
            print(f"pycam-health: ok: {message}")
            return 0
        print(f"pycam-health: FAILED after {args.wait:g} s: {message}", file=sys.stderr)
        return 1
    try:
        doc = fetch(url)
    except (OSError, ValueError) as e:
        print(f"pycam-health: {url}/api/health unreachable: {getattr(e, 'reason', e)}", file=sys.stderr)
        return 1
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if doc.get("status") == "ok" else 1
