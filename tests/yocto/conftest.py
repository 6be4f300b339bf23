"""Shared helpers for the Yocto engine's checks (meta-pycam, kas, pycam.yocto)."""

from __future__ import annotations

import pytest

from pycam import ROOT
from pycam.yocto import yocto_boards

LAYER = ROOT / "meta-pycam"
BOARDS = yocto_boards(ROOT)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "yocto: runs real BitBake through ../shared/tools/yocto-check (minutes per board; "
        "also marked soak, so `pytest -m yocto` selects it)"
    )
