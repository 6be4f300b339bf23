"""The firmware version scheme, checked at build time with the device's own code.

The device's downgrade policy (rootfs/overlay/usr/lib/pycam/rauc-pre-install) refuses any bundle
whose version is outside the scheme; the build loads that very file, so host and device cannot
disagree about what a version is.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from functools import cache
from types import ModuleType

from pycam import ROOT
from pycam.errors import PycamError

HANDLER = ROOT / "rootfs" / "overlay" / "usr" / "lib" / "pycam" / "rauc-pre-install"


@cache
def policy() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("pycam_rauc_pre_install", str(HANDLER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def check_version(version: str) -> None:
    try:
        policy().parse(version)
    except policy().BadVersion as exc:
        raise PycamError(f"firmware version {exc}: devices refuse bundles outside the version scheme",
                         "use numbers separated by dots, optionally -pre.release (keys/README.md, "
                         "'Downgrade policy'), e.g. --version 1.2.0 or 1.2.0-rc.1") from None
