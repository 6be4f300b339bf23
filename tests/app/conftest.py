"""Shared fixtures: a small synthetic-source configuration and a running service on a free port."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.client
import json
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pycam_app import config
from pycam_app.service import CameraService

# Headless Chromium for the live-view tests and the latency benchmark (bench/app/bench_app.py): Debian's
# /usr/bin/chromium, no GPU, sandbox or background traffic; video may start without a user gesture.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def small_config(tmp_path: Path, **sections: dict[str, Any]) -> config.Config:
    """A cheap configuration: synthetic 320x180@10 main, 160x90@5 sub, port 0, data under tmp_path."""
    data: dict[str, Any] = {
        "capture": {"source": "synthetic"},
        "main": {"width": 320, "height": 180, "fps": 10, "bitrate": 300_000, "keyframe_interval": 0.5},
        "sub": {"width": 160, "height": 90, "fps": 5, "bitrate": 100_000, "keyframe_interval": 1.0},
        "web": {"bind": "127.0.0.1", "port": 0, "tls": "off"},
        "storage": {"data_dir": str(tmp_path / "data"), "min_free_mb": 0, "min_free_percent": 0},
        "recording": {"pre_roll_s": 2.0, "post_roll_s": 1.0},
        "motion": {"fps": 5, "cooldown_s": 1.0},
        "factory_dir": str(tmp_path / "factory"),
        "runtime_dir": str(tmp_path / "run"),
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:
            data[name] = values
    return config.from_dict(data)


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return small_config(tmp_path)


def password_of(svc: CameraService) -> str:
    text = (svc.data_dir / "initial-password").read_text()
    return text.split("password: ")[1].strip()


@dataclasses.dataclass
class Running:
    svc: CameraService
    url: str
    password: str

    def auth(self) -> dict[str, str]:
        return basic("admin", self.password)


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header (aiohttp's BasicAuth helper is deprecated in new releases)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest_asyncio.fixture
async def running(cfg: config.Config) -> AsyncIterator[Running]:
    svc = CameraService(cfg)
    await svc.start()
    try:
        yield Running(svc, svc.url, password_of(svc))
    finally:
        await svc.stop()


@pytest_asyncio.fixture
async def session(running: Running) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(running.url, headers=running.auth()) as s:
        yield s


class Server:
    """The service on its own event loop in a thread, so hypothesis tests can stay synchronous."""

    def __init__(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30)
        self.host, self.port = self.svc.url.split("//")[1].split(":")
        self.auth = "Basic " + base64.b64encode(f"admin:{password_of(self.svc)}".encode()).decode()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.svc = CameraService(self.cfg)
        self.loop.run_until_complete(self.svc.start())
        self.ready.set()
        self.loop.run_forever()

    def request(
        self, method: str, path: str, body: Any = None, auth: bool = True, raw: bytes | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=20)
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = self.auth
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        out = r.status, r.read()
        conn.close()
        return out

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.svc.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
