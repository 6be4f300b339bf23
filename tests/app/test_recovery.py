"""Recordings across power cuts and full disks: recovery of open files, index rebuild, retention."""

from __future__ import annotations

import collections
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import small_config
from pycam_app import fmp4, index, retention
from pycam_app.config import StorageConfig
from pycam_app.index import Index
from pycam_app.recorder import Recorder
from pycam_app.streams import Stream
from test_media import encode


def feed(stream: Stream, n: int, start: int = 0) -> None:
    wall0 = 1_700_000_000.0
    for i, (data, pts, key) in enumerate(encode(n)[start:], start):
        stream.publish(data, pts, key, i * 0.1, wall0 + i * 0.1, i + 1)


def make(tmp_path: Path) -> tuple[Recorder, Stream, Index]:
    cfg = small_config(tmp_path)
    stream = Stream("main", 320, 180, 10, ring_s=3)
    idx = Index(tmp_path / "index.db")
    rec = Recorder(cfg, stream, idx, tmp_path / "rec", lambda name, data: None)
    rec.root.mkdir(parents=True, exist_ok=True)
    return rec, stream, idx


def test_clip_writer_output_decodes(tmp_path: Path) -> None:
    rec, stream, idx = make(tmp_path)
    rec.start()
    time.sleep(0.2)
    feed(stream, 30)
    rec_id = rec.command("manual-start", 10).result(5)  # starts at the latest keyframe in the ring
    rec.command("manual-stop").result(5)
    rec.stop()
    row = idx.get(rec_id)
    assert row is not None and row["state"] == "closed" and row["frames"] >= 1
    s = fmp4.scan(tmp_path / "rec" / row["path"])
    assert s.samples == row["frames"] and s.keyframes[0] == 0


def test_open_recordings_are_repaired_or_dropped(tmp_path: Path) -> None:
    rec, _stream, idx = make(tmp_path)
    clip = fmp4.LiveMuxer(10)
    packets = encode(20)
    from pycam_app import h264

    sps, pps = h264.parameter_sets(packets[0][0])
    assert sps and pps
    data = fmp4.init_segment(320, 180, sps, pps) + b"".join(clip.fragment(*p) for p in packets)
    good = index.relative_path(1_700_000_000.0, "event")
    empty = index.relative_path(1_700_000_100.0, "continuous")
    gone = index.relative_path(1_700_000_200.0, "manual")
    for rel, content in ((good, data[:-50]), (empty, data[:500])):
        (rec.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (rec.root / rel).write_bytes(content)
    ids = [idx.add(rel, "event", "main", 1_700_000_000.0, 1) for rel in (good, empty, gone)]
    stats = rec.recover()
    assert stats == {"repaired": 1, "dropped": 2, "rebuilt": 0}
    row = idx.get(ids[0])
    assert row is not None and row["state"] == "closed" and row["frames"] == 19
    assert row["duration"] == pytest.approx(1.9)
    assert idx.get(ids[1]) is None and not (rec.root / empty).exists()
    assert idx.get(ids[2]) is None


def test_corrupt_index_is_rebuilt_from_files(tmp_path: Path) -> None:
    rec, stream, idx = make(tmp_path)
    rec.start()
    time.sleep(0.2)
    feed(stream, 25)
    rec_id = rec.command("manual-start", 10).result(5)
    rec.command("manual-stop").result(5)
    rec.stop()
    row = idx.get(rec_id)
    assert row is not None
    idx.close()
    db = tmp_path / "index.db"
    with open(db, "r+b") as f:
        f.seek(0)
        f.write(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    idx2 = Index(db)
    assert idx2.rebuilt
    rec2 = Recorder(rec.cfg, stream, idx2, rec.root, lambda n, d: None)
    assert rec2.recover()["rebuilt"] == 1
    rows = idx2.list()
    assert [r["path"] for r in rows] == [row["path"]] and rows[0]["frames"] == row["frames"]
    assert list(tmp_path.glob("index.db.corrupt-*"))
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_retention_deletes_oldest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "rec"
    idx = Index(tmp_path / "index.db")
    for i in range(5):
        rel = index.relative_path(1_700_000_000.0 + i * 3600, "continuous")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * 1000)
        rid = idx.add(rel, "continuous", "main", 1_700_000_000.0 + i * 3600, None)
        idx.close_recording(rid, 1_700_000_060.0 + i * 3600, 60, 600, 1000)
    open_id = idx.add(index.relative_path(1_600_000_000.0, "event"), "event", "main", 1_600_000_000.0, None)
    free = {"bytes": 500}
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(retention.shutil, "disk_usage", lambda p: usage(100_000, 0, free["bytes"]))

    def deleting(path: Path) -> None:
        free["bytes"] += 1000

    real_unlink = Path.unlink
    monkeypatch.setattr(
        Path, "unlink", lambda self, missing_ok=False: (deleting(self), real_unlink(self, missing_ok))[1]
    )
    cfg = StorageConfig(min_free_mb=0, min_free_percent=2.0)  # 2% of 100 kB = 2000 bytes free wanted
    deleted = retention.enforce(idx, root, cfg)
    assert len(deleted) == 2
    left = sorted(r["start"] for r in idx.list(state="closed"))
    assert left[0] == 1_700_000_000.0 + 2 * 3600  # the two oldest went first
    assert idx.get(open_id) is not None  # never the recording being written
    assert not (root / "2023" / "11" / "14" / "22").exists()  # emptied hour directory removed


def test_retention_by_age(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    idx = Index(tmp_path / "index.db")
    now = time.time()
    for age_days in (40, 10):
        rel = index.relative_path(now - age_days * 86400, "event")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
        rid = idx.add(rel, "event", "main", now - age_days * 86400, None)
        idx.close_recording(rid, now - age_days * 86400 + 10, 10, 100, 1)
    deleted = retention.enforce(idx, root, StorageConfig(min_free_mb=0, min_free_percent=0, max_age_days=30))
    assert len(deleted) == 1 and len(idx.list()) == 1


def test_relative_path_roundtrip() -> None:
    rel = index.relative_path(1_700_000_123.456, "event")
    assert rel == "2023/11/14/22/1523-456-event.mp4"
    assert index.parse_path(rel) == (pytest.approx(1_700_000_123.456), "event")
    assert index.parse_path("2023/11/14/22/notes.txt") is None
