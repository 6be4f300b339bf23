"""The client's configuration: rauc-hawkbit-updater's config.conf format, plus a [pycam] section.

The same file drives the real rauc-hawkbit-updater on the Yocto image ([client] and [device]
are its sections; it ignores [pycam]). Search order (contracts.md): the factory-provisioned
file, the product default in the root, a development file on /data.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

SEARCH_PATH = (
    Path("/factory/ota/hawkbit.conf"),
    Path("/etc/pycam/hawkbit.conf"),
    Path("/data/pycam/hawkbit.conf"),
)
DEFAULT_DOWNLOAD = "/data/pycam/ota/bundle.raucb"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Config:
    path: Path
    hawkbit_server: str = ""  # host[:port]; empty: no hawkBit, use the static index
    ssl: bool = True
    ssl_verify: bool = True
    tenant_id: str = "DEFAULT"
    target_name: str = ""
    auth_token: str = ""
    gateway_token: str = ""
    ssl_key: str = ""
    ssl_cert: str = ""
    bundle_download_location: str = DEFAULT_DOWNLOAD
    stream_bundle: bool = False
    retry_wait: int = 300
    connect_timeout: int = 20
    timeout: int = 60
    post_update_reboot: bool = True
    send_download_authentication: bool = True
    device: dict[str, str] = field(default_factory=dict)
    # [pycam]: the static index written by `pycam publish --to DIR`, served over HTTP(S)
    index_url: str = ""
    index_poll: int = 3600
    ca_file: str = ""
    health_unit: str = "pycam-health-gate.service"
    state_dir: str = "/data/pycam/ota"

    @property
    def mode(self) -> str:
        if self.hawkbit_server:
            return "hawkbit"
        if self.index_url:
            return "index"
        return "none"

    @property
    def controller_base(self) -> str:
        scheme = "https" if self.ssl else "http"
        return f"{scheme}://{self.hawkbit_server}/{self.tenant_id}/controller/v1/{self.target_name}"

    def auth_header(self) -> dict[str, str]:
        if self.auth_token:
            return {"Authorization": f"TargetToken {self.auth_token}"}
        if self.gateway_token:
            return {"Authorization": f"GatewayToken {self.gateway_token}"}
        return {}


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _bool(section: configparser.SectionProxy, key: str, default: bool, path: Path) -> bool:
    raw = section.get(key)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{path}: [{section.name}] {key} = {raw!r} is not a boolean (write true or false)")


def _int(section: configparser.SectionProxy, key: str, default: int, path: Path) -> int:
    raw = section.get(key)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{path}: [{section.name}] {key} = {raw!r} is not a whole number") from None


def parse(path: Path, text: str) -> Config:
    # GKeyFile semantics: no interpolation, no inline comments, keys case-sensitive
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"), inline_comment_prefixes=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        ini.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not in key-file format: {exc}") from None
    if not ini.has_section("client"):
        raise ConfigError(f"{path}: no [client] section (rauc-hawkbit-updater's config.conf format)")
    c = ini["client"]
    p = ini["pycam"] if ini.has_section("pycam") else ini["DEFAULT"]
    cfg = Config(
        path=path,
        hawkbit_server=c.get("hawkbit_server", "").strip(),
        ssl=_bool(c, "ssl", True, path),
        ssl_verify=_bool(c, "ssl_verify", True, path),
        tenant_id=c.get("tenant_id", "DEFAULT").strip(),
        target_name=c.get("target_name", "").strip(),
        auth_token=c.get("auth_token", "").strip(),
        gateway_token=c.get("gateway_token", "").strip(),
        ssl_key=c.get("ssl_key", "").strip(),
        ssl_cert=c.get("ssl_cert", "").strip(),
        bundle_download_location=c.get("bundle_download_location", DEFAULT_DOWNLOAD).strip() or DEFAULT_DOWNLOAD,
        stream_bundle=_bool(c, "stream_bundle", False, path),
        retry_wait=_int(c, "retry_wait", 300, path),
        connect_timeout=_int(c, "connect_timeout", 20, path),
        timeout=_int(c, "timeout", 60, path),
        post_update_reboot=_bool(c, "post_update_reboot", True, path),
        send_download_authentication=_bool(c, "send_download_authentication", True, path),
        device=dict(ini["device"]) if ini.has_section("device") else {},
        index_url=p.get("index_url", "").strip(),
        index_poll=_int(p, "index_poll", 3600, path),
        ca_file=p.get("ca_file", "").strip(),
        health_unit=p.get("health_unit", "pycam-health-gate.service").strip(),
        state_dir=p.get("state_dir", "/data/pycam/ota").strip(),
    )
    if cfg.hawkbit_server:
        if not cfg.target_name:
            raise ConfigError(f"{path}: [client] hawkbit_server is set but target_name (the controller id) is not")
        if not (cfg.auth_token or cfg.gateway_token or (cfg.ssl_key and cfg.ssl_cert)):
            raise ConfigError(f"{path}: hawkBit needs auth_token, gateway_token or ssl_key + ssl_cert in [client]")
    return cfg


def find(search: tuple[Path, ...] = SEARCH_PATH) -> Config:
    for path in search:
        if path.is_file():
            try:
                return parse(path, path.read_text())
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    raise ConfigError("no OTA configuration: none of " + ", ".join(map(str, search)) + " exists")
