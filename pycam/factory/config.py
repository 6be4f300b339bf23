"""factory/line.yml: the line configuration, checked on load (bad values name the key and the fix)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pycam import ROOT
from pycam.errors import PycamError
from pycam.factory.ids import DidFormat, MacBlock

DEFAULT_LINE = ROOT / "factory" / "line.yml"


@dataclass(frozen=True)
class Limits:
    video_min_mean_luma: float = 16.0
    video_min_stddev_luma: float = 8.0
    video_min_changed_pct: float = 0.01
    network_min_mbit_s: float = 10.0
    network_bytes: int = 4 * 1024 * 1024
    storage_min_mb_s: float = 10.0
    storage_mb: int = 16
    clock_max_skew_s: float = 5.0
    firmware_version: str = ""


@dataclass(frozen=True)
class OtaSettings:
    hawkbit_server: str = "hawkbit.example.com:443"
    ssl: bool = True
    ssl_verify: bool = True
    tenant_id: str = "DEFAULT"
    bundle_download_location: str = "/data/pycam/bundle.raucb"
    register: bool = False
    management_url: str = ""
    management_user_env: str = "HAWKBIT_USER"
    management_password_env: str = "HAWKBIT_PASSWORD"


@dataclass(frozen=True)
class LineConfig:
    model: str
    hw_revision: str
    board: str
    did: DidFormat
    mac: MacBlock
    station: str
    database: str
    output: Path
    ca: Path
    device_cert_days: int
    device_address: str
    admin_user: str
    ota: OtaSettings
    limits: Limits
    source: Path = field(default=DEFAULT_LINE)


def _section(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise PycamError(f"{path}: `{name}` must be a mapping", "see factory/README.md for the line configuration")
    return value


def _fields(cls: type, values: dict[str, Any], section: str, path: Path) -> Any:
    known = cls.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise PycamError(f"{path}: unknown key(s) in `{section}`: {', '.join(unknown)}",
                         f"known keys: {', '.join(known)}")
    out = {}
    for key, value in values.items():
        want = type(known[key].default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
            kind = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}[want]
            raise PycamError(f"{path}: `{section}.{key}` must be {kind}, got {value!r}",
                             "see factory/README.md for the line configuration")
        out[key] = value
    return cls(**out)


def _resolve(value: str, base: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def load_line(path: Path | None = None, root: Path = ROOT) -> LineConfig:
    path = path or DEFAULT_LINE
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise PycamError(f"no line configuration at {path}", "copy factory/line.yml and edit it") from e
    except yaml.YAMLError as e:
        raise PycamError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise PycamError(f"{path} is not a mapping", "see factory/line.yml for the expected layout")
    product = _section(doc, "product", path)
    did = _section(doc, "did", path)
    mac = _section(doc, "mac", path)
    station = _section(doc, "station", path)
    try:
        did_format = DidFormat(prefix=str(did.get("prefix", "PCAM")), line=str(did.get("line", "01")),
                               digits=int(did.get("digits", 8)), first=int(did.get("first", 1)))
        mac_block = MacBlock.parse(mac)
    except ValueError as e:
        raise PycamError(f"{path}: {e}", "see factory/README.md: DID format and MAC block") from e
    name = str(station.get("name", "station-1"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        raise PycamError(f"{path}: station.name {name!r} is not a plain name", "letters, digits, '.', '_', '-'")
    database = str(station.get("database", "factory/station.db"))
    if not database.startswith(("postgresql://", "postgres://")):
        database = str(_resolve(database, root))
    return LineConfig(
        model=str(product.get("model", "PYCAM")),
        hw_revision=str(product.get("hw_revision", "1")),
        board=str(product.get("board", "qemuarm64")),
        did=did_format,
        mac=mac_block,
        station=name,
        database=database,
        output=_resolve(str(station.get("output", "factory/out")), root),
        ca=_resolve(str(station.get("ca", "keys/factory")), root),
        device_cert_days=int(station.get("device_cert_days", 7300)),
        device_address=str(station.get("device_address", "10.0.2.2")),
        admin_user=str(station.get("admin_user", "admin")),
        ota=_fields(OtaSettings, _section(doc, "ota", path), "ota", path),
        limits=_fields(Limits, _section(doc, "selftest", path), "selftest", path),
        source=path,
    )
