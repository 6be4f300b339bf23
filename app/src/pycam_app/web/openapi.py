"""OpenAPI 3.0 description of the HTTP API, generated from the device model (spec.py) and the routes.

Each property and action gets its own path, so the schemas are exact (enum values, ranges) and a fuzzer
can derive valid and invalid requests from them. The WebSocket live stream is described in prose only
(OpenAPI has no WebSocket operations).
"""

from __future__ import annotations

from typing import Any

from .. import __version__, spec

JSON = "application/json"


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
OBJ = {"type": "object"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid request",
        401: "authentication required",
        403: "forbidden",
        404: "not found",
        409: "conflict",
        429: "too many failed logins",
        503: "not ready",
    }
    return {str(c): _json(ERROR, text[c]) for c in codes}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    public: bool = False,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    tag: str = "device",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if public:
        op["security"] = []
    else:
        op["responses"].update(_errors(401))
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
        op["responses"].update(_errors(400))
    if params:
        op["parameters"] = params
        op["responses"].update(_errors(400))
    return op


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


HEALTH = {
    "type": "object",
    "required": ["status", "frames", "fps", "first_frame_boottime_s", "encoder", "source", "clients", "recording"],
    "properties": {
        "status": {"type": "string", "enum": ["starting", "ok", "stalled"]},
        "version": {"type": "string"},
        "frames": {"type": "integer", "description": "main stream frame counter"},
        "fps": {"type": "object", "additionalProperties": {"type": "number"}, "description": "per stream"},
        "first_frame_boottime_s": {
            "type": "number",
            "nullable": True,
            "description": "CLOCK_BOOTTIME when the first frame was captured",
        },
        "boottime_s": {"type": "number"},
        "uptime_s": {"type": "number"},
        "encoder": {"type": "string"},
        "source": {"type": "string"},
        "clients": {"type": "integer"},
        "recording": {"type": "boolean"},
        "streams": {"type": "object"},
        "pipeline_restarts": {"type": "integer"},
        "last_error": {"type": "string"},
    },
}

RECORDING = {
    "type": "object",
    "properties": {
        k: {"type": t, "nullable": True}
        for k, t in (
            ("id", "integer"),
            ("path", "string"),
            ("kind", "string"),
            ("stream", "string"),
            ("start", "number"),
            ("end", "number"),
            ("duration", "number"),
            ("frames", "integer"),
            ("bytes", "integer"),
            ("first_frame_no", "integer"),
            ("trigger_frame_no", "integer"),
            ("state", "string"),
        )
    },
}

TIME_RANGE = [
    _query("from", {"type": "number", "minimum": 0, "maximum": 1e11}, "Unix time, inclusive"),
    _query("to", {"type": "number", "minimum": 0, "maximum": 1e11}, "Unix time, exclusive"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)"),
    _query("offset", {"type": "integer", "minimum": 0}, "rows to skip"),
]
REC_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/health": {
            "get": _op(
                "health: frames, fps per stream, first-frame time, encoder, clients",
                {"200": _json(HEALTH)},
                public=True,
                tag="system",
            )
        },
        "/api/status": {"get": _op("minimal status", {"200": _json(OBJ)}, public=True, tag="system")},
        "/api/login": {
            "post": _op(
                "log in; sets the session cookie",
                {"200": _json(OBJ), **_errors(401, 429)},
                public=True,
                tag="auth",
                body={
                    "type": "object",
                    "required": ["username", "password"],
                    "additionalProperties": False,
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                },
            )
        },
        "/api/logout": {"post": _op("end the session", {"200": _json(OBJ)}, tag="auth")},
        "/api/session": {"get": _op("who is logged in", {"200": _json(OBJ)}, tag="auth")},
        "/api/password": {
            "post": _op(
                "change the password (ends all sessions)",
                {"200": _json(OBJ), **_errors(403)},
                tag="auth",
                body={
                    "type": "object",
                    "required": ["current", "new"],
                    "additionalProperties": False,
                    "properties": {"current": {"type": "string"}, "new": {"type": "string", "minLength": 8}},
                },
            )
        },
        "/api/spec": {"get": _op("the device model: services, properties, actions, events", {"200": _json(OBJ)})},
        "/api/properties": {"get": _op("every property value by service", {"200": _json(OBJ)})},
        "/api/events": {
            "get": {
                **_op(
                    "server-sent events (text/event-stream): property changes, motion, recordings",
                    {"200": {"description": "event stream", "content": {"text/event-stream": {}}}},
                    tag="events",
                ),
                "x-streaming": True,
            }
        },
        "/api/events/recent": {"get": _op("the last 100 events", {"200": _json(OBJ)}, tag="events")},
        "/api/motion-events": {
            "get": _op("motion events from the index", {"200": _json(OBJ)}, params=TIME_RANGE, tag="events")
        },
        "/api/recordings": {
            "get": _op(
                "recordings in a time range, newest first",
                {"200": _json(OBJ)},
                tag="recordings",
                params=[
                    *TIME_RANGE,
                    _query("kind", {"type": "string", "enum": ["event", "manual", "continuous"]}, "recording kind"),
                ],
            )
        },
        "/api/recordings/{id}": {
            "get": _op("one recording", {"200": _json(RECORDING), **_errors(404)}, params=[REC_ID], tag="recordings"),
            "delete": _op(
                "delete a recording", {"200": _json(OBJ), **_errors(404, 409)}, params=[REC_ID], tag="recordings"
            ),
        },
        "/api/recordings/{id}/video": {
            "get": _op(
                "the recording as fragmented MP4 (Range requests supported)",
                {"200": {"description": "MP4", "content": {"video/mp4": {}}}, **_errors(404)},
                params=[REC_ID],
                tag="recordings",
            )
        },
        "/snapshot.jpg": {
            "get": _op(
                "JPEG snapshot",
                {"200": {"description": "JPEG", "content": {"image/jpeg": {}}}, **_errors(404, 503)},
                params=[_query("stream", {"type": "string", "enum": ["main", "sub"]}, "stream (default main)")],
                tag="live",
            )
        },
        "/api/mjpeg": {
            "get": {
                **_op(
                    "MJPEG stream of the sub stream (multipart/x-mixed-replace)",
                    {"200": {"description": "MJPEG", "content": {"multipart/x-mixed-replace": {}}}},
                    tag="live",
                ),
                "x-streaming": True,
            }
        },
    }
    for svc in spec.SERVICES:
        for p in svc.properties:
            path = f"/api/services/{svc.name}/properties/{p.name}"
            value = {
                "type": "object",
                "properties": {"service": {"type": "string"}, "property": {"type": "string"}, "value": p.schema()},
            }
            ops: dict[str, Any] = {"get": _op(f"{svc.name}: {p.description}", {"200": _json(value)})}
            if p.writable:
                ops["put"] = _op(
                    f"set {svc.name}.{p.name}",
                    {"200": _json(value)},
                    body={
                        "type": "object",
                        "required": ["value"],
                        "additionalProperties": False,
                        "properties": {"value": p.schema()},
                    },
                )
            paths[path] = ops
        for a in svc.actions:
            body = {
                "type": "object",
                "additionalProperties": False,
                "properties": {pa.name: pa.prop.schema() for pa in a.params},
            }
            required = [pa.name for pa in a.params if pa.required]
            if required:
                body["required"] = required
            paths[f"/api/services/{svc.name}/actions/{a.name}"] = {
                "post": _op(f"{svc.name}: {a.description}", {"200": _json(OBJ)}, body=body)
            }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pycam camera API",
            "version": __version__,
            "description": "Device API after the SPEC model (services with properties, actions, events). "
            "Live H.264: WebSocket /api/live/{main|sub} sends a JSON init message, an MP4 "
            "init segment, then one fragment per frame (for Media Source Extensions).",
        },
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "pycam_session"},
            }
        },
        "security": [{"basicAuth": []}, {"cookieAuth": []}],
        "paths": paths,
    }
