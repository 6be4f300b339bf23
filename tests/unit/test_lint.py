"""The repository's own rules: ruff and mypy clean, every shell script `set -eu` and parseable.

Each Python project is checked with its own configuration (the build tool at the top, the camera app
in app/, the OTA client in ota/client/); scripts without a .py name (the device's helpers, RAUC
hooks, bench tools) are found by their shebang. The Yocto layer's lint is tests/yocto/test_lint.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pycam import ROOT

VENV_BIN = Path(sys.executable).parent
PROJECTS = {".": ["pycam"], "app": ["src"], "ota/client": ["src"]}  # directory: what mypy checks


def tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def shebang(path: Path) -> str:
    with path.open("rb") as f:
        first = f.readline(100)
    return first.decode(errors="replace").strip() if first.startswith(b"#!") else ""


def tool(name: str) -> str:
    found = VENV_BIN / name
    if not found.exists():
        pytest.skip(f"{name} is not installed in the venv (run: scripts/setup-host)")
    return str(found)


def python_scripts() -> list[Path]:
    return [p for p in tracked() if p.suffix != ".py" and "python" in shebang(p)]


def shell_scripts() -> list[Path]:
    shells = ("/bin/sh", "/bin/bash", "env sh", "env bash")
    return [p for p in tracked() if p.suffix != ".py" and any(s in shebang(p) for s in shells)]


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_ruff(project: str) -> None:
    directory = ROOT / project
    extra = [str(p) for p in python_scripts() if directory in p.parents and not any(
        (ROOT / other) in p.parents for other in PROJECTS if other != project and other != ".")]
    result = subprocess.run([tool("ruff"), "check", "--no-cache", ".", *extra], cwd=directory,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_mypy(project: str) -> None:
    result = subprocess.run([tool("mypy"), *PROJECTS[project]], cwd=ROOT / project, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_are_scripts_to_check() -> None:
    names = {p.name for p in shell_scripts()} | {p.name for p in python_scripts()}
    assert {"rauc-pre-install", "health-gate", "setup-host", "delta-install", "make-delta"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_stops_on_errors_and_parses(script: Path) -> None:
    text = script.read_text()
    assert any(line.strip().startswith("set -") and "e" in line.split()[1] and "u" in line.split()[1]
               for line in text.splitlines()), f"{script.relative_to(ROOT)} has no `set -eu`"
    shell = "bash" if "bash" in shebang(script) else "sh"
    result = subprocess.run([shutil.which(shell) or shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
