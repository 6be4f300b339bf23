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


def test_local_wheels_are_the_app_and_the_ota_client(monkeypatch, tmp_path: Path) -> None:
    from pycam.engine.packages import load_packages
    from pycam.engine.wheels import local_dirs

    pkgs = load_packages()
    assert pkgs.local_wheels == ("app", "ota/client")
    monkeypatch.delenv("PYCAM_APP_DIR", raising=False)
    assert local_dirs(pkgs) == [("appwheel", ROOT / "app"), ("wheel-ota-client", ROOT / "ota" / "client")]
    monkeypatch.setenv("PYCAM_APP_DIR", str(tmp_path))
    assert local_dirs(pkgs)[0] == ("appwheel", tmp_path)  # another app tree, same cache stage
    assert all((d / "pyproject.toml").exists() for _, d in local_dirs(load_packages()) if d != tmp_path)
