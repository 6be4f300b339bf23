"""Shared fixtures: a small synthetic-source configuration and a running service on a free port."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pycam_app import config
from pycam_app.service import CameraService


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
