from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycam.factory.ca import FactoryCA, init_ca
from pycam.factory.config import LineConfig, load_line
from tests.factory.pg import pg_bin, postgres_server


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if pg_bin() is None:
        pytest.skip("PostgreSQL not installed (run: scripts/setup-host)")
    # not under pytest's 0700 temporary root: the server may run as the postgres user
    with postgres_server(Path(tempfile.mkdtemp(prefix="pycam-pg-"))) as url:
        yield url


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ca(tmp_path_factory.mktemp("ca") / "factory")


@pytest.fixture(scope="session")
def factory_ca(ca_dir: Path) -> FactoryCA:
    return FactoryCA.load(ca_dir)


@pytest.fixture
def line(tmp_path: Path, ca_dir: Path) -> LineConfig:
    """The repository's line configuration, with its database, output and CA in temporary places."""
    text = (Path(__file__).parents[2] / "factory" / "line.yml").read_text()
    text = text.replace("database: factory/station.db", f"database: {tmp_path / 'station.db'}")
    text = text.replace("output: factory/out", f"output: {tmp_path / 'out'}")
    text = text.replace("ca: keys/factory", f"ca: {ca_dir}")
    path = tmp_path / "line.yml"
    path.write_text(text)
    return load_line(path)
