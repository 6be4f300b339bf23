"""hawkBit's Direct Device Integration API (DDI v1), the subset a RAUC device uses.

GET  {base}                                   controller base: polling sleep and links
PUT  {base}/configData                        target attributes ([device] of the config)
GET  {base}/deploymentBase/{id}               the action: chunks, artifacts, download/update mode
POST {base}/deploymentBase/{id}/feedback      DdiActionFeedback: status.execution / result.finished
GET  {base}/cancelAction/{id}                 cancelAction.stopId
POST {base}/cancelAction/{id}/feedback
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pycam_ota.config import Config
from pycam_ota.http import Http

log = logging.getLogger("pycam-ota")
DELTA = re.compile(r"\.delta-from-(?P<base>.+)\.raucb$")


@dataclass(frozen=True)
class Artifact:
    filename: str
    url: str
    size: int | None
    sha256: str
    base: str | None = None  # a delta's base version

    @property
    def is_delta(self) -> bool:
        return self.base is not None


@dataclass(frozen=True)
class Offer:
    """One update: the version and every bundle it comes as (the full one and deltas)."""

    action: str  # hawkBit action id, or "index:<version>"
    version: str
    artifacts: tuple[Artifact, ...]
    install: bool = True
    allow_downgrade: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # for downloads


def parse_sleep(text: str | None, default: int) -> int:
    """DDI's polling sleep 'HH:MM:SS' -> seconds."""
    if not text:
        return default
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2})", text.strip())
    if not match:
        log.warning("unreadable polling sleep %r, using %d s", text, default)
        return default
    h, m, s = (int(g) for g in match.groups())
    return max(1, h * 3600 + m * 60 + s)


def feedback_body(execution: str, finished: str, details: list[str],
                  progress: tuple[int, int] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"finished": finished}
    if progress:
        result["progress"] = {"cnt": progress[0], "of": progress[1]}
    return {"timestamp": int(time.time() * 1000),
            "status": {"execution": execution, "result": result, "details": details}}


def artifact_base(filename: str) -> str | None:
    match = DELTA.search(filename)
    return match.group("base") if match else None


class Ddi:
    def __init__(self, cfg: Config, http: Http) -> None:
        self.cfg, self.http = cfg, http
        self.base = cfg.controller_base

    def poll(self) -> dict[str, Any]:
        return self.http.json(self.base, headers=self.cfg.auth_header()) or {}

    def put_config_data(self, data: dict[str, str]) -> None:
        self.http.json(f"{self.base}/configData", method="PUT", payload={"mode": "merge", "data": data},
                       headers=self.cfg.auth_header())

    def get(self, href: str) -> dict[str, Any]:
        return self.http.json(href, headers=self.cfg.auth_header()) or {}

    def feedback(self, action: str, execution: str, finished: str, details: list[str],
                 progress: tuple[int, int] | None = None, kind: str = "deploymentBase") -> None:
        self.http.json(f"{self.base}/{kind}/{action}/feedback", method="POST",
                       payload=feedback_body(execution, finished, details, progress),
                       headers=self.cfg.auth_header())

    def offer(self, deployment: dict[str, Any]) -> Offer:
        """Turn a deploymentBase answer into an Offer (every .raucb artifact of every chunk)."""
        action = str(deployment["id"])
        dep = deployment.get("deployment", {})
        artifacts: list[Artifact] = []
        version = ""
        allow_downgrade = False
        for chunk in dep.get("chunks", []):
            version = version or str(chunk.get("version", ""))
            meta = {m.get("key"): m.get("value") for m in chunk.get("metadata", []) or []}
            allow_downgrade = allow_downgrade or str(meta.get("allow-downgrade", "")).lower() == "true"
            for art in chunk.get("artifacts", []):
                name = str(art.get("filename", ""))
                links = art.get("_links", {})
                url = (links.get("download") or links.get("download-http") or {}).get("href")
                sha256 = (art.get("hashes") or {}).get("sha256")
                if not name.endswith(".raucb") or not url or not sha256:
                    log.info("action %s: skipping artifact %r (not a RAUC bundle with a sha256 and a link)",
                             action, name)
                    continue
                artifacts.append(Artifact(name, url, art.get("size"), sha256, artifact_base(name)))
        headers = self.cfg.auth_header() if self.cfg.send_download_authentication else {}
        return Offer(action=action, version=version, artifacts=tuple(artifacts),
                     install=dep.get("update", "forced") != "skip" and dep.get("download", "forced") != "skip"
                     and dep.get("maintenanceWindow", "available") != "unavailable",
                     allow_downgrade=allow_downgrade, headers=headers)
