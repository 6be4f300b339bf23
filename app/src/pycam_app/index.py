"""SQLite index of recordings and events (timeline queries), safe across power cuts.

Rows are inserted as "open" before a file is created and closed after it is complete, so start-up
recovery knows exactly which files may be partial. A corrupt database is moved aside and rebuilt from the
files (their paths carry start time and kind).
"""

from __future__ import annotations

import builtins
import logging
import re
import sqlite3
import threading
import time
from calendar import timegm
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,          -- relative to the recordings directory
    kind TEXT NOT NULL,                 -- event | manual | continuous
    stream TEXT NOT NULL,
    start REAL NOT NULL,                -- capture wall time of the first frame (Unix seconds)
    end REAL,
    duration REAL NOT NULL DEFAULT 0,
    frames INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    first_frame_no INTEGER,             -- main-stream frame counter of the first frame
    trigger_frame_no INTEGER,           -- frame counter of the triggering event, if any
    state TEXT NOT NULL DEFAULT 'open'  -- open | closed
);
CREATE INDEX IF NOT EXISTS recordings_start ON recordings(start);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    score REAL,
    frame_no INTEGER,
    recording_id INTEGER
);
CREATE INDEX IF NOT EXISTS events_start ON events(start);
"""

COLUMNS = (
    "id",
    "path",
    "kind",
    "stream",
    "start",
    "end",
    "duration",
    "frames",
    "bytes",
    "first_frame_no",
    "trigger_frame_no",
    "state",
)
EVENT_COLUMNS = ("id", "kind", "start", "end", "score", "frame_no", "recording_id")
_NAME = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{2})(\d{2})-(\d{3})-(event|manual|continuous)\.mp4$")


def relative_path(start: float, kind: str) -> str:
    """YYYY/MM/DD/HH/MMSS-mmm-kind.mp4 in UTC."""
    t = time.gmtime(start)
    ms = int((start % 1) * 1000)
    day = f"{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d}"
    return f"{day}/{t.tm_hour:02d}/{t.tm_min:02d}{t.tm_sec:02d}-{ms:03d}-{kind}.mp4"


def parse_path(rel: str) -> tuple[float, str] | None:
    m = _NAME.match(rel)
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups()[:7])
    return timegm((y, mo, d, h, mi, s, 0, 0, 0)) + ms / 1000, m.group(8)


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """(" WHERE a AND b", [values]) of the conditions whose value is given (not None); ("", []) for none."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    if not given:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in given), [v for _, v in given]


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.rebuilt = False
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            return db
        except sqlite3.DatabaseError as e:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("index %s is damaged (%s): moved to %s, rebuilding from the files", self.path, e, aside)
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.path) + suffix)
                if p.exists():
                    p.replace(Path(str(aside) + suffix))
            self.rebuilt = True
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # an acknowledged row survives a power cut
        # SQLite's page cache grows to 2 MB by default as the index does; the timeline queries use the
        # start-time indexes and need a fraction of that.
        db.execute("PRAGMA cache_size=-256")
        db.executescript(SCHEMA)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _rows(self, sql: str, args: tuple[Any, ...], cols: tuple[str, ...]) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    # -- recordings --
    def add(
        self,
        path: str,
        kind: str,
        stream: str,
        start: float,
        first_frame_no: int | None,
        trigger_frame_no: int | None = None,
    ) -> int:
        cur = self._exec(
            "INSERT INTO recordings (path, kind, stream, start, first_frame_no, trigger_frame_no) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (path, kind, stream, start, first_frame_no, trigger_frame_no),
        )
        return int(cur.lastrowid or 0)

    def close_recording(self, rec_id: int, end: float, duration: float, frames: int, size: int) -> None:
        self._exec(
            "UPDATE recordings SET end=?, duration=?, frames=?, bytes=?, state='closed' WHERE id=?",
            (end, duration, frames, size, rec_id),
        )

    def delete(self, rec_id: int) -> None:
        self._exec("DELETE FROM recordings WHERE id=?", (rec_id,))

    def get(self, rec_id: int) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {', '.join(COLUMNS)} FROM recordings WHERE id=?", (rec_id,), COLUMNS)
        return rows[0] if rows else None

    def list(
        self,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
        state: str | None = None,
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        where, args = _where(
            ("COALESCE(end, start) >= ?", start), ("start < ?", end), ("kind = ?", kind), ("state = ?", state)
        )
        order = "ASC" if oldest_first else "DESC"
        sql = f"SELECT {', '.join(COLUMNS)} FROM recordings{where} ORDER BY start {order}, id LIMIT ? OFFSET ?"
        return self._rows(sql, (*args, limit, offset), COLUMNS)

    def totals(self) -> tuple[int, int]:
        with self._lock:
            n, b = self._db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM recordings").fetchone()
        return int(n), int(b)

    def paths(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT path FROM recordings")}

    # -- events --
    def add_event(self, kind: str, start: float, score: float | None, frame_no: int | None) -> int:
        cur = self._exec(
            "INSERT INTO events (kind, start, score, frame_no) VALUES (?, ?, ?, ?)", (kind, start, score, frame_no)
        )
        return int(cur.lastrowid or 0)

    def end_event(self, event_id: int, end: float) -> None:
        self._exec("UPDATE events SET end=? WHERE id=?", (end, event_id))

    def link_event(self, event_id: int, rec_id: int) -> None:
        self._exec("UPDATE events SET recording_id=? WHERE id=?", (rec_id, event_id))

    def events(
        self, start: float | None = None, end: float | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[dict[str, Any]]:  # `list` is also a method of this class
        where, args = _where(("start >= ?", start), ("start < ?", end))
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{where} ORDER BY start DESC, id LIMIT ? OFFSET ?"
        return self._rows(sql, (*args, limit, offset), EVENT_COLUMNS)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM recordings")
            self._db.execute("DELETE FROM events")
