"""The self-test table (seed 002's, adapted per board): which tests apply, their limits and verdicts.

The device measures (usr/lib/pycam/factory-selftest); the station decides. A test for hardware that
board/<board>/board.yml's `hardware:` says the board lacks is "n/a" with the reason, never "pass".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycam.factory.config import Limits
from pycam.factory.db import TestResult


@dataclass(frozen=True)
class Spec:
    name: str
    what: str
    hardware: str = ""  # board.yml hardware key that must be present (truthy) for the test to apply


TABLE = (
    Spec("video", "a real camera frame: not black, not a flat field, not frozen", "camera"),
    Spec("tls", "the app serves HTTPS with the provisioned device certificate"),
    Spec("network", "throughput to the station, both directions", "network"),
    Spec("storage", "write (fsync) and read (caches dropped) speed of /data, data verified"),
    Spec("watchdog", "hardware watchdog present and fed by systemd"),
    Spec("firmware", "firmware version and the booted slot"),
    Spec("clock", "device clock against the station's"),
    Spec("audio", "sound card present", "audio"),
    Spec("button", "button input device present", "button"),
    Spec("ir", "IR illuminator present", "ir"),
    Spec("ptz", "pan/tilt motor driver present", "ptz"),
)
NEEDS_APP = {"video", "tls"}  # measured through the camera app, after its restart with the identity
ON_DEVICE = {"video", "tls", "network", "storage", "watchdog", "firmware", "audio", "button", "ir", "ptz"}


def applicable(hardware: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """(tests to run, {test: why not applicable})."""
    run, na = [], {}
    for spec in TABLE:
        if spec.hardware and not hardware.get(spec.hardware):
            na[spec.name] = f"board has no {spec.hardware} (board.yml hardware.{spec.hardware}: " \
                            f"{hardware.get(spec.hardware)!r})"
        else:
            run.append(spec.name)
    return run, na


def device_spec(tests: list[str], limits: Limits, station_url: str, user: str, password: str,
                frames_key: str = "") -> str:
    """The device's instructions; with frames_key it uploads its snapshots to the station instead of
    measuring them itself."""
    doc = {"tests": [t for t in tests if t in ON_DEVICE], "station": station_url, "user": user,
           "password": password, "net_bytes": limits.network_bytes, "disk_mb": limits.storage_mb,
           "frames_key": frames_key}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _verdict(ok: bool) -> str:
    return "pass" if ok else "fail"


Check = Callable[[dict[str, Any], Limits, dict[str, Any]], tuple[bool, str, str]]


def _video(v: dict[str, Any], lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    ok = (v["mean_luma"] >= lim.video_min_mean_luma and v["stddev_luma"] >= lim.video_min_stddev_luma
          and v["changed_pixels_pct"] >= lim.video_min_changed_pct and v["frames_advanced"] > 0)
    return ok, (f"mean luma {v['mean_luma']}, stddev {v['stddev_luma']}, {v['changed_pixels_pct']}% pixels "
                f"changed, {v['frames_advanced']} frames advanced"), \
        (f"mean >= {lim.video_min_mean_luma}, stddev >= {lim.video_min_stddev_luma}, "
         f"changed >= {lim.video_min_changed_pct}%, frames > 0")


def _tls(v: Any, lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    want = ctx.get("cert_sha256", "")
    return v == want, f"sha256 {str(v)[:16]}…", f"= issued certificate {want[:16]}…"


def _network(v: dict[str, Any], lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    low = min(v["upload_mbit_s"], v["download_mbit_s"])
    return low >= lim.network_min_mbit_s, f"up {v['upload_mbit_s']} / down {v['download_mbit_s']} Mbit/s", \
        f">= {lim.network_min_mbit_s} Mbit/s each way"


def _storage(v: dict[str, Any], lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    low = min(v["write_mb_s"], v["read_mb_s"])
    return low >= lim.storage_min_mb_s and bool(v["verified"]), \
        f"write {v['write_mb_s']} / read {v['read_mb_s']} MB/s, data {'ok' if v['verified'] else 'CORRUPT'}", \
        f">= {lim.storage_min_mb_s} MB/s each way, data read back intact"


def _watchdog(v: dict[str, Any], lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    fed = v["runtime_watchdog"] not in ("", "0", "infinity")
    return bool(v["device"]) and fed, f"{v['identity'] or 'no device'}, RuntimeWatchdog {v['runtime_watchdog']}", \
        "device present, RuntimeWatchdogUSec set"


def _firmware(v: dict[str, Any], lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
    want = lim.firmware_version or ctx.get("version", "")
    return v["version"] == want and v["booted"] in ("A", "B"), f"{v['version']} booted from {v['booted']}", \
        f"version {want}, booted slot A or B"


def _present(what: str) -> Check:
    def check(v: Any, lim: Limits, ctx: dict[str, Any]) -> tuple[bool, str, str]:
        return int(v) >= 1, f"{v} {what}", f">= 1 {what}"

    return check


CHECKS: dict[str, Check] = {
    "video": _video, "tls": _tls, "network": _network, "storage": _storage, "watchdog": _watchdog,
    "firmware": _firmware, "audio": _present("sound cards"), "button": _present("key inputs"),
    "ir": _present("IR LEDs"), "ptz": _present("motor drivers"),
}


def evaluate(measured: dict[str, dict[str, Any]], na: dict[str, str], limits: Limits, ctx: dict[str, Any],
             clock_skew_s: float | None) -> list[TestResult]:
    out: list[TestResult] = []
    for spec in TABLE:
        name = spec.name
        if name in na:
            out.append(TestResult(name, "n/a", "", "", "", na[name]))
            continue
        if name == "clock":
            if clock_skew_s is None:
                continue
            ok = abs(clock_skew_s) <= limits.clock_max_skew_s
            out.append(TestResult(name, _verdict(ok), f"{clock_skew_s:+.2f}", f"|skew| <= {limits.clock_max_skew_s}",
                                  "s", spec.what))
            continue
        m = measured.get(name)
        if m is None:
            out.append(TestResult(name, "fail", "", "", "", "not measured (device self-test did not report it)"))
            continue
        if m.get("error"):
            out.append(TestResult(name, "fail", "", "", m.get("unit", ""), f"error: {m['error']}"))
            continue
        try:
            ok, value, limit = CHECKS[name](m["value"], limits, ctx)
        except (KeyError, TypeError, ValueError) as e:
            out.append(TestResult(name, "fail", json.dumps(m.get("value")), "", "", f"unexpected measurement: {e}"))
            continue
        out.append(TestResult(name, _verdict(ok), value, limit, m.get("unit", ""), m.get("detail", spec.what)))
    return out
