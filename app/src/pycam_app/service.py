"""The camera service: wires capture, encoding, motion, recording, the web API and systemd together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from . import sdnotify
from .capture import Source, open_source
from .config import Config
from .pipeline import Controls, Pipeline

log = logging.getLogger(__name__)


class CameraService:
    def __init__(self, cfg: Config, source: Source | None = None) -> None:
        self.cfg = cfg
        self.started_mono = time.monotonic()
        self.controls = Controls()
        self.pipeline = Pipeline(cfg, source or open_source(cfg), self.controls)
        self.clients = 0  # live viewers (WebSocket, MJPEG) and event listeners
        self.url = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._web: object | None = None

    def recording_active(self) -> bool:
        return False

    async def start(self) -> None:
        from .web.server import WebServer

        loop = asyncio.get_running_loop()
        self.pipeline.start()
        if not await loop.run_in_executor(None, self.pipeline.wait_started, 60.0):
            log.warning("pipeline not started after 60 s: %s", self.pipeline.last_error)
        web = WebServer(self)
        await web.start()
        self._web = web
        self.url = web.url
        self._write_endpoint()
        sdnotify.notify(f"READY=1\nSTATUS=serving {self.url}")
        self._tasks.append(asyncio.create_task(self._watchdog()))
        log.info("serving on %s", self.url)

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._web is not None:
            await self._web.stop()  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(None, self.pipeline.stop)

    def runtime_dir(self) -> Path:
        """The configured runtime directory, or a per-user temp one where /run is not writable."""
        d = Path(self.cfg.runtime_dir)
        try:
            d.mkdir(parents=True, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            pass
        d = Path(tempfile.gettempdir()) / f"pycam-app-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _write_endpoint(self) -> None:
        # pycam-health reads this to find the service (port, HTTP or HTTPS) without parsing the config.
        path = self.runtime_dir() / "endpoint.json"
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
