"""The firmware version scheme, checked at build time with the device's own code.

The device's downgrade policy (rootfs/overlay/usr/lib/pycam/rauc-pre-install, shell and awk)
refuses any bundle whose version is outside the scheme; the build runs that very file
(`rauc-pre-install check V`), so host and device cannot disagree about what a version is.
"""

from __future__ import annotations

import subprocess

from pycam import ROOT
from pycam.errors import PycamError

HANDLER = ROOT / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "rauc-pre-install"


class BadVersion(ValueError):
    pass


def _policy(*args: str) -> str:
    result = subprocess.run(["sh", str(HANDLER), *args], capture_output=True, text=True)
    if result.returncode == 2:
        raise BadVersion(result.stderr.strip())
    if result.returncode != 0:
        raise RuntimeError(f"{HANDLER} {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version a is older than, the same as, or newer than b (the device's order)."""
    return int(_policy("compare", a, b))


def check_version(version: str) -> None:
    try:
        _policy("check", version)
    except BadVersion as exc:
        raise PycamError(f"firmware version {exc}: devices refuse bundles outside the version scheme",
                         "use numbers separated by dots, optionally -pre.release (keys/README.md, "
                         "'Downgrade policy'), e.g. --version 1.2.0 or 1.2.0-rc.1") from None
