"""aiohttp application: routes, authentication and error middleware, TLS, startup/shutdown.

Every endpoint requires authentication except /api/health, /api/status (minimal), the login page and the
login call. Authentication is a session cookie (from POST /api/login) or HTTP Basic; failed attempts are
rate-limited per client address. Works with aiohttp 3.8 (Debian bookworm) and newer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from .. import lean, spec
from ..config import WebConfig
from . import api, live, openapi

if TYPE_CHECKING:
    import ssl

    from ..service import CameraService

log = logging.getLogger(__name__)

COOKIE = "pycam_session"
PUBLIC = {
    ("GET", "/api/health"),
    ("GET", "/api/status"),
    ("GET", "/login"),
    ("POST", "/api/login"),
    ("HEAD", "/api/health"),
    ("HEAD", "/api/status"),
    ("HEAD", "/login"),
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def tls_context(cfg: WebConfig) -> ssl.SSLContext | None:
    """HTTPS with the device certificate when provisioned (tls = auto) or required (tls = on).

    ssl is imported only here: a plain-HTTP service never loads OpenSSL's TLS layer (see cli.py).
    """
    from pathlib import Path

    if not cfg.tls_wanted():
        return None
    cert, key = Path(cfg.cert), Path(cfg.key)
    if not (cert.is_file() and key.is_file()):
        raise FileNotFoundError(f'web.tls = "on" but {cert} or {key} is missing')
    lean.allow_openssl()  # the process may have started without a certificate (cli._lean_process)
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def tls_digest(cfg: WebConfig) -> str | None:
    """What an HTTPS listener is made of (certificate and key bytes); None for plain HTTP."""
    if not cfg.tls_wanted():
        return None
    h = hashlib.sha256()
    for path in (cfg.cert, cfg.key):
        h.update(Path(path).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


STATIC = Path(__file__).with_name("static")  # the wheel installs package data as files (no zip import)


def static_text(name: str) -> str:
    return (STATIC / name).read_text()


class WebServer:
    def __init__(self, svc: CameraService) -> None:
        self.svc = svc
        self.tls = False
        self.app = web.Application(middlewares=[self.errors, self.authenticate], client_max_size=64 * 1024)
        self.live = live.LiveHandlers(svc)
        self.api = api.ApiHandlers(svc)
        r = self.app.router
        r.add_get("/", self.page("index.html"))
        r.add_get("/login", self.page("login.html"))
        r.add_get("/static/{name}", self.static)
        r.add_post("/api/login", self.login)
        r.add_post("/api/logout", self.logout)
        r.add_get("/api/session", self.session)
        r.add_post("/api/password", self.password)
        r.add_get("/api/openapi.json", self.openapi)
        self.api.register(r)
        self.live.register(r)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._site_kw: dict[str, Any] = {}
        self._ssl_ctx: ssl.SSLContext | None = None
        self.tls_digest: str | None = None  # of the certificate and key served (reload.py compares)
        self.url = ""
        self.port = 0

    # -- middleware --
    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status >= 400 and request.path.startswith("/api/") and e.content_type != "application/json":
                return json_error(
                    e.status,
                    e.reason,
                    headers={k: v for k, v in e.headers.items() if k.lower() in ("allow", "www-authenticate")},
                )
            raise
        except spec.SpecError as e:
            return json_error(400, str(e))
        except KeyError as e:
            return json_error(404, str(e.args[0]) if e.args else "not found")
        except (ValueError, json.JSONDecodeError) as e:
            return json_error(400, str(e))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return json_error(500, "internal error")

    def client(self, request: web.Request) -> str:
        return request.remote or "?"

    async def check_basic(self, request: web.Request, header: str) -> bool | None:
        """True/False for a Basic header; None when the client is locked out."""
        who = self.client(request)
        if self.svc.limiter.retry_after(who):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            self.svc.limiter.failure(who)
            return False
        ok = await asyncio.get_running_loop().run_in_executor(None, self.svc.auth.check, user, password)
        if ok:
            self.svc.limiter.success(who)
        else:
            self.svc.limiter.failure(who)
        return ok

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method, request.path) in PUBLIC:
            return await handler(request)
        token = request.cookies.get(COOKIE, "")
        if token and self.svc.auth.session_valid(token):
            # Cookie-authenticated writes must come from our own pages (CSRF); Basic auth is not sent by
            # browsers on their own, so it needs no such check.
            origin = request.headers.get("Origin")
            if request.method not in SAFE_METHODS and origin and urlsplit(origin).netloc != request.host:
                return json_error(403, "cross-origin request refused")
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            ok = await self.check_basic(request, header)
            if ok is None:
                wait = self.svc.limiter.retry_after(self.client(request))
                return json_error(429, "too many failed logins", {"Retry-After": str(int(wait) + 1)})
            if ok:
                return await handler(request)
        if (
            request.method == "GET"
            and not request.path.startswith("/api/")
            and "text/html" in request.headers.get("Accept", "")
        ):
            raise web.HTTPFound("/login?next=" + quote(request.path_qs, safe=""))
        headers = {}
        if request.headers.get("X-Requested-With") != "pycam":  # our page handles 401 itself, no browser prompt
            headers["WWW-Authenticate"] = 'Basic realm="pycam", charset="UTF-8"'
        return json_error(401, "authentication required", headers)

    # -- pages and session --
    def page(self, name: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(
                text=static_text(name),
                content_type="text/html",
                headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
            )

        return handler

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {".js": "application/javascript", ".css": "text/css"}
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or suffix not in types:
            raise web.HTTPNotFound()
        try:
            text = static_text(name)
        except (FileNotFoundError, IsADirectoryError):
            raise web.HTTPNotFound() from None
        return web.Response(text=text, content_type=types[suffix])

    async def login(self, request: web.Request) -> web.StreamResponse:
        who = self.client(request)
        wait = self.svc.limiter.retry_after(who)
        if wait:
            return json_error(429, "too many failed logins", {"Retry-After": str(int(wait) + 1)})
        body = await request.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("username"), str)
            or not isinstance(body.get("password"), str)
        ):
            raise spec.SpecError('expected {"username": string, "password": string}')
        ok = await asyncio.get_running_loop().run_in_executor(
            None, self.svc.auth.check, body["username"], body["password"]
        )
        if not ok:
            self.svc.limiter.failure(who)
            return json_error(401, "wrong user name or password")
        self.svc.limiter.success(who)
        resp = web.json_response({"user": self.svc.auth.username})
        resp.set_cookie(
            COOKIE,
            self.svc.auth.new_session(),
            httponly=True,
            samesite="Strict",
            secure=self.tls,
            path="/",
            max_age=int(self.svc.cfg.auth.session_ttl_s),
        )
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.svc.auth.end_session(request.cookies.get(COOKIE, ""))
        resp = web.json_response({"logged_out": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def session(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"user": self.svc.auth.username, "credentials": self.svc.auth.creds.source})

    async def password(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("current"), str)
            or not isinstance(body.get("new"), str)
        ):
            raise spec.SpecError('expected {"current": string, "new": string}')
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.svc.auth.check, self.svc.auth.username, body["current"]):
            self.svc.limiter.failure(self.client(request))
            return json_error(403, "current password is wrong")
        await loop.run_in_executor(None, self.svc.auth.change_password, body["new"])
        return web.json_response({"changed": True})

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi.document())

    # -- lifecycle --
    async def start(self) -> None:
        ssl_ctx = tls_context(self.svc.cfg.web)
        self.tls_digest = tls_digest(self.svc.cfg.web) if ssl_ctx is not None else None
        # Streaming handlers (SSE, MJPEG) never finish by themselves: bound the wait at shutdown. aiohttp 3.9
        # moved shutdown_timeout from the site to the runner.
        runner_kw: dict[str, Any] = {}
        if "shutdown_timeout" in inspect.signature(web.AppRunner.__init__).parameters:
            runner_kw["shutdown_timeout"] = 2.0
        else:
            self._site_kw["shutdown_timeout"] = 2.0
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, **runner_kw)
        await self._runner.setup()
        await self._listen(ssl_ctx, self.svc.cfg.web.port)

    async def _listen(self, ssl_ctx: ssl.SSLContext | None, port: int) -> None:
        cfg = self.svc.cfg.web
        assert self._runner is not None
        site = web.TCPSite(self._runner, cfg.bind, port, ssl_context=ssl_ctx, **self._site_kw)
        await site.start()
        self._site, self._ssl_ctx = site, ssl_ctx
        server = site._server  # the bound port, also when port 0 asked the kernel for one
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        host = "127.0.0.1" if cfg.bind in ("0.0.0.0", "::", "") else cfg.bind
        self.tls = ssl_ctx is not None
        self.url = f"{'https' if ssl_ctx else 'http'}://{host}:{self.port}"
        if self.tls:
            log.info("HTTPS with the device certificate %s", cfg.cert)

    @property
    def listening(self) -> bool:
        return self._site is not None

    async def rebind(self, ssl_ctx: ssl.SSLContext | None) -> None:
        """Serve on the same port with another TLS setting or certificate (a reload of the identity).

        Connections and live streams made under the old setting end, as they would with a restart
        (a provisioned device serves HTTPS only). If the new listener cannot start, the old one is
        restored and the error raised: the service never ends up serving nothing.
        """
        assert self._runner is not None and self._runner.server is not None and self._site is not None
        old_ctx = self._ssl_ctx
        await self.live.close_all()
        await self._site.stop()  # aiohttp 3.8 also ends the connections here; newer ones only stop listening
        await self._runner.server.shutdown(2.0)
        self._site = None
        try:
            await self._listen(ssl_ctx, self.port)
        except OSError:
            await self._listen(old_ctx, self.port)
            raise

    async def stop(self) -> None:
        await self.live.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
