"""The running service with the synthetic source: health, auth, device API, live view, recordings."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from conftest import Running, basic, password_of, small_config
from pycam_app import stamp
from pycam_app.capture.synthetic import SyntheticSource
from pycam_app.service import CameraService

pytestmark = pytest.mark.asyncio


async def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def stamps_of(data: bytes) -> list[tuple[int, int]]:
    """(frame counter, capture wall ms) read from every frame of an MP4."""
    with av.open(io.BytesIO(data), format="mp4") as c:
        out = []
        for f in c.decode(video=0):
            r = stamp.decode_plane(bytes(f.planes[0]), f.planes[0].line_size, f.width, f.height)
            assert r is not None, "stamp unreadable"
            out.append(r)
    return out


def counters(data: bytes) -> list[int]:
    return [c for c, _ in stamps_of(data)]


async def test_health_is_public_and_complete(running: Running) -> None:
    async with aiohttp.ClientSession() as s:
        await wait_for(lambda: running.svc.pipeline.frames > 3)
        async with s.get(running.url + "/api/health") as r:
            assert r.status == 200
            h = await r.json()
        async with s.get(running.url + "/api/status") as r:
            assert (await r.json())["status"] == "ok"
    assert h["status"] == "ok" and h["frames"] > 3
    assert set(h["fps"]) == {"main", "sub"} and h["fps"]["main"] > 0
    assert h["first_frame_boottime_s"] > 0 and h["first_frame_boottime_s"] <= h["boottime_s"]
    assert h["encoder"] == "libx264" and h["source"] == "synthetic"
    assert h["clients"] == 0 and h["recording"] is False


async def test_everything_else_needs_authentication(running: Running) -> None:
    paths = [
        "/",
        "/api/spec",
        "/api/properties",
        "/snapshot.jpg",
        "/api/recordings",
        "/api/openapi.json",
        "/api/mjpeg",
        "/api/events/recent",
        "/api/services/camera-control/properties/on",
        "/nope",
    ]
    async with aiohttp.ClientSession() as s:
        for p in paths:
            async with s.get(running.url + p, allow_redirects=False) as r:
                assert r.status == 401, p
        async with s.get(running.url + "/", headers={"Accept": "text/html"}, allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/login")
        async with s.put(running.url + "/api/services/camera-control/properties/on", json={"value": False}) as r:
            assert r.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await s.ws_connect(running.url + "/api/live/main")
    assert running.svc.model.values["camera-control.on"] is True


async def test_generated_password_is_private_and_random(tmp_path: Path, running: Running) -> None:
    initial = running.svc.data_dir / "initial-password"
    assert stat.S_IMODE(initial.stat().st_mode) == 0o600
    assert stat.S_IMODE((running.svc.data_dir / "credentials.json").stat().st_mode) == 0o600
    other = CameraService(small_config(tmp_path / "other"))
    assert password_of(other) != running.password and len(running.password) >= 12
    other.index.close()


async def test_login_session_logout(running: Running) -> None:
    # unsafe=True: aiohttp's cookie jar ignores cookies from IP addresses otherwise
    async with aiohttp.ClientSession(running.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post("/api/login", json={"username": "admin", "password": "wrong"}) as r:
            assert r.status == 401
        async with s.post("/api/login", json={"username": "admin", "password": running.password}) as r:
            assert r.status == 200
            cookie = r.cookies["pycam_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with s.get("/api/session") as r:
            assert (await r.json())["user"] == "admin"
        # cross-site writes with the cookie are refused
        async with s.put(
            "/api/services/indicator-light/properties/on",
            json={"value": False},
            headers={"Origin": "http://evil.example"},
        ) as r:
            assert r.status == 403
        async with s.post("/api/logout") as r:
            assert r.status == 200
        async with s.get("/api/session") as r:
            assert r.status == 401


async def test_login_rate_limit(running: Running) -> None:
    async with aiohttp.ClientSession(running.url) as s:
        for _ in range(5):
            async with s.post("/api/login", json={"username": "admin", "password": "guess"}) as r:
                assert r.status == 401
        async with s.post("/api/login", json={"username": "admin", "password": running.password}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        async with s.get("/api/spec", headers=running.auth()) as r:
            assert r.status == 429  # Basic auth is locked out too


async def test_properties_validation_and_persistence(running: Running, session: aiohttp.ClientSession) -> None:
    base = "/api/services"
    async with session.put(f"{base}/camera-control/properties/night-shot", json={"value": "on"}) as r:
        assert r.status == 200 and (await r.json())["value"] == "on"
    assert running.svc.controls.night is True
    for path, body, status in [
        ("camera-control/properties/night-shot", {"value": "infrared"}, 400),
        ("camera-control/properties/on", {"value": "yes"}, 400),
        ("camera-control/properties/recording", {"value": True}, 400),  # read-only
        ("camera-control/properties/zoom", {"value": 1}, 404),
        ("ptz/properties/on", {"value": True}, 404),
        (
            "motion-detection/properties/detection-area",
            {"value": [{"x": 0.5, "y": 0, "w": 0.6, "h": 1}]},
            400,
        ),
        ("motion-detection/properties/sensitivity", {"val": "low"}, 400),
    ]:
        async with session.put(f"{base}/{path}", json=body) as r:
            assert r.status == status, (path, body, await r.text())
    area = [{"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.5}]
    async with session.put(f"{base}/motion-detection/properties/detection-area", json={"value": area}) as r:
        assert r.status == 200
    async with session.get("/api/properties") as r:
        props = await r.json()
    assert props["motion-detection"]["detection-area"] == area
    assert props["storage"]["status"] == "normal" and props["storage"]["free-bytes"] > 0
    saved = json.loads((running.svc.data_dir / "settings.json").read_text())
    assert saved["camera-control.night-shot"] == "on"


async def test_privacy_mode_blanks_the_picture(running: Running, session: aiohttp.ClientSession) -> None:
    await wait_for(lambda: running.svc.pipeline.frames > 0)
    async with session.put("/api/services/camera-control/properties/on", json={"value": False}) as r:
        assert r.status == 200
    await asyncio.sleep(0.4)
    async with session.get("/snapshot.jpg") as r:
        assert r.status == 200 and r.content_type == "image/jpeg"
        data = await r.read()
    with av.open(io.BytesIO(data)) as c:
        f = next(c.decode(video=0))
    assert (f.width, f.height) == (320, 180)
    luma = bytes(f.reformat(format="gray").planes[0])
    assert max(luma) < 40


async def test_snapshot_shows_stamp(running: Running, session: aiohttp.ClientSession) -> None:
    await wait_for(lambda: running.svc.pipeline.frames > 0)
    async with session.get("/snapshot.jpg", params={"stream": "sub"}) as r:
        data = await r.read()
    with av.open(io.BytesIO(data)) as c:
        f = next(c.decode(video=0)).reformat(format="gray")
    assert (f.width, f.height) == (160, 90)
    assert stamp.decode_plane(bytes(f.planes[0]), f.planes[0].line_size, 160, 90) is not None


async def test_live_websocket_delivers_decodable_fmp4(running: Running, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect("/api/live/main") as ws:
        init = await ws.receive_json(timeout=10)
        assert init["type"] == "init" and init["codec"].startswith("avc1.") and init["width"] == 320
        data = [await ws.receive_bytes(timeout=10) for _ in range(16)]
        h = await (await session.get("/api/health")).json()
        assert h["clients"] == 1 and h["streams"]["main"]["subscribers"] >= 2  # viewer + recorder
    got = counters(b"".join(data))
    assert len(got) == 15
    assert got == list(range(got[0], got[0] + 15)), "frames must be consecutive"


async def test_live_sub_stream_and_unknown_stream(session: aiohttp.ClientSession) -> None:
    async with session.ws_connect("/api/live/sub") as ws:
        assert (await ws.receive_json(timeout=10))["width"] == 160
        data = [await ws.receive_bytes(timeout=10) for _ in range(4)]
    assert len(counters(b"".join(data))) == 3
    async with session.get("/api/live/third") as r:
        assert r.status == 404


async def test_mjpeg_fallback(session: aiohttp.ClientSession) -> None:
    async with session.get("/api/mjpeg") as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        buf = b""
        while buf.count(b"--pycamframe") < 2:
            buf += await asyncio.wait_for(r.content.read(4096), 10)
    part = buf.split(b"--pycamframe")[1]
    jpeg = part.split(b"\r\n\r\n", 1)[1]
    assert jpeg.startswith(b"\xff\xd8")


async def test_events_stream_reports_property_changes(session: aiohttp.ClientSession) -> None:
    async with session.get("/api/events") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        await r.content.readline()
        async with session.put("/api/services/indicator-light/properties/on", json={"value": False}) as w:
            assert w.status == 200
        text = ""
        while "property-changed" not in text:
            text += (await asyncio.wait_for(r.content.readline(), 5)).decode()
        while not text.rstrip("\n").endswith("}"):
            text += (await asyncio.wait_for(r.content.readline(), 5)).decode()
    payload = json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])
    assert payload["service"] == "indicator-light" and payload["data"] == {"property": "on", "value": False}


async def test_motion_event_clip_starts_before_the_trigger(running: Running, session: aiohttp.ClientSession) -> None:
    svc = running.svc
    src = svc.pipeline.source
    assert isinstance(src, SyntheticSource)
    await wait_for(lambda: svc.pipeline.frames >= 35, timeout=20)  # > pre-roll (2 s) of history
    assert not svc.motion.state.active, "a static synthetic picture must not trigger motion"
    src.moving = True
    await wait_for(lambda: svc.motion.state.active, timeout=10)
    await asyncio.sleep(0.5)
    src.moving = False

    async def closed() -> list[dict[str, Any]]:
        async with session.get("/api/recordings", params={"kind": "event"}) as r:
            rows = (await r.json())["recordings"]
        return [x for x in rows if x["state"] == "closed"]

    rows = await wait_for(closed, timeout=20)
    rec = rows[0]
    async with session.get(f"/api/recordings/{rec['id']}/video") as r:
        assert r.status == 200 and r.content_type == "video/mp4"
        clip = await r.read()
    async with session.get("/api/motion-events") as r:
        event = (await r.json())["events"][0]
    assert event["recording_id"] == rec["id"] and event["frame_no"] == rec["trigger_frame_no"]
    stamps = stamps_of(clip)
    got = [c for c, _ in stamps]
    assert got == sorted(set(got)), "frames in capture order, no duplicates"
    # The frame counter proves the pre-roll: find the triggering frame in the clip by its capture time.
    trigger_ms = int(event["start"] * 1000) % stamp.MS_MODULUS
    trigger_counter = next(c for c, ms in stamps if abs(ms - trigger_ms) <= 1)
    assert got[0] <= trigger_counter - 15, (got[0], trigger_counter)  # >= 1.5 s at 10 fps before it
    assert got[-1] > trigger_counter
    assert (trigger_ms - stamps[0][1]) >= 1500


async def test_manual_recording_and_delete(running: Running, session: aiohttp.ClientSession) -> None:
    await wait_for(lambda: running.svc.pipeline.frames > 5)
    url = "/api/services/camera-control/actions/"
    async with session.post(url + "start-recording", json={"duration": 30}) as r:
        assert r.status == 200
        rec_id = (await r.json())["result"]["id"]
    await wait_for(lambda: running.svc.recorder.active)
    async with session.delete(f"/api/recordings/{rec_id}") as r:
        assert r.status == 409  # still being written
    await asyncio.sleep(1.0)
    async with session.post(url + "stop-recording") as r:
        assert (await r.json())["result"]["stopped"] is True
    async with session.get(f"/api/recordings/{rec_id}") as r:
        row = await r.json()
    assert row["state"] == "closed" and row["kind"] == "manual" and row["frames"] >= 8
    path = running.svc.recordings_dir / row["path"]
    assert path.is_file() and len(counters(path.read_bytes())) == row["frames"]
    async with session.delete(f"/api/recordings/{rec_id}") as r:
        assert r.status == 200
    assert not path.exists()
    async with session.get(f"/api/recordings/{rec_id}") as r:
        assert r.status == 404
    async with session.post(url + "start-recording", json={"duration": "long"}) as r:
        assert r.status == 400
    async with session.post(url + "teleport") as r:
        assert r.status == 404


async def test_continuous_segments_and_format(running: Running, session: aiohttp.ClientSession) -> None:
    async with session.put("/api/services/camera-control/properties/continuous-recording", json={"value": True}) as r:
        assert r.status == 200
    await wait_for(lambda: running.svc.recorder.cont_clip is not None)
    async with session.post("/api/services/storage/actions/format", json={"confirm": False}) as r:
        assert r.status == 400
    async with session.post("/api/services/storage/actions/format", json={}) as r:
        assert r.status == 400
    async with session.post("/api/services/storage/actions/format", json={"confirm": True}) as r:
        assert r.status == 200
    assert running.svc.index.totals()[0] <= 1  # a new segment may already have started


async def test_password_change(running: Running, session: aiohttp.ClientSession) -> None:
    async with session.post("/api/password", json={"current": "bad", "new": "something-long"}) as r:
        assert r.status == 403
    async with session.post("/api/password", json={"current": running.password, "new": "short"}) as r:
        assert r.status == 400
    async with session.post("/api/password", json={"current": running.password, "new": "n3w-passw0rd"}) as r:
        assert r.status == 200
    assert not (running.svc.data_dir / "initial-password").exists()
    async with (
        aiohttp.ClientSession(running.url, headers=basic("admin", "n3w-passw0rd")) as s2,
        s2.get("/api/spec") as r,
    ):
        assert r.status == 200


async def test_factory_identity_and_settings_survive_restart(tmp_path: Path) -> None:
    from pycam_app import auth

    factory = tmp_path / "factory"
    factory.mkdir()
    (factory / "identity.json").write_text(
        json.dumps(
            {
                "serial": "PC-0001",
                "model": "pycam-qemu",
                "admin_password_hash": auth.hash_password("factory-pw", 1000),
            }
        )
    )
    cfg = small_config(tmp_path)
    for attempt in range(2):
        svc = CameraService(cfg)
        await svc.start()
        try:
            assert not (svc.data_dir / "initial-password").exists()
            async with aiohttp.ClientSession(svc.url, headers=basic("admin", "factory-pw")) as s:
                async with s.get("/api/properties") as r:
                    props = await r.json()
                assert props["device-information"]["serial-number"] == "PC-0001"
                if attempt == 0:
                    await s.put("/api/services/camera-control/properties/watermark", json={"value": False})
                else:
                    assert props["camera-control"]["watermark"] is False
        finally:
            await svc.stop()


async def test_unwritable_data_dir_falls_back_to_runtime(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = small_config(tmp_path, storage={"data_dir": str(blocker / "app")})
    svc = CameraService(cfg)
    assert svc.data_dir == Path(cfg.runtime_dir) / "data"
    svc.index.close()


async def test_endpoint_file_for_the_probe(running: Running) -> None:
    doc = json.loads((Path(running.svc.cfg.runtime_dir) / "endpoint.json").read_text())
    assert doc == {"url": running.url, "pid": os.getpid()}
