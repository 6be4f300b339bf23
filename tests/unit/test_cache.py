from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pycam.engine.cache import Cache


def _producer(calls: list[int]):
    def produce(out: Path) -> None:
        calls.append(1)
        (out / "payload").write_text("data")

    return produce


def test_hit_after_first_build(tmp_path: Path) -> None:
    cache, calls = Cache(tmp_path), []
    first = cache.get("stage", {"a": 1}, _producer(calls))
    again = cache.get("stage", {"a": 1}, _producer(calls))
    assert first == again and len(calls) == 1
    other = cache.get("stage", {"a": 2}, _producer(calls))
    assert other != first and len(calls) == 2


def test_corrupt_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, calls = Cache(tmp_path), []
    entry = cache.get("stage", {"a": 1}, _producer(calls))
    (entry / "payload").write_text("bit rot")
    logging.getLogger("pycam").propagate = True
    with caplog.at_level(logging.WARNING, logger="pycam"):
        entry = cache.get("stage", {"a": 1}, _producer(calls))
    assert "is corrupt" in caplog.text and "payload" in caplog.text
    assert (entry / "payload").read_text() == "data" and len(calls) == 2


def test_failed_stage_leaves_nothing_that_looks_valid(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def broken(out: Path) -> None:
        (out / "half").write_text("partial")
        raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError):
        cache.get("stage", {"a": 1}, broken)
    assert not cache.entry("stage", {"a": 1}).exists()
    assert list(tmp_path.iterdir()) == []
