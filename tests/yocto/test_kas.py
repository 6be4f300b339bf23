"""The kas project: valid against kas's own JSON schema, every upstream repository pinned."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from pycam import ROOT

from .conftest import BOARDS

KAS_FILES = [ROOT / "kas.yml", *(ROOT / "board" / b / "kas.yml" for b in BOARDS)]
RELEASE = "scarthgap"


def _schema() -> dict[str, Any]:
    try:
        text = resources.files("kas").joinpath("schema-kas.json").read_text()
    except ModuleNotFoundError:
        pytest.skip("kas is not installed (pip install kas): it ships the schema")
    return json.loads(text)


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("path", KAS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_kas_file_matches_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(_load(path), _schema())


def test_header_is_the_current_format_version() -> None:
    schema = _schema()
    versions = schema["properties"]["header"]["properties"]["version"]["anyOf"]
    newest = max(v["maximum"] for v in versions if "maximum" in v)
    for path in KAS_FILES:
        assert _load(path)["header"]["version"] == newest, path


def test_base_project() -> None:
    data = _load(ROOT / "kas.yml")
    assert data["machine"] == "qemuarm64"
    assert data["distro"] == "pycam"
    # the delta bundle is built on request, against a base release (PYCAM_DELTA_BASE)
    assert set(data["target"]) == {"pycam-image", "pycam-bundle"}
    assert "meta-pycam" in data["repos"]["pycam"]["layers"]


@pytest.mark.parametrize("path", KAS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_upstream_repos_are_pinned(path: Path) -> None:
    for name, repo in (_load(path).get("repos") or {}).items():
        if not repo or "url" not in repo:
            continue  # this checkout
        assert re.fullmatch(r"[0-9a-f]{40}", str(repo.get("commit", ""))), f"{name}: pin a full commit"
        branch = str(repo.get("branch", ""))
        assert branch == RELEASE or branch.startswith(f"{RELEASE}/"), f"{name}: branch {branch!r}"


@pytest.mark.parametrize("board", BOARDS)
def test_board_fragment_selects_its_machine(board: str) -> None:
    data = _load(ROOT / "board" / board / "kas.yml")
    board_yml = yaml.safe_load((ROOT / "board" / board / "board.yml").read_text())
    assert data["machine"] == board_yml["yocto"]["machine"]
