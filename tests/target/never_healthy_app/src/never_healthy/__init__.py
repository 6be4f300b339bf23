"""A camera app that starts (systemd sees it ready and alive) but never streams a frame.

pycam-app:     READY=1 and WATCHDOG=1 pings to systemd, nothing else.
pycam-health:  what the real probe says when no frame ever comes: failure, after a short wait
               (the real one would wait the gate's full timeout; the outcome is the same).
"""

from __future__ import annotations

import os
import socket
import sys
import time


def _notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def app() -> int:
    _notify("READY=1\nSTATUS=test build: never streams")
    while True:
        _notify("WATCHDOG=1")
        time.sleep(5)


def health() -> int:
    if "--wait" in sys.argv:
        time.sleep(3)
        print("pycam-health: FAILED: no frame captured (test build that never streams)", file=sys.stderr)
        return 1
    print('{"status": "starting", "frames": 0}')
    return 1
