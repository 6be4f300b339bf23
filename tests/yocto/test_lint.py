"""oelint-adv is clean on every recipe, append, include and class of meta-pycam."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import LAYER

SUFFIXES = (".bb", ".bbappend", ".bbclass", ".inc")


def _oelint() -> list[str]:
    exe = shutil.which("oelint-adv") or str(Path(sys.executable).with_name("oelint-adv"))
    if not Path(exe).exists():
        pytest.skip("oelint-adv is not installed (pip install oelint-adv, in the dev extra)")
    return [exe]


def _files() -> list[str]:
    # conf/ holds layer, distro and generated configuration includes, not recipe metadata
    return sorted(str(p.relative_to(LAYER)) for p in LAYER.rglob("*")
                  if p.suffix in SUFFIXES and p.relative_to(LAYER).parts[0] != "conf")


def test_there_is_something_to_lint() -> None:
    files = _files()
    assert any(f.endswith(".bbclass") for f in files)
    assert sum(f.endswith(".bb") for f in files) >= 10


def test_oelint_adv_is_clean() -> None:
    # meta-pycam/.oelint.cfg (release, constants, the few suppressed rules) applies in the layer
    result = subprocess.run([*_oelint(), "--quiet", "--relpaths", *_files()], cwd=LAYER,
                            capture_output=True, text=True, timeout=600)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, findings
