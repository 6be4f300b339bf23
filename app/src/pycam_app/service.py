"""The camera service: wires capture, encoding, motion, recording, the web API and systemd together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from . import __version__, auth, identity, sdnotify, spec
from .capture import Captured, Source, open_source
from .config import Config
from .events import EventBus
from .hardware import Hardware
from .index import Index
from .jpeg import JpegEncoder
from .motion import MotionDetector
from .pipeline import Controls, Pipeline
from .recorder import Recorder
from .reload import ReloadError, reload_identity

if TYPE_CHECKING:
    from .web.server import WebServer

log = logging.getLogger(__name__)

SNAPSHOT_WAIT_S = 3.0  # for the next frame of a stream (the sub stream may run at 1 fps)
NIGHT_ON_LUMA, NIGHT_OFF_LUMA = 40.0, 70.0  # night-shot auto: hysteresis on the mean brightness


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


class CameraService:
    def __init__(self, cfg: Config, source: Source | None = None) -> None:
        self.cfg = cfg
        self.started_mono = time.monotonic()
        self.runtime = self._runtime_dir()
        self.data_dir = self._data_dir()
        self.identity = identity.load(cfg.factory_dir)
        creds = auth.load_credentials(self.data_dir, self.identity, cfg.auth.username)
        self.auth = auth.Authenticator(self.data_dir, creds, cfg.auth.session_ttl_s)
        self.limiter = auth.RateLimiter(cfg.auth.max_failures, cfg.auth.lockout_s)
        defaults = dict(spec.DEFAULTS)
        defaults["motion-detection.enabled"] = cfg.motion.enabled
        defaults["motion-detection.sensitivity"] = cfg.motion.sensitivity
        defaults["camera-control.continuous-recording"] = cfg.recording.continuous
        self.model = spec.DeviceModel(self.data_dir / "settings.json", defaults)
        self.controls = Controls()
        self.hardware = Hardware(cfg.hardware)
        self.pipeline = Pipeline(cfg, source or open_source(cfg), self.controls)
        self.jpeg = JpegEncoder()
        self.index = Index(self.data_dir / "index.db")
        self.recordings_dir = self.data_dir / "recordings"
        self.recorder = Recorder(
            cfg, self.pipeline.streams[cfg.recording.stream], self.index, self.recordings_dir, self._recorder_event
        )
        self.motion = MotionDetector(
            cfg.motion.fps, cfg.motion.cooldown_s, self._motion_event, self.pipeline.source.motion_exclude_top
        )
        self.pipeline.add_analysis_listener(self._analyse)
        self.pipeline.add_sub_listener(self._on_sub_frame)
        self.bus: EventBus | None = None
        self.clients = 0  # live viewers (WebSocket, MJPEG) and event listeners
        self.url = ""
        self.mjpeg: Any = None  # web.live.MjpegHub, set by the web server
        self._night_auto = False
        self._tasks: list[asyncio.Task[None]] = []
        self.web: WebServer | None = None
        self._reloads = 0
        self._getters()

    # -- directories --
    def _runtime_dir(self) -> Path:
        """The configured runtime directory, or a per-user temp one where /run is not writable."""
        d = Path(self.cfg.runtime_dir)
        if _writable_dir(d):
            return d
        d = Path(tempfile.gettempdir()) / f"pycam-app-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _data_dir(self) -> Path:
        d = self.cfg.data_dir
        if _writable_dir(d):
            return d
        # Keep the camera (live view, health) working without the data partition; say so loudly.
        fallback = self.runtime / "data"
        fallback.mkdir(parents=True, exist_ok=True)
        log.error(
            "storage.data_dir %s is not writable: using %s in RAM (recordings and settings are lost on reboot)",
            d,
            fallback,
        )
        return fallback

    # -- device model --
    def _getters(self) -> None:
        g = self.model.getters
        g["device-information.serial-number"] = lambda: self.identity.serial
        g["device-information.model"] = lambda: self.identity.model
        g["device-information.firmware-version"] = lambda: __version__
        g["camera-control.recording"] = lambda: self.recorder.active
        g["motion-detection.motion"] = lambda: self.motion.state.active
        g["storage.status"] = lambda: self.storage()["status"]
        g["storage.total-bytes"] = lambda: self.storage()["total_bytes"]
        g["storage.free-bytes"] = lambda: self.storage()["free_bytes"]
        g["storage.recordings-bytes"] = lambda: self.index.totals()[1]
        g["storage.recordings"] = lambda: self.index.totals()[0]

    def storage(self) -> dict[str, Any]:
        try:
            usage = shutil.disk_usage(self.data_dir)
        except OSError:
            return {"status": "unavailable", "total_bytes": 0, "free_bytes": 0}
        s = self.cfg.storage
        low = usage.free < max(s.min_free_mb * 1024 * 1024, usage.total * s.min_free_percent / 100)
        return {"status": "low-space" if low else "normal", "total_bytes": usage.total, "free_bytes": usage.free}

    def _apply(self, key: str, value: Any) -> None:
        """A property changed (or at start): push it into the pipeline, detector, recorder, hardware."""
        v = self.model.values
        if key in ("camera-control.on", "camera-control.night-shot", "camera-control.watermark"):
            self.controls.on = bool(v["camera-control.on"])
            self.controls.watermark = bool(v["camera-control.watermark"])
            mode = v["camera-control.night-shot"]
            self._set_night(mode == "on" or (mode == "auto" and self._night_auto))
        if key.startswith("motion-detection.") or key == "camera-control.on":
            self.motion.configure(
                bool(v["motion-detection.enabled"]) and self.controls.on,
                v["motion-detection.sensitivity"],
                v["motion-detection.detection-area"],
            )
        if key == "camera-control.continuous-recording":
            self.recorder.command("continuous", bool(value))
        if key == "indicator-light.on":
            self.hardware.indicator(bool(value))
        if self.bus is not None:
            svc, _, name = key.partition(".")
            self.bus.publish(svc, "property-changed", {"property": name, "value": value})

    def _set_night(self, on: bool) -> None:
        if self.controls.night != on or self.hardware.state.get("ir_led") is None:
            self.controls.night = on
            self.hardware.night(on)

    # -- pipeline callbacks (pipeline thread) --
    def _analyse(self, frame: av.VideoFrame, cap: Captured, frame_no: int) -> None:
        """The main frame before overlays (watermark, privacy), at the sub stream's rate."""
        if self.controls.on:
            self.motion.feed(frame, cap.mono, cap.wall, frame_no)
            if self.model.values["camera-control.night-shot"] == "auto":
                b = self.motion.state.brightness
                if b and (b < NIGHT_ON_LUMA or b > NIGHT_OFF_LUMA):
                    self._night_auto = b < NIGHT_ON_LUMA
                    self._set_night(self._night_auto)

    def _on_sub_frame(self, frame: av.VideoFrame, cap: Captured, frame_no: int) -> None:
        if self.mjpeg is not None:
            self.mjpeg.offer(frame)

    def _motion_event(self, phase: str, data: dict[str, Any]) -> None:
        self.recorder.motion(phase, data)
        if self.bus is not None:
            name = "motion-detected" if phase == "start" else "motion-ended"
            public = {k: v for k, v in data.items() if k != "mono"}
            self.bus.publish("motion-detection", name, public)

    def _recorder_event(self, name: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            svc = "storage" if name == "recording-deleted" else "camera-control"
            self.bus.publish(svc, name, data)

    def recording_active(self) -> bool:
        return self.recorder.active

    # -- actions --
    async def action(self, service: str, name: str, params: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        if (service, name) == ("camera-control", "start-recording"):
            rec = await asyncio.wrap_future(self.recorder.command("manual-start", params.get("duration")))
            return {"recording": True, "id": rec}
        if (service, name) == ("camera-control", "stop-recording"):
            stopped = await asyncio.wrap_future(self.recorder.command("manual-stop"))
            return {"stopped": stopped}
        if (service, name) == ("camera-control", "snapshot"):
            return {"url": "/snapshot.jpg"}
        if (service, name) == ("motion-detection", "trigger"):
            now_m, now_w = time.monotonic(), time.time()
            data = {"score": 1.0, "frame": self.pipeline.frames, "mono": now_m, "wall": now_w, "manual": True}
            self._motion_event("start", data)
            end = dict(data, mono=now_m + 1.0, duration_s=1.0)
            loop.call_later(1.0, self._motion_event, "end", end)
            return {"triggered": True, "frame": data["frame"]}
        if (service, name) == ("storage", "format"):
            if not params.get("confirm"):
                raise spec.SpecError("format: confirm must be true")
            await asyncio.wrap_future(self.recorder.command("format"))
            return {"formatted": True}
        raise KeyError(f"service {service!r} has no action {name!r}")

    async def snapshot(self, stream: str = "main") -> bytes | None:
        """JPEG of the stream's next frame; None when no frame has been captured yet or frames stopped."""
        if self.pipeline.frames == 0:
            return None
        try:
            frame = await asyncio.wait_for(asyncio.wrap_future(self.pipeline.next_frame(stream)), SNAPSHOT_WAIT_S)
        except TimeoutError:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, self.jpeg.encode, frame)

    # -- lifecycle --
    async def start(self) -> None:
        from .web.server import WebServer

        loop = asyncio.get_running_loop()
        self.bus = EventBus(loop)
        self.model.listeners.append(self._apply)
        for key in ("camera-control.on", "motion-detection.enabled", "indicator-light.on"):
            self._apply(key, self.model.values[key])
        self.recorder.start()
        if self.model.values["camera-control.continuous-recording"]:
            self.recorder.command("continuous", True)
        self.pipeline.start()
        if not await loop.run_in_executor(None, self.pipeline.wait_started, 60.0):
            log.warning("pipeline not started after 60 s: %s", self.pipeline.last_error)
        web = WebServer(self)
        await web.start()
        self.web = web
        self.url = web.url
        self.write_endpoint()
        sdnotify.notify(f"READY=1\nSTATUS=serving {self.url}")
        self._tasks.append(asyncio.create_task(self._watchdog()))
        log.info("serving on %s (data in %s)", self.url, self.data_dir)

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.web is not None:
            await self.web.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.pipeline.stop)
        await loop.run_in_executor(None, self.recorder.stop)
        self.index.close()

    async def reload(self) -> bool:
        """`systemctl reload` (SIGHUP): take the identity now in /factory, with systemd's reload protocol.

        The outcome also goes to <runtime>/reload-status ("<pid>.<n> ok|failed <message>"), which the
        unit's ExecReload= waits for: systemd 252 ends a reload job as soon as ExecReload= exits.
        """
        sdnotify.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}\nSTATUS=reloading the identity")
        try:
            message = await reload_identity(self)
            ok = True
            log.info("reloaded: %s", message)
        except ReloadError as e:
            ok, message = False, str(e)
            log.error("reload failed, keeping the previous identity: %s", message)
        self._reloads += 1
        status = self.runtime / "reload-status"
        tmp = status.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()}.{self._reloads} {'ok' if ok else 'failed'} {message}\n")
        tmp.replace(status)
        note = "" if ok else f" (reload failed: {message})"
        sdnotify.notify(f"READY=1\nSTATUS=serving {self.url}{note}")
        return ok

    def write_endpoint(self) -> None:
        # pycam-health reads this to find the service (port, HTTP or HTTPS) without parsing the config.
        path = self.runtime / "endpoint.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        tmp.replace(path)

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog only while main-stream frames advance: a hung pipeline gets restarted."""
        timeout = sdnotify.watchdog_interval()
        if timeout is None:
            return
        period = max(0.5, timeout / 3)
        last = -1
        while True:
            await asyncio.sleep(period)
            frames = self.pipeline.frames
            if frames != last:
                sdnotify.notify("WATCHDOG=1")
                last = frames
            else:
                log.warning("no frames for %.1f s: not feeding the watchdog", period)
