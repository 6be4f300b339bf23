"""Device API: health/status, the SPEC model (properties, actions), events (SSE), recordings."""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import health, spec

if TYPE_CHECKING:
    from ..service import CameraService

SSE_HEARTBEAT_S = 15.0


def _number(
    request: web.Request, name: str, default: float | None = None, lo: float = -math.inf, hi: float = math.inf
) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise spec.SpecError(f"query parameter {name}: expected a number") from None
    if not (lo <= value <= hi):
        raise spec.SpecError(f"query parameter {name}: must be within {lo}..{hi}")
    return value


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise spec.SpecError(f"query parameter {name}: expected an integer within {lo}..{hi}")
    return int(raw)


def _rec_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise KeyError(f"no recording {raw!r}")
    return int(raw)


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    return await request.json()


class ApiHandlers:
    def __init__(self, svc: CameraService) -> None:
        self.svc = svc

    def register(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/health", self.health)
        r.add_get("/api/status", self.status)
        r.add_get("/api/spec", self.spec)
        r.add_get("/api/properties", self.properties)
        r.add_get("/api/services/{service}/properties/{name}", self.get_property)
        r.add_put("/api/services/{service}/properties/{name}", self.put_property)
        r.add_post("/api/services/{service}/actions/{name}", self.action)
        r.add_get("/api/events", self.events)
        r.add_get("/api/events/recent", self.recent_events)
        r.add_get("/api/motion-events", self.motion_events)
        r.add_get("/api/recordings", self.recordings)
        r.add_get("/api/recordings/{id}", self.recording)
        r.add_delete("/api/recordings/{id}", self.delete_recording)
        r.add_get("/api/recordings/{id}/video", self.recording_video)

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(health.document(self.svc))

    async def status(self, request: web.Request) -> web.StreamResponse:
        doc = health.document(self.svc)
        return web.json_response({"status": doc["status"], "version": doc["version"]})

    async def spec(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"services": spec.describe()})

    async def properties(self, request: web.Request) -> web.StreamResponse:
        values = await asyncio.get_running_loop().run_in_executor(None, self.svc.model.snapshot)
        return web.json_response(values)

    async def get_property(self, request: web.Request) -> web.StreamResponse:
        svc, name = request.match_info["service"], request.match_info["name"]
        spec.DeviceModel.lookup(svc, name)
        value = await asyncio.get_running_loop().run_in_executor(None, self.svc.model.get, svc, name)
        return web.json_response({"service": svc, "property": name, "value": value})

    async def put_property(self, request: web.Request) -> web.StreamResponse:
        svc, name = request.match_info["service"], request.match_info["name"]
        spec.DeviceModel.lookup(svc, name)
        body = await _json_body(request)
        if not isinstance(body, dict) or set(body) != {"value"}:
            raise spec.SpecError('expected {"value": ...}')
        value = self.svc.model.set(svc, name, body["value"])
        return web.json_response({"service": svc, "property": name, "value": value})

    async def action(self, request: web.Request) -> web.StreamResponse:
        svc_name, name = request.match_info["service"], request.match_info["name"]
        svc = spec.SERVICE_MAP.get(svc_name)
        action = svc.action(name) if svc else None
        if action is None:
            raise KeyError(f"service {svc_name!r} has no action {name!r}")
        params = spec.validate_params(action, await _json_body(request))
        result = await self.svc.action(svc_name, name, params)
        return web.json_response({"service": svc_name, "action": name, "result": result})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: property changes, motion, recordings."""
        bus = self.svc.bus
        assert bus is not None
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        q = bus.subscribe()
        self.svc.clients += 1
        try:
            await resp.write(b": pycam events\n\n")
            while True:
                try:
                    ev = await asyncio.wait_for(q.get(), SSE_HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                line = f"id: {ev['id']}\nevent: {ev['event']}\ndata: {json.dumps(ev)}\n\n"
                await resp.write(line.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            bus.unsubscribe(q)
            self.svc.clients -= 1
        return resp

    async def recent_events(self, request: web.Request) -> web.StreamResponse:
        bus = self.svc.bus
        return web.json_response({"events": list(bus.recent) if bus else []})

    async def motion_events(self, request: web.Request) -> web.StreamResponse:
        start = _number(request, "from", lo=0, hi=1e11)
        end = _number(request, "to", lo=0, hi=1e11)
        limit = _int(request, "limit", 100, 1, 1000)
        offset = _int(request, "offset", 0, 0, 10**9)
        rows = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.svc.index.events(start, end, limit, offset)
        )
        return web.json_response({"events": rows})

    async def recordings(self, request: web.Request) -> web.StreamResponse:
        start = _number(request, "from", lo=0, hi=1e11)
        end = _number(request, "to", lo=0, hi=1e11)
        kind = request.query.get("kind")
        if kind is not None and kind not in ("event", "manual", "continuous"):
            raise spec.SpecError("query parameter kind: expected event, manual or continuous")
        limit = _int(request, "limit", 100, 1, 1000)
        offset = _int(request, "offset", 0, 0, 10**9)
        rows = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.svc.index.list(start, end, kind, limit, offset)
        )
        return web.json_response({"recordings": rows})

    async def _row(self, request: web.Request) -> dict[str, Any]:
        rec_id = _rec_id(request)
        row = await asyncio.get_running_loop().run_in_executor(None, self.svc.index.get, rec_id)
        if row is None:
            raise KeyError(f"no recording {rec_id}")
        return row

    async def recording(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self._row(request))

    async def delete_recording(self, request: web.Request) -> web.StreamResponse:
        row = await self._row(request)
        if row["state"] != "closed":
            return web.json_response({"error": "recording in progress"}, status=409)
        from .. import retention

        await asyncio.get_running_loop().run_in_executor(
            None, retention.remove, self.svc.index, self.svc.recordings_dir, row
        )
        return web.json_response({"deleted": row["id"]})

    async def recording_video(self, request: web.Request) -> web.StreamResponse:
        row = await self._row(request)
        path = self.svc.recordings_dir / row["path"]
        if not path.is_file():
            raise KeyError(f"recording {row['id']} has no file")
        # FileResponse serves Range requests, so the browser can seek in long segments.
        return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"})
