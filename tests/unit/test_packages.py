"""rootfs/packages.yml: optional version pins become apt preferences and part of the cache key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pycam import ROOT
from pycam.engine.packages import load_packages
from pycam.errors import PycamError


def _variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "rootfs" / "packages.yml").read_text())
    data.update(changes)
    path = tmp_path / "packages.yml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PYCAM_PACKAGES", str(path))
    return path


def test_pins_become_apt_preferences_and_change_the_key(tmp_path, monkeypatch) -> None:
    plain = load_packages()
    _variant(tmp_path, monkeypatch, pins={"libssl3": "3.0.20-1~deb12u2", "linux-image-arm64": "6.1.176-1"})
    pinned = load_packages()
    prefs = pinned.apt_preferences()
    assert "Package: libssl3\nPin: version 3.0.20-1~deb12u2\nPin-Priority: 1001\n" in prefs
    assert "Package: linux-image-arm64\nPin: version 6.1.176-1\n" in prefs
    assert pinned.key() != plain.key() and "pins" not in plain.key()  # unpinned keys did not change


@pytest.mark.parametrize("pins", [["libssl3"], {"libssl3": ""}, {"libssl3": 3}])
def test_malformed_pins_are_refused_with_an_example(tmp_path, monkeypatch, pins) -> None:
    path = _variant(tmp_path, monkeypatch, pins=pins)
    with pytest.raises(PycamError, match="pins must map package names to version strings") as err:
        load_packages()
    assert str(path) in str(err.value)
