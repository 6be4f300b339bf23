"""Service configuration: a TOML file validated into typed, frozen sections.

Every key has a default, so a missing file runs the service with built-in defaults. A bad key or value
raises ConfigError naming the key and what is allowed, so a board file typo fails loudly at start.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


def _opt(
    default: Any,
    *,
    choices: tuple[Any, ...] | None = None,
    min: float | None = None,
    max: float | None = None,
    doc: str = "",
) -> Any:
    return field(default=default, metadata={"choices": choices, "min": min, "max": max, "doc": doc})


@dataclass(frozen=True)
class CaptureConfig:
    source: str = _opt(
        "auto",
        choices=("auto", "picamera2", "v4l2", "v4l2-ffmpeg", "synthetic"),
        doc="capture backend; auto = picamera2 if a camera exists, else V4L2 if the device exists, else synthetic; "
        "v4l2-ffmpeg reads V4L2 through FFmpeg's demuxer (more buffers, more memory)",
    )
    device: str = _opt("/dev/video0", doc="V4L2 device path")
    input_format: str = _opt(
        "",
        doc="V4L2 pixel format to ask for (e.g. yuyv422, mjpeg); empty = the first the camera offers of "
        "yuv420p, nv12, yuyv422, uyvy422, mjpeg, gray, rgb24, bgr24",
    )


@dataclass(frozen=True)
class StreamConfig:
    width: int = _opt(1920, min=64, max=4096, doc="encoded width in pixels (even)")
    height: int = _opt(1080, min=64, max=4096, doc="encoded height in pixels (even)")
    fps: float = _opt(20.0, min=0.5, max=60, doc="frames per second")
    bitrate: int = _opt(2_000_000, min=50_000, max=50_000_000, doc="target bit rate, bits per second")
    keyframe_interval: float = _opt(2.0, min=0.2, max=10, doc="seconds between keyframes")


def _main_default() -> StreamConfig:
    return StreamConfig()


def _sub_default() -> StreamConfig:
    return StreamConfig(width=640, height=360, fps=10.0, bitrate=400_000, keyframe_interval=2.0)


@dataclass(frozen=True)
class EncoderConfig:
    name: str = _opt(
        "auto",
        choices=("auto", "h264_v4l2m2m", "libx264"),
        doc="H.264 encoder; auto = the hardware encoder if it opens, else libx264",
    )
    preset: str = _opt(
        "ultrafast", choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"), doc="libx264 preset"
    )
    threads: int = _opt(1, min=0, max=16, doc="libx264 threads per stream (0 = auto)")


@dataclass(frozen=True)
class WebConfig:
    bind: str = _opt("0.0.0.0", doc="listen address")
    port: int = _opt(8080, min=0, max=65535, doc="listen port (HTTP, or HTTPS when TLS is active; 0 = any free)")
    tls: str = _opt("auto", choices=("auto", "on", "off"), doc="auto = HTTPS when the device certificate and key exist")
    cert: str = _opt("/factory/device.crt", doc="device certificate (PEM)")
    key: str = _opt("/factory/device.key", doc="device private key (PEM)")

    def tls_wanted(self) -> bool:
        """Whether the server will serve HTTPS: tls = on, or auto and the certificate and key exist."""
        if self.tls == "off":
            return False
        return self.tls == "on" or (Path(self.cert).is_file() and Path(self.key).is_file())


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = _opt("/data/app", doc="writable directory for recordings, index, settings, credentials")
    min_free_mb: int = _opt(64, min=0, max=1_000_000, doc="retention: delete oldest recordings below this")
    min_free_percent: float = _opt(5.0, min=0, max=90, doc="retention: also keep this share of the disk free")
    max_age_days: int = _opt(0, min=0, max=3650, doc="delete recordings older than this (0 = no limit)")


@dataclass(frozen=True)
class RecordingConfig:
    events: bool = _opt(True, doc="record a clip for every motion event")
    continuous: bool = _opt(False, doc="record continuous segments")
    segment_s: int = _opt(60, min=5, max=3600, doc="continuous segment length, seconds")
    stream: str = _opt("main", choices=("main", "sub"), doc="stream recorded")
    pre_roll_s: float = _opt(6.0, min=0, max=30, doc="seconds of video kept before an event")
    post_roll_s: float = _opt(8.0, min=0, max=120, doc="seconds recorded after the last motion")
    max_clip_s: float = _opt(120.0, min=5, max=3600, doc="longest event clip, seconds")


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool = _opt(True, doc="motion detection on the sub stream (default; changeable in the API)")
    sensitivity: str = _opt("medium", choices=("low", "medium", "high"), doc="default sensitivity")
    fps: float = _opt(5.0, min=0.5, max=30, doc="analysis rate, frames per second")
    cooldown_s: float = _opt(3.0, min=0, max=600, doc="quiet time before a new motion event")


@dataclass(frozen=True)
class AuthConfig:
    username: str = _opt("admin", doc="user name when the factory identity names none")
    max_failures: int = _opt(5, min=1, max=1000, doc="failed logins per client before a lockout")
    lockout_s: float = _opt(60.0, min=1, max=86400, doc="lockout length, seconds")
    session_ttl_s: float = _opt(12 * 3600.0, min=60, max=30 * 86400, doc="session cookie lifetime")


@dataclass(frozen=True)
class HardwareConfig:
    indicator_led: str = _opt("", doc="sysfs brightness file of the status LED (empty = none)")
    ir_led: str = _opt("", doc="sysfs brightness file of the IR illuminator (empty = none)")
    ir_cut: str = _opt("", doc="sysfs value file of the IR-cut filter switch (empty = none)")


@dataclass(frozen=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    main: StreamConfig = field(default_factory=_main_default)
    sub: StreamConfig = field(default_factory=_sub_default)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    web: WebConfig = field(default_factory=WebConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    factory_dir: str = _opt("/factory", doc="read-only factory partition with the device identity")
    runtime_dir: str = _opt("/run/pycam-app", doc="runtime files (endpoint for pycam-health)")
    log_level: str = _opt("info", choices=("debug", "info", "warning", "error"), doc="log level")

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)


_SECTION_TYPES = {"main": StreamConfig, "sub": StreamConfig}


def _check_value(key: str, f: dataclasses.Field[Any], ftype: Any, value: Any) -> Any:
    meta = f.metadata
    raw = value
    if ftype is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif ftype is str and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key}: {raw!r} is not one of {', '.join(map(str, choices))}")
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{key}: {raw!r} is out of range {lo}..{hi}")
    return value


def _build(cls: type[Any], data: dict[str, Any], prefix: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.')}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]}; allowed: {', '.join(sorted(fields))}")
    base = base if base is not None else cls()
    values: dict[str, Any] = {}
    for name, value in data.items():
        ftype = hints[name]
        key = prefix + name
        if isinstance(ftype, type) and dataclasses.is_dataclass(ftype):
            values[name] = _build(ftype, value, key + ".", getattr(base, name))
        elif isinstance(ftype, types.UnionType):  # pragma: no cover - no optional keys yet
            raise ConfigError(f"{key}: unsupported type")
        else:
            values[name] = _check_value(key, fields[name], ftype, value)
    return dataclasses.replace(base, **values)


def _check_stream(name: str, s: StreamConfig) -> None:
    if s.width % 2 or s.height % 2:
        raise ConfigError(f"{name}.width/{name}.height: must be even for YUV 4:2:0, got {s.width}x{s.height}")


def from_dict(data: dict[str, Any]) -> Config:
    cfg: Config = _build(Config, data, "")
    _check_stream("main", cfg.main)
    _check_stream("sub", cfg.sub)
    if cfg.sub.width > cfg.main.width or cfg.sub.height > cfg.main.height:
        raise ConfigError("sub.width/sub.height: the sub stream cannot be larger than the main stream")
    return cfg


def load(path: str | Path | None) -> Config:
    """Load the TOML file at path; a missing file (or None) gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from e
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from e
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from e


def describe() -> list[tuple[str, str, Any, str]]:
    """(key, type, default, doc) for every key: the README table and `pycam-app --print-config` use it."""
    rows: list[tuple[str, str, Any, str]] = []

    def walk(cls: type[Any], inst: Any, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            t = hints[f.name]
            if isinstance(t, type) and dataclasses.is_dataclass(t):
                walk(t, getattr(inst, f.name), prefix + f.name + ".")
            else:
                meta = f.metadata
                tname = " | ".join(f'"{c}"' for c in meta["choices"]) if meta.get("choices") else t.__name__
                rows.append((prefix + f.name, tname, getattr(inst, f.name), meta.get("doc", "")))

    walk(Config, Config(), "")
    return rows


def to_toml(cfg: Config) -> str:
    """Render a config as TOML (used to write app/config/default.toml and by --print-config)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    top: list[str] = []
    sections: list[str] = []
    for f in dataclasses.fields(Config):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            sections.append(f"\n[{f.name}]")
            for sf in dataclasses.fields(v):
                doc = sf.metadata.get("doc", "")
                sections.append(f"{sf.name} = {fmt(getattr(v, sf.name))}" + (f"  # {doc}" if doc else ""))
        else:
            doc = f.metadata.get("doc", "")
            top.append(f"{f.name} = {fmt(v)}" + (f"  # {doc}" if doc else ""))
    return "\n".join(top + sections) + "\n"
