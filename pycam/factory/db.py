"""The station database: allocations (DID, MAC), runs, self-test results and the audit log.

SQLite (a file) for a single station, PostgreSQL (a postgresql:// URL) for a line with several.
Allocation takes the next DID and MAC from one counter row each, inside one transaction that holds
the counter rows' write lock (PostgreSQL: the row lock of UPDATE ... RETURNING; SQLite: BEGIN
IMMEDIATE), and inserts the allocation under UNIQUE constraints on DID and MAC: two stations can
never be handed the same DID or MAC, and a counter moved back by hand is caught by the constraints.
An allocation is `allocated` while its device is being provisioned, then `provisioned`, or `void`
when provisioning failed after the identity was offered to the device (never handed out again).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pycam.errors import PycamError
from pycam.factory.ids import DidFormat, MacBlock, mac_str

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, next BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS allocations (
        did TEXT PRIMARY KEY, seq BIGINT NOT NULL, mac TEXT NOT NULL UNIQUE, mac_index BIGINT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('allocated', 'provisioned', 'void')),
        station TEXT NOT NULL, hw_id TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
        allocated_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id {serial} PRIMARY KEY, did TEXT NOT NULL DEFAULT '', station TEXT NOT NULL, hw_id TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL, finished_at TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT 'running', failed_step TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '', seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
        steps TEXT NOT NULL DEFAULT '{{}}', report TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS results (
        run_id BIGINT NOT NULL REFERENCES runs(id), test TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'n/a')),
        value TEXT NOT NULL, limit_text TEXT NOT NULL, unit TEXT NOT NULL, detail TEXT NOT NULL,
        PRIMARY KEY (run_id, test))""",
    """CREATE TABLE IF NOT EXISTS audit (
        id {serial} PRIMARY KEY, at TEXT NOT NULL, station TEXT NOT NULL, operator TEXT NOT NULL,
        action TEXT NOT NULL, did TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '')""",
]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Allocation:
    did: str
    seq: int
    mac: str
    mac_index: int
    status: str
    station: str
    hw_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    test: str
    verdict: str  # pass | fail | n/a
    value: str
    limit: str
    unit: str = ""
    detail: str = ""


class StationDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            try:
                import psycopg
            except ImportError as e:
                raise PycamError("PostgreSQL station database needs psycopg", "run: scripts/setup-host") from e
            try:
                self.conn: Any = psycopg.connect(url, autocommit=True)
            except psycopg.OperationalError as e:
                raise PycamError(f"cannot connect to the station database {url}: {e}".strip(),
                                 "check station.database in the line configuration and that the server runs") from e
            self._errors: tuple[type[Exception], ...] = (psycopg.errors.UniqueViolation,)
        else:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), nothing is implicit
            self.conn = sqlite3.connect(url, timeout=60, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._errors = (sqlite3.IntegrityError,)
        serial = "BIGSERIAL" if self.postgres else "INTEGER"
        with self.transaction():
            for stmt in SCHEMA:
                self._run(stmt.format(serial=serial))

    def close(self) -> None:
        self.conn.close()

    # -- plumbing: one SQL text for both, '?' placeholders --
    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, tuple(params))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._run(sql, params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.postgres:
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")  # the write lock now: allocations are serialised
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- allocation --
    @staticmethod
    def _counters(did: DidFormat, mac: MacBlock) -> tuple[str, str]:
        return f"did:{did.prefix}-{did.line}", f"mac:{mac_str(mac.start)}/{mac.count}"

    def allocate(self, did: DidFormat, mac: MacBlock, station: str, hw_id: str = "") -> Allocation:
        did_counter, mac_counter = self._counters(did, mac)
        for attempt in range(5):
            ident, address = "?", "?"
            try:
                with self.transaction():
                    self._run("INSERT INTO counters (name, next) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                              (did_counter, did.first))
                    self._run("INSERT INTO counters (name, next) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                              (mac_counter,))
                    seq = int(self._rows("UPDATE counters SET next = next + 1 WHERE name = ? RETURNING next - 1",
                                         (did_counter,))[0][0])
                    index = int(self._rows("UPDATE counters SET next = next + 1 WHERE name = ? RETURNING next - 1",
                                           (mac_counter,))[0][0])
                    try:
                        address = mac.address(index)
                        ident = did.make(seq)
                    except (IndexError, ValueError) as e:
                        raise PycamError(str(e), "configure a new block in factory/line.yml (mac / did)") from e
                    stamp = now()
                    self._run("INSERT INTO allocations (did, seq, mac, mac_index, status, station, hw_id, "
                              "allocated_at, updated_at) VALUES (?, ?, ?, ?, 'allocated', ?, ?, ?, ?)",
                              (ident, seq, address, index, station, hw_id, stamp, stamp))
                return Allocation(ident, seq, address, index, "allocated", station, hw_id)
            except self._errors as e:
                raise PycamError(
                    f"duplicate identity refused: DID {ident} or MAC {address} is already allocated "
                    f"({str(e).strip().splitlines()[0]})",
                    "the line's counters are behind its allocations (a restored or second database?): "
                    "give every station of a line the same PostgreSQL database",
                ) from e
            except sqlite3.OperationalError as e:  # SQLite busy past its timeout under heavy contention
                if "locked" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def set_status(self, did: str, status: str, reason: str = "", hw_id: str | None = None) -> None:
        with self.transaction():
            cur = self._run(
                "UPDATE allocations SET status = ?, reason = ?, updated_at = ?, hw_id = COALESCE(?, hw_id) "
                "WHERE did = ?", (status, reason, now(), hw_id, did))
            if cur.rowcount != 1:
                raise PycamError(f"no allocation {did} in the station database")

    def allocation(self, did: str) -> Allocation | None:
        rows = self._rows("SELECT did, seq, mac, mac_index, status, station, hw_id, reason FROM allocations "
                          "WHERE did = ?", (did,))
        return Allocation(*rows[0]) if rows else None

    def allocations(self) -> list[Allocation]:
        rows = self._rows("SELECT did, seq, mac, mac_index, status, station, hw_id, reason FROM allocations "
                          "ORDER BY seq")
        return [Allocation(*r) for r in rows]

    # -- runs, results, audit --
    def start_run(self, station: str) -> int:
        with self.transaction():
            return int(self._rows("INSERT INTO runs (station, started_at) VALUES (?, ?) RETURNING id",
                                  (station, now()))[0][0])

    def finish_run(self, run_id: int, *, did: str, hw_id: str, outcome: str, failed_step: str, error: str,
                   seconds: float, steps: dict[str, float], report: str, results: list[TestResult]) -> None:
        with self.transaction():
            self._run("UPDATE runs SET did = ?, hw_id = ?, finished_at = ?, outcome = ?, failed_step = ?, error = ?, "
                      "seconds = ?, steps = ?, report = ? WHERE id = ?",
                      (did, hw_id, now(), outcome, failed_step, error, seconds, json.dumps(steps), report, run_id))
            for r in results:
                self._run("INSERT INTO results (run_id, test, verdict, value, limit_text, unit, detail) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, r.test, r.verdict, r.value, r.limit, r.unit,
                                                           r.detail))

    def audit(self, station: str, operator: str, action: str, did: str = "", detail: str = "") -> None:
        with self.transaction():
            self._run("INSERT INTO audit (at, station, operator, action, did, detail) VALUES (?, ?, ?, ?, ?, ?)",
                      (now(), station, operator, action, did, detail))

    def audit_log(self) -> list[dict[str, str]]:
        rows = self._rows("SELECT at, station, operator, action, did, detail FROM audit ORDER BY id")
        return [dict(zip(("at", "station", "operator", "action", "did", "detail"), r, strict=True)) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        keys = ("id", "did", "station", "hw_id", "started_at", "finished_at", "outcome", "failed_step", "error",
                "seconds", "steps", "report")
        rows = self._rows(f"SELECT {', '.join(keys)} FROM runs ORDER BY id")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def results(self, run_id: int) -> list[TestResult]:
        rows = self._rows("SELECT test, verdict, value, limit_text, unit, detail FROM results WHERE run_id = ? "
                          "ORDER BY test", (run_id,))
        return [TestResult(*r) for r in rows]
