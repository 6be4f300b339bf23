"""Real BitBake: parse, task graph and environment of the image and bundles, per board.

Runs ../shared/tools/yocto-check (kas + BitBake offline against local git mirrors of the
pinned upstream layers). Needs YOCTO_MIRRORS (a directory of OWNER+REPO/repo bare mirrors)
and about 8 minutes per board for the first parse; skipped otherwise.

    YOCTO_MIRRORS=/path/to/mirrors pytest -m yocto tests/yocto/test_bitbake.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pycam import ROOT

from .conftest import BOARDS

TOOL = Path(os.environ.get("YOCTO_CHECK", ROOT.parent / "shared" / "tools" / "yocto-check"))
IMAGES = ("pycam-image", "pycam-bundle", "pycam-bundle-delta")


def _skip_reason() -> str | None:
    mirrors = os.environ.get("YOCTO_MIRRORS", "")
    if not mirrors:
        return "YOCTO_MIRRORS is not set: no local mirrors of the upstream layers for an offline BitBake run"
    if not Path(mirrors).is_dir():
        return f"YOCTO_MIRRORS={mirrors} is not a directory"
    if not os.access(TOOL, os.X_OK):
        return f"{TOOL} not found (set YOCTO_CHECK to the yocto-check harness)"
    return None


@pytest.mark.soak
@pytest.mark.yocto
@pytest.mark.parametrize("board", BOARDS)
def test_bitbake_resolves_image_and_bundles(board: str) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    result = subprocess.run([str(TOOL), "-k", f"kas.yml:board/{board}/kas.yml", str(ROOT), *IMAGES],
                            capture_output=True, text=True, timeout=3 * 3600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "yocto-check: all OK" in output, output[-3000:]
