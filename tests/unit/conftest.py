from __future__ import annotations

import shutil

import pytest

from pycam.definition import Product, load_product


@pytest.fixture(scope="session")
def product() -> Product:
    return load_product("qemuarm64")


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"host tools missing: {', '.join(missing)} (run: sudo scripts/setup-host)")
