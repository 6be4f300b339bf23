"""Per-device report (JSON + HTML), the QR label (SVG) and the line summary (CSV + HTML).

Layout under station.output:
  devices/<DID or device-run>/report.json, report.html, label.svg
  summary.csv, summary.html   (pycam factory summary: yield, failures by test, void allocations, audit)
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno

from pycam.factory.config import LineConfig
from pycam.factory.db import StationDB, now
from pycam.factory.selftest import TABLE

if TYPE_CHECKING:
    from pycam.factory.station import Outcome

STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#eee}
.pass{background:#d8f5d0}.fail,.error,.refused{background:#f8d0d0}.na{background:#eee;color:#666}
.big{font-size:1.6em;font-weight:bold}"""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def qr_payload(did: str, mac: str, model: str) -> str:
    return f"PYCAM;DID:{did};MAC:{mac};MODEL:{model};"


def label_svg(did: str, mac: str, model: str, user: str, password: str) -> str:
    """A printable label: QR code (DID, MAC, model) and the same in text, with the initial admin login."""
    qr = segno.make(qr_payload(did, mac, model), error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
    inner = buf.getvalue().decode()
    width, height = qr.symbol_size(scale=4, border=2)
    esc = html.escape
    lines = [model, f"DID {did}", f"MAC {mac}", f"user {user} / {password}" if password else ""]
    text = "".join(f'<text x="{width + 10}" y="{22 + 20 * i}" font-family="monospace" font-size="14">{esc(t)}</text>'
                   for i, t in enumerate(lines) if t)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 330}" height="{max(height, 100)}">'
            f'<rect width="100%" height="100%" fill="white"/>{inner}{text}</svg>\n')


def device_report(line: LineConfig, out: Outcome) -> Path:
    name = out.did or f"{_safe(out.device)}-{now().replace(':', '')}"
    directory = line.output / "devices" / name
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "device": out.device, "did": out.did, "mac": out.mac, "hw_id": out.hw_id, "station": line.station,
        "model": line.model, "outcome": out.outcome, "failed_step": out.failed_step, "error": out.error,
        "seconds": out.seconds, "steps": out.steps, "at": now(), "stale_before": out.stale,
        "results": [r.__dict__ for r in out.results],
    }
    (directory / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    label = ""
    if out.did and out.outcome in ("pass", "fail"):
        label = label_svg(out.did, out.mac, line.model, line.admin_user, out.admin_password)
        (directory / "label.svg").write_text(label)
    snapshot = ""
    if out.snapshot:
        (directory / "snapshot.jpg").write_bytes(out.snapshot)
        snapshot = '<h2>Camera</h2><img src="snapshot.jpg" alt="the video self-test\'s snapshot">'
    esc = html.escape
    rows = "".join(
        f'<tr class="{r.verdict.replace("/", "")}"><td>{esc(r.test)}</td><td>{esc(r.verdict)}</td>'
        f"<td>{esc(r.value)} {esc(r.unit)}</td><td>{esc(r.limit)}</td><td>{esc(r.detail)}</td></tr>"
        for r in out.results)
    steps = "".join(f"<tr><td>{esc(k)}</td><td>{v if isinstance(v, int | float) else ''} s</td></tr>"
                    for k, v in out.steps.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(out.did or out.device)}</title>
<style>{STYLE}</style></head><body>
<h1>{esc(line.model)} {esc(out.did or '(no identity)')}</h1>
<p class="big {esc(out.outcome)}">{esc(out.outcome.upper())}</p>
<table><tr><th>DID</th><td>{esc(out.did)}</td></tr><tr><th>MAC</th><td>{esc(out.mac)}</td></tr>
<tr><th>hardware id</th><td>{esc(out.hw_id)}</td></tr><tr><th>station</th><td>{esc(line.station)}</td></tr>
<tr><th>time</th><td>{out.seconds} s</td></tr>
<tr><th>failed step</th><td>{esc(out.failed_step)} {esc(out.error)}</td></tr></table>
<h2>Self-test</h2><table><tr><th>test</th><th>verdict</th><th>measured</th><th>limit</th><th>detail</th></tr>{rows}</table>
<h2>Steps</h2><table>{steps}</table>
{snapshot}{label}</body></html>
"""
    (directory / "report.html").write_text(page)
    return directory


def summary(line: LineConfig, db: StationDB) -> tuple[Path, Path]:
    """Line summary from the station database: CSV (one row per run) and an HTML page."""
    runs = db.runs()
    tests = [spec.name for spec in TABLE]
    per_run = {r["id"]: {t.test: t for t in db.results(r["id"])} for r in runs}
    line.output.mkdir(parents=True, exist_ok=True)
    csv_path = line.output / "summary.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "did", "station", "hw_id", "started_at", "outcome", "failed_step", "error", "seconds",
                    *tests])
        for r in runs:
            res = per_run[r["id"]]
            w.writerow([r["id"], r["did"], r["station"], r["hw_id"], r["started_at"], r["outcome"], r["failed_step"],
                        r["error"], r["seconds"], *[res[t].verdict if t in res else "" for t in tests]])
    first_pass: Counter[str] = Counter()
    seen: set[str] = set()  # first-pass yield counts devices (by hardware id), each by its first run
    for r in runs:
        key = r["hw_id"] or f"run-{r['id']}"
        if key not in seen:
            seen.add(key)
            first_pass[r["outcome"]] += 1
    total = len(seen)
    passed = sum(1 for r in runs if r["outcome"] == "pass")
    fails = Counter(t.test for res in per_run.values() for t in res.values() if t.verdict == "fail")
    steps = Counter(r["failed_step"] for r in runs if r["outcome"] in ("error", "refused"))
    void = [a for a in db.allocations() if a.status == "void"]
    allocs = Counter(a.status for a in db.allocations())
    y = f"{100 * first_pass['pass'] / total:.1f}%" if total else "-"
    overview = _table(["", ""], [["devices (by hardware id)", total], ["first-pass yield", y],
                                 ["runs", f"{len(runs)} ({passed} passed)"],
                                 ["allocations", ", ".join(f"{k}: {v}" for k, v in sorted(allocs.items())) or "none"]])
    run_rows = [[r["id"], r["did"], r["station"], r["outcome"], r["failed_step"], r["seconds"], r["error"]]
                for r in runs]
    audit_keys = ("at", "station", "operator", "action", "did", "detail")
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Line summary {html.escape(line.station)}</title>'
        f"<style>{STYLE}</style></head><body><h1>Line summary</h1>"
        f"<p>{html.escape(now())}, database {html.escape(_redact(db.url))}</p>{overview}"
        f"<h2>Self-test failures by test</h2>{_table(['test', 'failures'], fails.most_common())}"
        f"<h2>Provisioning errors by step</h2>{_table(['step', 'runs'], steps.most_common())}"
        "<h2>Void allocations (never reused)</h2>"
        f"{_table(['DID', 'MAC', 'station', 'reason'], [[a.did, a.mac, a.station, a.reason] for a in void])}"
        f"<h2>Runs</h2>{_table(['run', 'DID', 'station', 'outcome', 'step', 's', 'error'], run_rows, 3)}"
        f"<h2>Audit</h2>{_table(list(audit_keys), [[a[k] for k in audit_keys] for a in db.audit_log()])}"
        "</body></html>\n"
    )
    html_path = line.output / "summary.html"
    html_path.write_text(page)
    return csv_path, html_path


def _table(head: list[str], rows: Any, css_col: int | None = None) -> str:
    """An HTML table; css_col names the column whose value is also the row's CSS class (outcome colours)."""
    esc = html.escape
    body = "".join(
        (f'<tr class="{esc(str(r[css_col]))}">' if css_col is not None else "<tr>")
        + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        body = f'<tr><td colspan="{len(head)}">none</td></tr>'
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + body + "</table>"


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
