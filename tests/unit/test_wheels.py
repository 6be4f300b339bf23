from __future__ import annotations

import shutil
from pathlib import Path

from pycam import ROOT
from pycam.engine.wheels import app_source_digest


def test_app_digest_ignores_build_output_and_sees_source_changes(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(ROOT / "app" / "src", app / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copy(ROOT / "app" / "pyproject.toml", app)
    before = app_source_digest(app)
    # what `pip wheel` leaves in the tree must not look like a new app
    (app / "build" / "lib").mkdir(parents=True)
    (app / "build" / "lib" / "x.py").write_text("x")
    (app / "src" / "pycam_app.egg-info").mkdir()
    (app / "src" / "pycam_app.egg-info" / "PKG-INFO").write_text("y")
    assert app_source_digest(app) == before
    init = app / "src" / "pycam_app" / "__init__.py"
    init.write_text(init.read_text() + "\n# change\n")
    assert app_source_digest(app) != before
