"""aiohttp application: routes, TLS, startup/shutdown."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from .. import health

if TYPE_CHECKING:
    from ..service import CameraService

log = logging.getLogger(__name__)


def tls_context(cfg_web: object) -> ssl.SSLContext | None:
    mode = cfg_web.tls
    cert, key = Path(cfg_web.cert), Path(cfg_web.key)
    if mode == "off":
        return None
    if not (cert.is_file() and key.is_file()):
        if mode == "on":
            raise FileNotFoundError(f'web.tls = "on" but {cert} or {key} is missing')
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class WebServer:
    def __init__(self, svc: CameraService) -> None:
        self.svc = svc
        self.app = web.Application()
        self.app.router.add_get("/api/health", self.health)
        self.app.router.add_get("/api/status", self.status)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(health.document(self.svc))

    async def status(self, request: web.Request) -> web.Response:
        doc = health.document(self.svc)
        return web.json_response({"status": doc["status"], "version": doc["version"]})

    async def start(self) -> None:
        cfg = self.svc.cfg.web
        ssl_ctx = tls_context(cfg)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.bind, cfg.port, ssl_context=ssl_ctx)
        await site.start()
        server = site._server  # the bound port, also when port 0 asked the kernel for one
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else cfg.port
        host = "127.0.0.1" if cfg.bind in ("0.0.0.0", "::", "") else cfg.bind
        self.url = f"{'https' if ssl_ctx else 'http'}://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
