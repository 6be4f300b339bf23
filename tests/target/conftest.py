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


class Devices:
    """Boots QEMU devices, each from its own copy of an image, and powers them all off at the end.

    Tests that need a device of their own (a fresh, unprovisioned one, or one whose slots they
    may leave in any state) take one from here instead of the session's shared `dut`. Each VM
    has its own user network, so the host is 10.0.2.2 for all of them.
    """

    def __init__(self, product: Product, built: Outputs, work: Path) -> None:
        self.product, self.built, self.work = product, built, work
        self.environments: list[object] = []

    def environment(self, name: str, image: Path | None = None) -> object:
        from labgrid import Environment

        from pycam.qemu import labgrid_env
        from tests.target import strategy  # noqa: F401 - registers PycamQemuStrategy with labgrid

        directory = self.work / name
        directory.mkdir(parents=True)
        disk = directory / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(image or self.built.disk), str(disk)], check=True)
        config = directory / "env.yaml"
        config.write_text(yaml.safe_dump(labgrid_env(self.product, disk), sort_keys=False))  # drivers bind in order
        environment = Environment(str(config))
        self.environments.append(environment)
        return environment

    def new(self, name: str, image: Path | None = None):
        """A powered-off device (its labgrid strategy); `.transition("shell")` boots it."""
        return self.environment(name, image).get_target("main").get_driver("Strategy")  # type: ignore[attr-defined]

    def cleanup(self) -> None:
        for environment in self.environments:
            strat = environment.get_target("main").get_driver("Strategy")  # type: ignore[attr-defined]
            try:
                strat.transition("off")
            finally:
                environment.cleanup()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def devices(product: Product, built: Outputs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devices]:
    fleet = Devices(product, built, tmp_path_factory.mktemp("devices"))
    yield fleet
    fleet.cleanup()


@pytest.fixture(scope="session")
def lg_env(devices: Devices) -> object:
    """The session's shared device (test_image.py and friends run on it in file order)."""
    return devices.environment("main")


@pytest.fixture(scope="session")
def dut(lg_env: object):
    """The device under test: the labgrid strategy of the QEMU target."""
    return lg_env.get_target("main").get_driver("Strategy")  # type: ignore[attr-defined]


@pytest.fixture
def shell(dut):
    dut.transition("shell")
    return dut.shell
