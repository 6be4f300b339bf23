"""Small parts in isolation: sd_notify, health probe, auth, device model, motion, ring buffer, backends."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import small_config
from pycam_app import auth, healthprobe, motion, sdnotify, spec
from pycam_app.capture import picam, select
from pycam_app.capture.synthetic import SyntheticSource
from pycam_app.identity import Identity
from pycam_app.streams import Stream

APP = Path(__file__).resolve().parents[2] / "app"


# -- sd_notify --
def test_sdnotify_sends_datagrams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sdnotify.notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sdnotify.notify("READY=1")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval() is None


# -- pycam-health --
class FakeHealth(BaseHTTPRequestHandler):
    frames = 0

    def do_GET(self) -> None:
        FakeHealth.frames += self.server.step  # type: ignore[attr-defined]
        body = json.dumps(
            {
                "status": "ok",
                "frames": FakeHealth.frames,
                "first_frame_boottime_s": 1.0,
                "encoder": "libx264",
                "source": "synthetic",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(step: int) -> tuple[HTTPServer, str]:
    srv = HTTPServer(("127.0.0.1", 0), FakeHealth)
    srv.step = step  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_port}"


def test_health_probe_waits_for_advancing_frames(capsys: pytest.CaptureFixture[str]) -> None:
    srv, url = serve(step=1)
    try:
        assert healthprobe.main(["--url", url, "--wait", "5"]) == 0
        assert "frames flowing" in capsys.readouterr().out
        assert healthprobe.main(["--url", url]) == 0
        assert json.loads(capsys.readouterr().out)["encoder"] == "libx264"
    finally:
        srv.shutdown()


def test_health_probe_fails_when_frames_stall(capsys: pytest.CaptureFixture[str]) -> None:
    srv, url = serve(step=0)
    try:
        assert healthprobe.main(["--url", url, "--wait", "1.2"]) == 1
        assert "frame counter stuck" in capsys.readouterr().err
    finally:
        srv.shutdown()


def test_health_probe_fails_without_service(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert healthprobe.main(["--url", f"http://127.0.0.1:{port}", "--wait", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "FAILED after 0.5 s" in err and "unreachable" in err


def test_health_probe_finds_the_service_from_the_config(tmp_path: Path) -> None:
    srv, url = serve(step=1)
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / "endpoint.json").write_text(json.dumps({"url": url}))
        cfg = tmp_path / "app.toml"
        cfg.write_text(f'runtime_dir = "{run}"\n')
        assert healthprobe.main(["--config", str(cfg), "--wait", "3"]) == 0
    finally:
        srv.shutdown()


# -- auth --
def test_password_hash_roundtrip() -> None:
    h = auth.hash_password("secret-pw", 1000)
    assert h.startswith("pbkdf2_sha256$1000$")
    assert auth.verify_password("secret-pw", h) and not auth.verify_password("secret-px", h)
    assert not auth.verify_password("x", "garbage") and not auth.verify_password("x", "md5$1$a$b")


def test_pbkdf2_without_openssl_matches_openssl(monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes
    rfc = bytes.fromhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
    cases = [(b"passwd", b"salt", 1), (b"pw-12345678", b"0123456789abcdef", 1000), (b"x" * 100, b"s", 7)]
    with_openssl = [auth.pbkdf2_sha256(*c) for c in cases]
    monkeypatch.setitem(sys.modules, "_hashlib", None)  # as in a plain-HTTP service (cli._lean_process)
    assert [auth.pbkdf2_sha256(*c) for c in cases] == with_openssl
    assert with_openssl[0] == rfc
    assert with_openssl == [hashlib.pbkdf2_hmac("sha256", *c) for c in cases]


def test_credentials_sources(tmp_path: Path) -> None:
    plain = auth.load_credentials(tmp_path / "a", Identity(serial="S", admin_password="label-pw"), "admin")
    assert plain.source == "factory" and auth.verify_password("label-pw", plain.password_hash)
    named = auth.load_credentials(tmp_path / "b", Identity(admin_user="op", admin_password_hash="pbkdf2..."), "x")
    assert (named.username, named.password_hash) == ("op", "pbkdf2...")
    gen = auth.load_credentials(tmp_path / "c", Identity(), "admin")
    assert gen.source == "generated" and (tmp_path / "c" / "initial-password").exists()
    again = auth.load_credentials(tmp_path / "c", Identity(), "admin")
    assert again.password_hash == gen.password_hash  # generated once, then kept


def test_rate_limiter_locks_and_expires() -> None:
    rl = auth.RateLimiter(max_failures=3, lockout_s=10)
    for t in (0, 1, 2):
        assert rl.retry_after("a", now=t) == 0
        rl.failure("a", now=t)
    assert rl.retry_after("a", now=3) == pytest.approx(7)
    assert rl.retry_after("b", now=3) == 0
    assert rl.retry_after("a", now=10.5) == 0


def test_sessions_expire(tmp_path: Path) -> None:
    creds = auth.Credentials("admin", auth.hash_password("pw-12345678", 1000), "data")
    a = auth.Authenticator(tmp_path, creds, session_ttl_s=0.05)
    tok = a.new_session()
    assert a.session_valid(tok)
    time.sleep(0.1)
    assert not a.session_valid(tok)
    assert a.check("admin", "pw-12345678") and not a.check("root", "pw-12345678")


# -- device model --
def test_spec_validation_messages() -> None:
    p = spec.DeviceModel.lookup("camera-control", "night-shot")
    with pytest.raises(spec.SpecError, match="expected one of auto, on, off"):
        p.validate("dark")
    with pytest.raises(spec.SpecError, match="inside the frame"):
        spec.validate_areas([{"x": 0.9, "y": 0, "w": 0.2, "h": 0.1}])
    assert spec.validate_areas([{"x": 0, "y": 0, "w": 1, "h": 1}]) == [{"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0}]
    with pytest.raises(KeyError):
        spec.DeviceModel.lookup("camera-control", "zoom")
    fmt = spec.SERVICE_MAP["storage"].action("format")
    assert fmt is not None
    with pytest.raises(spec.SpecError, match="required"):
        spec.validate_params(fmt, {})
    with pytest.raises(spec.SpecError, match="unknown parameter"):
        spec.validate_params(fmt, {"confirm": True, "force": 1})


def test_settings_file_corruption_falls_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"camera-control.night-shot": "on", "camera-control.on": "maybe", "bogus.x": 1}')
    m = spec.DeviceModel(path)
    assert m.values["camera-control.night-shot"] == "on" and m.values["camera-control.on"] is True
    path.write_text("{not json")
    assert spec.DeviceModel(path).values == spec.DEFAULTS


# -- motion --
def run_detector(src: SyntheticSource, det: motion.MotionDetector, frames: range, t0: float = 0.0) -> None:
    for i in frames:
        det.feed(src.make_frame(i, 0), t0 + i * 0.2, 0.0, i)


def test_motion_start_and_end_events() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    src = SyntheticSource(320, 180, 5)
    src.open()
    det = motion.MotionDetector(
        fps=5, cooldown_s=1.0, sink=lambda p, d: events.append((p, d)), exclude_top=src.motion_exclude_top
    )
    run_detector(src, det, range(1, 10))
    assert events == [], "static picture (changing stamp excluded) must not trigger"
    src.moving = True
    run_detector(src, det, range(10, 14))
    assert [p for p, _ in events] == ["start"] and events[0][1]["frame"] == 10  # the box appears
    src.moving = False
    run_detector(src, det, range(14, 30))
    assert [p for p, _ in events] == ["start", "end"]


def test_motion_zone_outside_the_box_sees_nothing() -> None:
    events: list[str] = []
    src = SyntheticSource(320, 180, 5)
    src.open()
    det = motion.MotionDetector(5, 1.0, lambda p, d: events.append(p), src.motion_exclude_top)
    det.configure(True, "high", [{"x": 0, "y": 0.8, "w": 1, "h": 0.2}])  # bottom strip; the box moves mid-frame
    src.moving = True
    run_detector(src, det, range(1, 12))
    assert events == []
    det.configure(False, "high", [])
    run_detector(src, det, range(12, 20))
    assert events == []


def test_zone_mask() -> None:
    assert len(motion.zone_mask([])) == motion.GRID_W * motion.GRID_H
    half = motion.zone_mask([{"x": 0, "y": 0, "w": 0.5, "h": 1}])
    assert len(half) == motion.GRID_W * motion.GRID_H // 2
    assert min(motion.zone_mask([], exclude_top=0.5)) == motion.GRID_W * motion.GRID_H // 2


# -- ring buffer --
def test_ring_keeps_whole_gops_and_since() -> None:
    s = Stream("main", 320, 180, 10, ring_s=1.0)
    for i in range(40):  # keyframe every 5 packets, 0.1 s apart
        s.publish(b"\0\0\1\x65" if i % 5 == 0 else b"\0\0\1\x41", i * 9000, i % 5 == 0, i * 0.1, i * 0.1, i + 1)
    assert s.ring[0].key
    span = (s.ring[-1].pts - s.ring[0].pts) / 90000
    assert 1.0 <= span < 1.5
    got = s.since(3.27, upto_seq=38)
    assert got[0].key and got[0].mono == pytest.approx(3.0) and got[-1].seq == 38
    assert s.since(0.0, upto_seq=40)[0] is s.ring[0]  # older than the ring: its oldest keyframe
    seen: list[int] = []
    unsub = s.subscribe_from_keyframe(lambda p: seen.append(p.seq))
    assert seen == [36, 37, 38, 39, 40]
    s.publish(b"\0\0\1\x41", 41 * 9000, False, 4.1, 4.1, 41)
    unsub()
    s.publish(b"\0\0\1\x41", 42 * 9000, False, 4.2, 4.2, 42)
    assert seen[-1] == 41


def test_only_the_recorded_stream_keeps_the_pre_roll(tmp_path: Path) -> None:
    from pycam_app.pipeline import Pipeline

    for recorded, other in (("main", "sub"), ("sub", "main")):
        cfg = small_config(tmp_path, recording={"pre_roll_s": 6.0, "stream": recorded})
        p = Pipeline(cfg, SyntheticSource(320, 180, 10))
        # The clip starts at the keyframe at or before (event - pre-roll): one GOP more, and a second for the
        # recorder to take the event.
        assert p.streams[recorded].ring_s == 6.0 + getattr(cfg, recorded).keyframe_interval + 1
        # A live viewer joins at the latest keyframe: one GOP and a margin are enough.
        assert p.streams[other].ring_s == getattr(cfg, other).keyframe_interval + 1


# -- capture backends --
def test_auto_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picam, "available", lambda: False)
    cfg = small_config(tmp_path, capture={"source": "auto", "device": str(tmp_path / "video0")})
    assert select.choose(cfg) == "synthetic"
    (tmp_path / "video0").write_text("")
    assert select.choose(cfg) == "v4l2"
    monkeypatch.setattr(picam, "available", lambda: True)
    assert select.choose(cfg) == "picamera2"


class FakePicamera2:
    """The subset of picamera2.Picamera2 the backend uses, returning YUV420 arrays like the real one."""

    calls: ClassVar[list[str]] = []

    @staticmethod
    def global_camera_info() -> list[dict[str, str]]:
        return [{"Model": "imx708"}]

    def create_video_configuration(
        self, main: dict[str, Any], controls: dict[str, Any], buffer_count: int
    ) -> dict[str, Any]:
        self.calls.append(f"config {main['size']} {main['format']} {controls['FrameRate']}")
        return {"main": dict(main)}

    def align_configuration(self, config: dict[str, Any]) -> None:
        self.size = config["main"]["size"]

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append("configure")

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str) -> Any:
        import numpy as np

        w, h = self.size
        a = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
        a[:h] = 200
        return a

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


def test_picamera2_backend_against_its_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numpy", reason="the fake camera returns numpy arrays like picamera2 does")
    fake = types.ModuleType("picamera2")
    fake.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", fake)
    assert picam.available()
    src = picam.Picamera2Source(320, 180, 10)
    src.open()
    cap = next(iter(src.frames()))
    src.close()
    assert (cap.frame.width, cap.frame.height, cap.frame.format.name) == (320, 180, "yuv420p")
    assert bytes(cap.frame.planes[0])[0] == 200
    assert FakePicamera2.calls[:3] == ["config (320, 180) YUV420 10.0", "configure", "start"]
    assert FakePicamera2.calls[-2:] == ["stop", "close"]


def test_picamera2_absent_means_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails
    assert not picam.available()
    with pytest.raises(Exception, match="picamera2 is not installed"):
        picam.Picamera2Source(320, 180, 10).open()


def test_real_picamera2_camera() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pytest.skip("picamera2 is not installed here (only on Raspberry Pi OS); the fake above covers the API")
    if not picam.available():
        pytest.skip("picamera2 is installed but no camera is attached")
    src = picam.Picamera2Source(640, 360, 10)
    src.open()
    try:
        assert next(iter(src.frames())).frame.width > 0
    finally:
        src.close()


# -- systemd unit --
def test_systemd_unit_contract() -> None:
    text = (APP / "systemd" / "pycam-app.service").read_text()
    for line in (
        "Type=notify",
        "ExecStart=/usr/local/bin/pycam-app --config /etc/pycam/app.toml",
        "Restart=on-failure",
        "StartLimitAction=reboot",
        "ProtectSystem=strict",
        "ReadWritePaths=-/data/app",
        "RuntimeDirectory=pycam-app",
    ):
        assert line in text.splitlines(), line
    assert any(x.startswith("WatchdogSec=") for x in text.splitlines())


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / "pycam-app.service"
    unit.write_text(
        (APP / "systemd" / "pycam-app.service")
        .read_text()
        .replace("/usr/local/bin/pycam-app", sys.executable)
        .replace("/bin/mkdir", "/usr/bin/mkdir")
    )
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [x for x in r.stderr.splitlines() if "pycam-app.service" in x and "Command" not in x]
    assert not problems, r.stderr


def test_health_probe_follows_the_service_when_it_moves(tmp_path: Path) -> None:
    """The gate waits from boot; provisioning restarts the app on HTTPS elsewhere: the probe follows
    endpoint.json instead of polling the old address until it times out."""
    stuck, old = serve(step=0)
    moving, new = serve(step=1)
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / "endpoint.json").write_text(json.dumps({"url": old}))
        cfg = tmp_path / "app.toml"
        cfg.write_text(f'runtime_dir = "{run}"\n')
        threading.Timer(1.0, lambda: (run / "endpoint.json").write_text(json.dumps({"url": new}))).start()
        assert healthprobe.main(["--config", str(cfg), "--wait", "6"]) == 0
    finally:
        stuck.shutdown()
        moving.shutdown()
