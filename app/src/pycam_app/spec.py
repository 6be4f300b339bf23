"""The device model after seed 002's SPEC: services with properties, actions and events.

Properties are typed and validated here, so the web layer, the OpenAPI description and the settings file
share one definition. Writable values persist in <data_dir>/settings.json (written atomically); read-only
values come from getters supplied by the service.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_AREAS = 8


class SpecError(ValueError):
    """A property or action argument is invalid; the message says what is allowed."""


@dataclass(frozen=True)
class Prop:
    name: str
    type: str  # bool | enum | int | number | string | areas
    description: str
    writable: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def schema(self) -> dict[str, Any]:
        """JSON Schema of the value."""
        if self.type == "bool":
            return {"type": "boolean"}
        if self.type == "enum":
            return {"type": "string", "enum": list(self.choices)}
        if self.type in ("int", "number"):
            s: dict[str, Any] = {"type": "integer" if self.type == "int" else "number"}
            if self.minimum is not None:
                s["minimum"] = self.minimum
            if self.maximum is not None:
                s["maximum"] = self.maximum
            return s
        if self.type == "areas":
            unit = {"type": "number", "minimum": 0, "maximum": 1}
            return {
                "type": "array",
                "maxItems": MAX_AREAS,
                "description": "rectangles in frame fractions; empty = whole frame",
                "items": {
                    "type": "object",
                    "required": ["x", "y", "w", "h"],
                    "additionalProperties": False,
                    "properties": {"x": unit, "y": unit, "w": unit, "h": unit},
                },
            }
        return {"type": "string"}

    def validate(self, value: Any) -> Any:
        where = self.name
        if self.type == "bool":
            if not isinstance(value, bool):
                raise SpecError(f"{where}: expected true or false")
            return value
        if self.type == "enum":
            if value not in self.choices:
                raise SpecError(f"{where}: expected one of {', '.join(self.choices)}")
            return value
        if self.type in ("int", "number"):
            ok = isinstance(value, int) if self.type == "int" else isinstance(value, int | float)
            if isinstance(value, bool) or not ok or value != value:
                raise SpecError(f"{where}: expected {'an integer' if self.type == 'int' else 'a number'}")
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise SpecError(f"{where}: must be within {self.minimum}..{self.maximum}")
            return value
        if self.type == "areas":
            return validate_areas(value, where)
        if not isinstance(value, str) or len(value) > 256:
            raise SpecError(f"{where}: expected a string of at most 256 characters")
        return value


def validate_areas(value: Any, where: str = "detection-area") -> list[dict[str, float]]:
    if not isinstance(value, list) or len(value) > MAX_AREAS:
        raise SpecError(f"{where}: expected a list of at most {MAX_AREAS} rectangles")
    out = []
    for i, r in enumerate(value):
        if not isinstance(r, dict) or set(r) != {"x", "y", "w", "h"}:
            raise SpecError(f"{where}[{i}]: expected an object with exactly x, y, w, h")
        vals = {}
        for k in ("x", "y", "w", "h"):
            v = r[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise SpecError(f"{where}[{i}].{k}: expected a number within 0..1")
            vals[k] = float(v)
        if vals["w"] <= 0 or vals["h"] <= 0 or vals["x"] + vals["w"] > 1 or vals["y"] + vals["h"] > 1:
            raise SpecError(f"{where}[{i}]: rectangle must have a positive size and lie inside the frame")
        out.append(vals)
    return out


@dataclass(frozen=True)
class Param:
    name: str
    prop: Prop
    required: bool = False


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class Event:
    name: str
    description: str


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    properties: tuple[Prop, ...] = ()
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.properties if p.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)


SERVICES: tuple[Service, ...] = (
    Service(
        "device-information",
        "identity and firmware (read-only)",
        properties=(
            Prop("serial-number", "string", "serial from the factory identity (empty if unprovisioned)", False),
            Prop("model", "string", "model from the factory identity", False),
            Prop("firmware-version", "string", "camera application version", False),
        ),
    ),
    Service(
        "camera-control",
        "picture and recording control",
        properties=(
            Prop("on", "bool", "camera on; off = privacy mode (black picture, no motion detection)"),
            Prop("night-shot", "enum", "night vision: IR illuminator and grey picture", choices=("auto", "on", "off")),
            Prop("watermark", "bool", "date and time in the picture"),
            Prop("continuous-recording", "bool", "record continuous segments"),
            Prop("recording", "bool", "a clip or segment is being written", False),
        ),
        actions=(
            Action(
                "start-recording",
                "start a manual clip",
                (
                    Param(
                        "duration",
                        Prop("duration", "number", "seconds (default: recording.max_clip_s)", minimum=1, maximum=3600),
                    ),
                ),
            ),
            Action("stop-recording", "stop the manual clip"),
            Action("snapshot", "take a JPEG snapshot (the result names the URL to fetch it)"),
        ),
        events=(
            Event("recording-started", "a recording was opened"),
            Event("recording-stopped", "a recording was closed"),
        ),
    ),
    Service(
        "motion-detection",
        "frame differencing on the sub stream",
        properties=(
            Prop("enabled", "bool", "motion detection on"),
            Prop("sensitivity", "enum", "how small a change counts as motion", choices=("low", "medium", "high")),
            Prop("detection-area", "areas", "zones watched for motion (empty = whole frame)"),
            Prop("motion", "bool", "motion is currently detected", False),
        ),
        actions=(Action("trigger", "raise a motion event now (self-test)"),),
        events=(
            Event("motion-detected", "motion started (data: score, frame)"),
            Event("motion-ended", "motion ended"),
        ),
    ),
    Service(
        "storage",
        "recordings storage",
        properties=(
            Prop("status", "enum", "storage state", False, choices=("normal", "low-space", "unavailable")),
            Prop("total-bytes", "int", "size of the data filesystem", False),
            Prop("free-bytes", "int", "free space on the data filesystem", False),
            Prop("recordings-bytes", "int", "space used by recordings", False),
            Prop("recordings", "int", "number of recordings", False),
        ),
        actions=(
            Action(
                "format",
                "delete every recording and reset the index",
                (Param("confirm", Prop("confirm", "bool", "must be true"), required=True),),
            ),
        ),
        events=(Event("recording-deleted", "retention removed old recordings"),),
    ),
    Service("indicator-light", "status LED", properties=(Prop("on", "bool", "status LED on"),)),
)

SERVICE_MAP = {s.name: s for s in SERVICES}

# Defaults of writable properties; motion defaults come from the config.
DEFAULTS: dict[str, Any] = {
    "camera-control.on": True,
    "camera-control.night-shot": "auto",
    "camera-control.watermark": True,
    "camera-control.continuous-recording": False,
    "motion-detection.enabled": True,
    "motion-detection.sensitivity": "medium",
    "motion-detection.detection-area": [],
    "indicator-light.on": True,
}


Getter = Callable[[], Any]
Listener = Callable[[str, Any], None]


@dataclass
class DeviceModel:
    """Current property values: persisted settings plus live getters."""

    path: Path | None
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    getters: dict[str, Getter] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values: dict[str, Any] = dict(self.defaults)
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            stored = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("%s unreadable (%s): using defaults", self.path, e)
            return
        if not isinstance(stored, dict):
            return
        for key, value in stored.items():
            svc, _, name = key.partition(".")
            p = SERVICE_MAP[svc].prop(name) if svc in SERVICE_MAP else None
            if p is None or not p.writable:
                continue
            try:
                self.values[key] = p.validate(value)
            except SpecError as e:
                log.warning("settings: ignoring %s", e)

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.values, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    @staticmethod
    def lookup(service: str, name: str) -> Prop:
        svc = SERVICE_MAP.get(service)
        if svc is None:
            raise KeyError(f"no service {service!r}")
        p = svc.prop(name)
        if p is None:
            raise KeyError(f"service {service!r} has no property {name!r}")
        return p

    def get(self, service: str, name: str) -> Any:
        self.lookup(service, name)
        key = f"{service}.{name}"
        getter = self.getters.get(key)
        return getter() if getter is not None else self.values.get(key)

    def set(self, service: str, name: str, value: Any) -> Any:
        p = self.lookup(service, name)
        if not p.writable:
            raise SpecError(f"{service}.{name} is read-only")
        value = p.validate(value)
        key = f"{service}.{name}"
        changed = self.values.get(key) != value
        self.values[key] = value
        if changed:
            self._save()
            for fn in self.listeners:
                fn(key, value)
        return value

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {s.name: {p.name: self.get(s.name, p.name) for p in s.properties} for s in SERVICES}


def describe() -> list[dict[str, Any]]:
    """The model as JSON (GET /api/spec)."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "properties": [
                {
                    "name": p.name,
                    "description": p.description,
                    "access": "rw" if p.writable else "r",
                    "schema": p.schema(),
                }
                for p in s.properties
            ],
            "actions": [
                {
                    "name": a.name,
                    "description": a.description,
                    "params": [
                        {
                            "name": pa.name,
                            "required": pa.required,
                            "schema": pa.prop.schema(),
                            "description": pa.prop.description,
                        }
                        for pa in a.params
                    ],
                }
                for a in s.actions
            ],
            "events": [{"name": e.name, "description": e.description} for e in s.events],
        }
        for s in SERVICES
    ]


def validate_params(action: Action, body: Any) -> dict[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise SpecError(f"{action.name}: parameters must be a JSON object")
    known = {p.name: p for p in action.params}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise SpecError(f"{action.name}: unknown parameter {unknown[0]!r}; allowed: {', '.join(known) or 'none'}")
    out = {}
    for name, p in known.items():
        if name in body:
            out[name] = p.prop.validate(body[name])
        elif p.required:
            raise SpecError(f"{action.name}: parameter {name!r} is required")
    return out
