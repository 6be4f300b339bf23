"""Fixtures for tests on a booted image: QEMU through labgrid, one VM per test session.

Named apart from labgrid's own pytest plugin fixtures: lg_env, dut (the strategy), shell.

The image is the one `pycam build` made (the README's first command); if it is missing
the fixture builds it, so `pytest` alone also works. The VM boots a session-private
working copy, so the environment and /data persist across the reboots of a session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pycam.definition import Product, load_product
from pycam.engine.build import Outputs, outputs

BOARD = os.environ.get("PYCAM_TEST_BOARD", "qemuarm64")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.target)


@pytest.fixture(scope="session")
def product() -> Product:
    return load_product(BOARD)


@pytest.fixture(scope="session")
def built(product: Product) -> Outputs:
    if shutil.which("qemu-system-aarch64") is None:
        pytest.skip("qemu-system-aarch64 is not installed (run: sudo scripts/setup-host)")
    out = outputs(product, product.ota.version)
    if not out.manifest.exists():
        subprocess.run([sys.executable, "-m", "pycam", "build", "--board", BOARD], check=True)
    return out


@pytest.fixture(scope="session")
def lg_env(product: Product, built: Outputs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from labgrid import Environment

    from pycam.qemu import labgrid_env
    from tests.target import strategy  # noqa: F401 - registers PycamQemuStrategy with labgrid

    work = tmp_path_factory.mktemp("qemu")
    disk = work / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(built.disk), str(disk)], check=True)
    config = work / "env.yaml"
    config.write_text(yaml.safe_dump(labgrid_env(product, disk), sort_keys=False))  # drivers bind in order
    environment = Environment(str(config))
    yield environment
    environment.cleanup()


@pytest.fixture(scope="session")
def dut(lg_env: object):
    """The device under test: the labgrid strategy of the QEMU target."""
    target = lg_env.get_target("main")  # type: ignore[attr-defined]
    strat = target.get_driver("Strategy")
    yield strat
    strat.transition("off")


@pytest.fixture
def shell(dut):
    dut.transition("shell")
    return dut.shell
