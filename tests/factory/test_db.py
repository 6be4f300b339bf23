"""Station database: allocation never hands out a DID or MAC twice, also with parallel stations.

PostgreSQL: a real server started by the test setup (tests/factory/pg.py); stations are separate
processes, each with its own connection, allocating at the same time.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from pycam.errors import PycamError
from pycam.factory.db import StationDB, TestResult
from pycam.factory.ids import DidFormat, MacBlock

DID = DidFormat(prefix="PCAM", line="01", digits=8, first=1)
MAC = MacBlock.parse({"block": "02:50:43:00:00:00", "count": 1000})


def _station(url: str, name: str, count: int, start: mp.synchronize.Event, queue: mp.Queue) -> None:
    db = StationDB(url)
    start.wait()
    got = [db.allocate(DID, MAC, name, hw_id=f"{name}-{i}") for i in range(count)]
    for a in got:
        db.set_status(a.did, "provisioned")
    queue.put([(a.did, a.mac, a.seq, a.mac_index) for a in got])
    db.close()


def run_parallel_stations(url: str, stations: int, each: int) -> list[tuple[str, str, int, int]]:
    ctx = mp.get_context("spawn")
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_station, args=(url, f"station-{i}", each, start, queue)) for i in range(stations)]
    for p in procs:
        p.start()
    StationDB(url).close()  # schema exists before the race (each station also creates it if missing)
    start.set()
    out = [row for _ in procs for row in queue.get(timeout=300)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out


def check_unique(rows: list[tuple[str, str, int, int]], total: int) -> None:
    dids = [r[0] for r in rows]
    macs = [r[1] for r in rows]
    assert len(rows) == total
    assert len(set(dids)) == total, "a DID was handed out twice"
    assert len(set(macs)) == total, "a MAC was handed out twice"
    assert sorted(r[2] for r in rows) == list(range(DID.first, DID.first + total))  # no gaps either
    assert sorted(r[3] for r in rows) == list(range(total))


def test_parallel_stations_postgresql(pg_url: str) -> None:
    rows = run_parallel_stations(pg_url, stations=6, each=40)
    check_unique(rows, 240)
    db = StationDB(pg_url)
    assert {a.status for a in db.allocations()} == {"provisioned"}
    assert len(db.allocations()) == 240


def test_parallel_stations_sqlite(tmp_path: Path) -> None:
    rows = run_parallel_stations(str(tmp_path / "station.db"), stations=4, each=25)
    check_unique(rows, 100)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_duplicate_did_refused_and_nothing_half_allocated(backend: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    url = str(tmp_path / "s.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    db = StationDB(url)
    fmt = DidFormat(prefix="DUP" + backend[0].upper(), line="02", digits=6, first=5)
    first = db.allocate(fmt, MAC, "station-1")
    db.allocate(fmt, MAC, "station-1")
    # a restored backup (or a second database for the same line) moves the counter back
    db.conn.execute(f"UPDATE counters SET next = 5 WHERE name = 'did:{fmt.prefix}-02'")
    before = len(db.allocations())
    with pytest.raises(PycamError, match="duplicate identity refused") as e:
        db.allocate(fmt, MAC, "station-2")
    assert first.did in str(e.value) or "did" in str(e.value).lower()
    assert len(db.allocations()) == before  # the failed allocation left nothing behind
    assert db.allocation(first.did) is not None and db.allocation(first.did).station == "station-1"


def test_exhausted_mac_block_is_an_error(tmp_path: Path) -> None:
    db = StationDB(str(tmp_path / "s.db"))
    small = MacBlock.parse({"block": "02:00:00:00:00:00", "count": 2})
    db.allocate(DID, small, "s")
    db.allocate(DID, small, "s")
    with pytest.raises(PycamError, match="MAC block exhausted"):
        db.allocate(DID, small, "s")
    assert len(db.allocations()) == 2


def test_runs_results_and_audit(tmp_path: Path) -> None:
    db = StationDB(str(tmp_path / "s.db"))
    a = db.allocate(DID, MAC, "s", hw_id="hw1")
    db.set_status(a.did, "void", "write: device lost")
    run = db.start_run("s")
    db.finish_run(run, did=a.did, hw_id="hw1", outcome="fail", failed_step="selftest", error="", seconds=12.5,
                  steps={"write": 1.0}, report="/x",
                  results=[TestResult("video", "pass", "ok", ">0"), TestResult("ptz", "n/a", "", "", "", "none")])
    db.audit("s", "alice", "reprovision", a.did, "new CA")
    assert db.allocation(a.did).status == "void" and db.allocation(a.did).reason == "write: device lost"
    assert [r.verdict for r in db.results(run)] == ["n/a", "pass"]
    assert db.runs()[0]["outcome"] == "fail"
    assert db.audit_log()[0]["operator"] == "alice"
    with pytest.raises(PycamError, match="no allocation"):
        db.set_status("PCAM-01-99999999-0", "void")
