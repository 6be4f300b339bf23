"""A hawkBit test double: the DDI and Management API subset pycam's client and publisher speak.

This is a FIXTURE, not hawkBit: no Eclipse hawkBit server (a Java/Spring service with a
database) can run on this build host, so the tests talk to this aiohttp server instead. It
follows hawkBit's published API (docs/rest-api/ddi.html and mgmt.html of eclipse-hawkbit,
the DdiControllerBase / DdiDeploymentBase / DdiActionFeedback / DdiCancel resources and the
Mgmt* request and response bodies): the same paths, JSON shapes, enums, status codes and
authentication headers, so a client or publisher that works here speaks the real API. It
validates what it receives as strictly as hawkBit does for the fields used and keeps state
the tests inspect (feedback history, downloads with their Range headers, polls).

DDI (device side), under /{tenant}/controller/v1/{controllerId}, with
`Authorization: TargetToken <token>` or `GatewayToken <token>`:
  GET  ''                                  polling sleep, links deploymentBase/cancelAction/configData
  PUT  /configData                         target attributes
  GET  /deploymentBase/{actionId}          chunks -> artifacts with hashes and download links
  POST /deploymentBase/{actionId}/feedback
  GET  /cancelAction/{actionId}
  POST /cancelAction/{actionId}/feedback
  GET  /softwaremodules/{smId}/artifacts/{fileName}   (HTTP Range: 206 + Content-Range)
Management (operator side), under /rest/v1, HTTP Basic auth (or `Bearer <token>`):
  POST/GET /targets, GET /targets/{id}, /targets/{id}/actions, /targets/{id}/actions/{aid}/status
  POST/GET /softwaremodules, POST /softwaremodules/{id}/artifacts (multipart 'file'),
  POST /softwaremodules/{id}/metadata
  POST/GET /distributionsets, POST /distributionsets/{id}/assignedTargets
  POST/GET /rollouts, GET /rollouts/{id}, POST /rollouts/{id}/start, GET /rollouts/{id}/deploygroups
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

EXECUTIONS = {"closed", "proceeding", "canceled", "scheduled", "rejected", "resumed", "downloaded", "download"}
FINISHED = {"success", "failure", "none"}
ASSIGN_TYPES = {"soft", "forced", "timeforced", "downloadonly"}
SM_TYPES = {"os", "application", "firmware"}
DS_TYPES = {"os", "app", "os_app"}


@dataclass
class Artifact:
    id: int
    filename: str
    path: Path
    size: int
    sha256: str
    sha1: str
    md5: str


@dataclass
class SoftwareModule:
    id: int
    name: str
    version: str
    type: str
    vendor: str = ""
    artifacts: dict[int, Artifact] = field(default_factory=dict)
    metadata: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key -> (value, targetVisible)


@dataclass
class DistributionSet:
    id: int
    name: str
    version: str
    type: str
    modules: list[int]


@dataclass
class Action:
    id: int
    target: str
    ds: int
    type: str = "forced"
    status: str = "running"  # running | canceling | canceled | finished | error
    rollout: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)


@dataclass
class Target:
    controller_id: str
    name: str
    token: str
    attributes: dict[str, str] = field(default_factory=dict)
    request_attributes: bool = True
    installed_ds: int | None = None
    last_poll: float | None = None


@dataclass
class Rollout:
    id: int
    name: str
    ds: int
    groups: list[dict[str, Any]]  # {"name", "targets": [...], "status", "threshold"}
    status: str = "ready"
    type: str = "forced"


class HawkbitFixture:
    """The fixture server and its state; start() runs it on a loopback port in a thread."""

    def __init__(self, storage: Path, *, tenant: str = "DEFAULT", user: str = "admin", password: str = "admin",
                 bearer: str | None = None, gateway_token: str | None = None, polling_sleep: str = "00:00:05",
                 host: str = "127.0.0.1") -> None:
        self.storage = storage
        self.tenant = tenant
        self.user, self.password, self.bearer = user, password, bearer
        self.gateway_token = gateway_token
        self.polling_sleep = polling_sleep
        self.host = host
        self.public_url = ""  # the base URL links are built with (the device may see the host elsewhere)
        self.targets: dict[str, Target] = {}
        self.modules: dict[int, SoftwareModule] = {}
        self.sets: dict[int, DistributionSet] = {}
        self.actions: dict[int, Action] = {}
        self.rollouts: dict[int, Rollout] = {}
        self.feedback: list[dict[str, Any]] = []  # every DDI feedback body, in order, with action and kind
        self.downloads: list[dict[str, Any]] = []  # path, Range header, status, bytes sent
        self.polls: list[tuple[str, float]] = []
        self.cut_downloads_after: int | None = None  # drop the connection after this many bytes (once)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        ddi = "/{tenant}/controller/v1/{cid}"
        r = app.router
        r.add_get(ddi, self.ddi_base)
        r.add_put(ddi + "/configData", self.ddi_config_data)
        r.add_get(ddi + "/deploymentBase/{aid}", self.ddi_deployment)
        r.add_post(ddi + "/deploymentBase/{aid}/feedback", self.ddi_feedback)
        r.add_get(ddi + "/cancelAction/{aid}", self.ddi_cancel)
        r.add_post(ddi + "/cancelAction/{aid}/feedback", self.ddi_cancel_feedback)
        r.add_get(ddi + "/softwaremodules/{sm}/artifacts/{name}", self.ddi_artifact)
        m = "/rest/v1"
        r.add_post(m + "/targets", self.mgmt_create_targets)
        r.add_get(m + "/targets/{tid}", self.mgmt_target)
        r.add_get(m + "/targets/{tid}/actions", self.mgmt_target_actions)
        r.add_get(m + "/targets/{tid}/actions/{aid}/status", self.mgmt_action_status)
        r.add_post(m + "/softwaremodules", self.mgmt_create_modules)
        r.add_get(m + "/softwaremodules", self.mgmt_list_modules)
        r.add_post(m + "/softwaremodules/{sm}/artifacts", self.mgmt_upload)
        r.add_post(m + "/softwaremodules/{sm}/metadata", self.mgmt_module_metadata)
        r.add_post(m + "/distributionsets", self.mgmt_create_sets)
        r.add_get(m + "/distributionsets", self.mgmt_list_sets)
        r.add_post(m + "/distributionsets/{ds}/assignedTargets", self.mgmt_assign)
        r.add_post(m + "/rollouts", self.mgmt_create_rollout)
        r.add_get(m + "/rollouts/{rid}", self.mgmt_rollout)
        r.add_post(m + "/rollouts/{rid}/start", self.mgmt_start_rollout)
        r.add_get(m + "/rollouts/{rid}/deploygroups", self.mgmt_rollout_groups)
        return app

    def start(self, port: int = 0) -> str:
        self.storage.mkdir(parents=True, exist_ok=True)
        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self.app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="hawkbit-fixture", daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("hawkBit fixture did not start")
        self.public_url = self.public_url or self.url
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)

    # --- helpers for tests ----------------------------------------------------------------------
    def add_target(self, controller_id: str, token: str, name: str | None = None) -> Target:
        with self._lock:
            target = Target(controller_id, name or controller_id, token)
            self.targets[controller_id] = target
            return target

    def cancel(self, action_id: int) -> None:
        """What the operator's 'cancel' does in hawkBit: the action goes to CANCELING."""
        with self._lock:
            self.actions[action_id].status = "canceling"

    def feedback_for(self, action_id: int) -> list[dict[str, Any]]:
        return [f for f in self.feedback if f["action"] == action_id]

    def _next(self) -> int:
        return next(self._ids)

    def _base(self, request: web.Request) -> str:
        return self.public_url or f"{request.scheme}://{request.host}"

    # --- authentication -------------------------------------------------------------------------
    def _ddi_auth(self, request: web.Request) -> Target:
        if request.match_info["tenant"] != self.tenant:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "unknown tenant")
        cid = request.match_info["cid"]
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        with self._lock:
            target = self.targets.get(cid)
            if kind == "GatewayToken" and self.gateway_token and token == self.gateway_token:
                if target is None:  # hawkBit registers an unknown controller on its first poll
                    target = self.targets[cid] = Target(cid, cid, "")
                return target
            if kind == "TargetToken" and target is not None and target.token and token == target.token:
                return target
        raise web.HTTPUnauthorized(text="")

    def _mgmt_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        kind, _, cred = header.partition(" ")
        if kind == "Basic":
            try:
                user, _, password = base64.b64decode(cred).decode().partition(":")
            except ValueError:
                user = password = ""
            if (user, password) == (self.user, self.password):
                return
        if kind == "Bearer" and self.bearer and cred == self.bearer:
            return
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="hawkBit"'})

    # --- DDI ------------------------------------------------------------------------------------
    def _open_action(self, cid: str) -> Action | None:
        for action in sorted(self.actions.values(), key=lambda a: a.id):
            if action.target == cid and action.status in ("running", "canceling"):
                return action
        return None

    async def ddi_base(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        base = f"{self._base(request)}/{self.tenant}/controller/v1/{target.controller_id}"
        with self._lock:
            target.last_poll = time.time()
            self.polls.append((target.controller_id, target.last_poll))
            links: dict[str, Any] = {}
            action = self._open_action(target.controller_id)
            if action is not None and action.status == "running":
                digest = hashlib.sha1(f"{action.id}:{action.ds}".encode()).hexdigest()[:8]
                links["deploymentBase"] = {"href": f"{base}/deploymentBase/{action.id}?c={int(digest, 16)}"}
            elif action is not None and action.status == "canceling":
                links["cancelAction"] = {"href": f"{base}/cancelAction/{action.id}"}
            if target.installed_ds is not None:
                last = max((a.id for a in self.actions.values()
                            if a.target == target.controller_id and a.status == "finished"), default=None)
                if last is not None:
                    links["installedBase"] = {"href": f"{base}/installedBase/{last}"}
            if target.request_attributes:
                links["configData"] = {"href": f"{base}/configData"}
        return _hal({"config": {"polling": {"sleep": self.polling_sleep}}, "_links": links})

    async def ddi_config_data(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        body = await _json(request)
        data = body.get("data")
        mode = body.get("mode", "merge")
        if not isinstance(data, dict) or mode not in ("merge", "replace", "remove") or not all(
                isinstance(v, str) for v in data.values()):
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                         "configData needs data: {string: string} and mode merge|replace|remove")
        with self._lock:
            if mode == "replace":
                target.attributes = dict(data)
            elif mode == "remove":
                for key in data:
                    target.attributes.pop(key, None)
            else:
                target.attributes.update(data)
            target.request_attributes = False
        return web.Response(status=200)

    def _action_for(self, request: web.Request, target: Target) -> Action:
        try:
            action = self.actions[int(request.match_info["aid"])]
        except (KeyError, ValueError):
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such action") from None
        if action.target != target.controller_id:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "action of another target")
        return action

    async def ddi_deployment(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        base = f"{self._base(request)}/{self.tenant}/controller/v1/{target.controller_id}"
        with self._lock:
            action = self._action_for(request, target)
            ds = self.sets[action.ds]
            chunks = []
            for sm_id in ds.modules:
                sm = self.modules[sm_id]
                artifacts = []
                for art in sm.artifacts.values():
                    href = f"{base}/softwaremodules/{sm.id}/artifacts/{art.filename}"
                    scheme = "download" if href.startswith("https:") else "download-http"
                    artifacts.append({
                        "filename": art.filename,
                        "hashes": {"sha1": art.sha1, "md5": art.md5, "sha256": art.sha256},
                        "size": art.size,
                        "_links": {scheme: {"href": href},
                                   scheme.replace("download", "md5sum"): {"href": href + ".MD5SUM"}},
                    })
                chunk: dict[str, Any] = {"part": sm.type, "version": sm.version, "name": sm.name,
                                         "artifacts": artifacts}
                visible = [{"key": k, "value": v} for k, (v, vis) in sorted(sm.metadata.items()) if vis]
                if visible:
                    chunk["metadata"] = visible
                chunks.append(chunk)
            handling = "attempt" if action.type == "soft" else "forced"
            update = "skip" if action.type == "downloadonly" else handling
            body = {"id": str(action.id),
                    "deployment": {"download": handling, "update": update, "chunks": chunks}}
        return _hal(body)

    def _validate_feedback(self, body: Any) -> dict[str, Any]:
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, dict):
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", "status is required")
        execution = status.get("execution")
        result = status.get("result")
        if execution not in EXECUTIONS:
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                         f"status.execution {execution!r} is not one of {sorted(EXECUTIONS)}")
        if not isinstance(result, dict) or result.get("finished") not in FINISHED:
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                         f"status.result.finished must be one of {sorted(FINISHED)}")
        progress = result.get("progress")
        if progress is not None and not (isinstance(progress, dict) and isinstance(progress.get("cnt"), int)):
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                         "status.result.progress needs an integer cnt")
        details = status.get("details", [])
        if not isinstance(details, list) or not all(isinstance(d, str) for d in details):
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                         "status.details must be a list of strings")
        return status

    async def ddi_feedback(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        body = await _json(request)
        status = self._validate_feedback(body)
        with self._lock:
            action = self._action_for(request, target)
            if action.status in ("finished", "error", "canceled"):
                raise _error(web.HTTPGone, "hawkbit.server.error.action.closed", f"action {action.id} is closed")
            self.feedback.append({"action": action.id, "kind": "deployment", "body": body, "time": time.time()})
            action.messages.append(status)
            if status["execution"] == "closed":
                ok = status["result"]["finished"] != "failure"
                action.status = "finished" if ok else "error"
                if ok:
                    target.installed_ds = action.ds
                    target.request_attributes = True  # hawkBit asks for attributes after a successful update
                self._advance_rollouts()
        return web.Response(status=200)

    async def ddi_cancel(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        with self._lock:
            action = self._action_for(request, target)
            if action.status != "canceling":
                raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no cancel request")
        return _hal({"id": str(action.id), "cancelAction": {"stopId": str(action.id)}})

    async def ddi_cancel_feedback(self, request: web.Request) -> web.Response:
        target = self._ddi_auth(request)
        body = await _json(request)
        status = self._validate_feedback(body)
        with self._lock:
            action = self._action_for(request, target)
            self.feedback.append({"action": action.id, "kind": "cancel", "body": body, "time": time.time()})
            action.messages.append(status)
            if status["execution"] in ("closed", "canceled") and status["result"]["finished"] != "failure":
                action.status = "canceled"
            elif status["execution"] == "rejected":
                action.status = "running"  # the device goes on with it; hawkBit reports a warning
        return web.Response(status=200)

    async def ddi_artifact(self, request: web.Request) -> web.StreamResponse:
        target = self._ddi_auth(request)
        name = request.match_info["name"]
        with self._lock:
            sm = self.modules.get(int(request.match_info["sm"]))
            allowed = sm is not None and any(
                a.target == target.controller_id and sm.id in self.sets[a.ds].modules for a in self.actions.values())
            md5 = name.endswith(".MD5SUM")
            art = next((a for a in (sm.artifacts.values() if sm else []) if a.filename == name.removesuffix(
                ".MD5SUM")), None)
        if not allowed or art is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such artifact")
        if md5:
            return web.Response(text=f"{art.md5}  {art.filename}\n")
        start, end = 0, art.size - 1
        rng = request.headers.get("Range")
        status = 200
        if rng:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not match or int(match.group(1)) >= art.size:
                self.downloads.append({"file": art.filename, "range": rng, "status": 416, "sent": 0})
                return web.Response(status=416, headers={"Content-Range": f"bytes */{art.size}"})
            start = int(match.group(1))
            end = min(int(match.group(2)), art.size - 1) if match.group(2) else art.size - 1
            status = 206
        length = end - start + 1
        resp = web.StreamResponse(status=status, headers={
            "Content-Length": str(length), "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
            "Content-Disposition": f"attachment;filename={art.filename}", "ETag": f'"{art.sha1}"'})
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{art.size}"
        await resp.prepare(request)
        cut, self.cut_downloads_after = self.cut_downloads_after, None
        entry: dict[str, Any] = {"file": art.filename, "range": rng, "status": status, "sent": 0}
        self.downloads.append(entry)
        sent = 0
        with open(art.path, "rb") as f:
            f.seek(start)
            left = length
            while left:
                chunk = f.read(min(256 * 1024, left))
                if cut is not None and sent + len(chunk) > cut:
                    await resp.write(chunk[:max(0, cut - sent)])
                    entry.update(sent=cut, cut=True)
                    request.transport.close()  # type: ignore[union-attr]  # the connection drops mid-file
                    return resp
                await resp.write(chunk)
                sent += len(chunk)
                entry["sent"] = sent
                left -= len(chunk)
        await resp.write_eof()
        return resp

    # --- Management -----------------------------------------------------------------------------
    def _sm_json(self, request: web.Request, sm: SoftwareModule) -> dict[str, Any]:
        base = self._base(request)
        return {"id": sm.id, "name": sm.name, "version": sm.version, "type": sm.type, "typeName": sm.type.upper(),
                "vendor": sm.vendor, "encrypted": False, "locked": False, "deleted": False,
                "_links": {"self": {"href": f"{base}/rest/v1/softwaremodules/{sm.id}"},
                           "artifacts": {"href": f"{base}/rest/v1/softwaremodules/{sm.id}/artifacts"}}}

    def _ds_json(self, request: web.Request, ds: DistributionSet) -> dict[str, Any]:
        return {"id": ds.id, "name": ds.name, "version": ds.version, "type": ds.type, "complete": True,
                "locked": False, "deleted": False, "valid": True, "requiredMigrationStep": False,
                "modules": [self._sm_json(request, self.modules[m]) for m in ds.modules],
                "_links": {"self": {"href": f"{self._base(request)}/rest/v1/distributionsets/{ds.id}"}}}

    async def mgmt_create_targets(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        items = _list_body(await _json(request))
        out = []
        with self._lock:
            for item in items:
                cid = _required(item, "controllerId")
                if cid in self.targets:
                    raise _error(web.HTTPConflict, "hawkbit.server.error.repo.entitiyAlreadyExists",
                                 f"target {cid} exists")
                t = self.targets[cid] = Target(cid, item.get("name", cid), item.get("securityToken", ""))
                out.append({"controllerId": t.controller_id, "name": t.name, "securityToken": t.token})
        return _hal(out, status=201)

    async def mgmt_target(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        t = self.targets.get(request.match_info["tid"])
        if t is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such target")
        return _hal({"controllerId": t.controller_id, "name": t.name, "pollStatus": {"lastRequestAt": t.last_poll},
                     "installedDS": t.installed_ds, "attributes": t.attributes})

    async def mgmt_target_actions(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        tid = request.match_info["tid"]
        content = [{"id": a.id, "type": "update" if a.status != "canceling" else "cancel",
                    "status": "finished" if a.status in ("finished", "error", "canceled") else "pending",
                    "detailStatus": a.status, "forceType": a.type, "rollout": a.rollout}
                   for a in sorted(self.actions.values(), key=lambda a: -a.id) if a.target == tid]
        return _hal({"content": content, "total": len(content), "size": len(content)})

    async def mgmt_action_status(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        action = self.actions.get(int(request.match_info["aid"]))
        if action is None or action.target != request.match_info["tid"]:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such action")
        content = [{"id": i, "type": s["execution"], "messages": s.get("details", [])}
                   for i, s in reversed(list(enumerate(action.messages)))]
        return _hal({"content": content, "total": len(content), "size": len(content)})

    async def mgmt_create_modules(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        items = _list_body(await _json(request))
        out = []
        with self._lock:
            for item in items:
                name, version, sm_type = (_required(item, k) for k in ("name", "version", "type"))
                if sm_type not in SM_TYPES:
                    raise _error(web.HTTPBadRequest, "hawkbit.server.error.repo.entitiyNotFound",
                                 f"software module type {sm_type!r} does not exist")
                if any(m.name == name and m.version == version and m.type == sm_type for m in self.modules.values()):
                    raise _error(web.HTTPConflict, "hawkbit.server.error.repo.entitiyAlreadyExists",
                                 f"software module {name}:{version} exists")
                sm = SoftwareModule(self._next(), name, version, sm_type, item.get("vendor", ""))
                self.modules[sm.id] = sm
                out.append(self._sm_json(request, sm))
        return _hal(out, status=201)

    async def mgmt_list_modules(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        q = _fiql(request.query.get("q", ""))
        content = [self._sm_json(request, m) for m in self.modules.values()
                   if q({"name": m.name, "version": m.version, "type": m.type})]
        return _hal({"content": content, "total": len(content), "size": len(content)})

    async def mgmt_upload(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        sm = self.modules.get(int(request.match_info["sm"]))
        if sm is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such software module")
        if not request.content_type.startswith("multipart/form-data"):
            raise _error(web.HTTPUnsupportedMediaType, "hawkbit.server.error.rest.body.notReadable",
                         "artifact upload is multipart/form-data with a 'file' part")
        reader = await request.multipart()
        filename = request.query.get("filename")
        dest = self.storage / f"sm{sm.id}-{self._next()}.bin"
        got = False
        sha256, sha1, md5 = hashlib.sha256(), hashlib.sha1(), hashlib.md5()
        size = 0
        async for part in reader:
            if getattr(part, "name", None) != "file":
                continue
            filename = filename or part.filename  # type: ignore[union-attr]
            with open(dest, "wb") as out:
                while chunk := await part.read_chunk(1 << 20):  # type: ignore[union-attr]
                    out.write(chunk)
                    for h in (sha256, sha1, md5):
                        h.update(chunk)
                    size += len(chunk)
            got = True
        if not got or not filename:
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.param.missing", "multipart part 'file' missing")
        for param, h in (("sha256sum", sha256), ("sha1sum", sha1), ("md5sum", md5)):
            if request.query.get(param) and request.query[param].lower() != h.hexdigest():
                dest.unlink()
                raise _error(web.HTTPBadRequest, "hawkbit.server.error.artifact.uploadFailed.checksum.match",
                             f"{param} does not match the uploaded file")
        with self._lock:
            if any(a.filename == filename for a in sm.artifacts.values()):
                dest.unlink()
                raise _error(web.HTTPConflict, "hawkbit.server.error.repo.entitiyAlreadyExists",
                             f"artifact {filename} exists in software module {sm.id}")
            art = Artifact(self._next(), filename, dest, size, sha256.hexdigest(), sha1.hexdigest(), md5.hexdigest())
            sm.artifacts[art.id] = art
        base = self._base(request)
        return _hal({"id": art.id, "providedFilename": filename, "size": size,
                     "hashes": {"sha1": art.sha1, "md5": art.md5, "sha256": art.sha256},
                     "_links": {"self": {"href": f"{base}/rest/v1/softwaremodules/{sm.id}/artifacts/{art.id}"},
                                "download": {"href": f"{base}/rest/v1/softwaremodules/{sm.id}/artifacts/"
                                                     f"{art.id}/download"}}}, status=201)

    async def mgmt_module_metadata(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        sm = self.modules.get(int(request.match_info["sm"]))
        if sm is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such software module")
        items = _list_body(await _json(request))
        with self._lock:
            for item in items:
                sm.metadata[_required(item, "key")] = (str(item.get("value", "")), bool(item.get("targetVisible")))
        return _hal([{"key": k, "value": v, "targetVisible": vis} for k, (v, vis) in sm.metadata.items()], status=201)

    async def mgmt_create_sets(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        items = _list_body(await _json(request))
        out = []
        with self._lock:
            for item in items:
                name, version = _required(item, "name"), _required(item, "version")
                ds_type = item.get("type", "os_app")
                if ds_type not in DS_TYPES:
                    raise _error(web.HTTPBadRequest, "hawkbit.server.error.repo.entitiyNotFound",
                                 f"distribution set type {ds_type!r} does not exist")
                modules = [int(m["id"]) for m in item.get("modules", [])]
                if any(m not in self.modules for m in modules):
                    raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound",
                                 "a module of the distribution set does not exist")
                if any(d.name == name and d.version == version for d in self.sets.values()):
                    raise _error(web.HTTPConflict, "hawkbit.server.error.repo.entitiyAlreadyExists",
                                 f"distribution set {name}:{version} exists")
                ds = DistributionSet(self._next(), name, version, ds_type, modules)
                self.sets[ds.id] = ds
                out.append(self._ds_json(request, ds))
        return _hal(out, status=201)

    async def mgmt_list_sets(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        q = _fiql(request.query.get("q", ""))
        content = [self._ds_json(request, d) for d in self.sets.values() if q({"name": d.name, "version": d.version})]
        return _hal({"content": content, "total": len(content), "size": len(content)})

    def _assign(self, cid: str, ds: int, kind: str, rollout: int | None = None) -> Action:
        for old in self.actions.values():  # a new assignment cancels the open one (no multi-assignment)
            if old.target == cid and old.status == "running":
                old.status = "canceling"
        action = Action(self._next(), cid, ds, kind, rollout=rollout)
        self.actions[action.id] = action
        return action

    async def mgmt_assign(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        items = _list_body(await _json(request))
        with self._lock:
            ds = self.sets.get(int(request.match_info["ds"]))
            if ds is None:
                raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such distribution set")
            assigned, already, actions = 0, 0, []
            for item in items:
                cid = _required(item, "id")
                kind = item.get("type", "forced")
                if kind not in ASSIGN_TYPES:
                    raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable",
                                 f"assignment type {kind!r} is not one of {sorted(ASSIGN_TYPES)}")
                if cid not in self.targets:
                    raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", f"no target {cid}")
                open_action = self._open_action(cid)
                if open_action is not None and open_action.ds == ds.id and open_action.status == "running":
                    already += 1
                    continue
                actions.append({"id": self._assign(cid, ds.id, kind).id})
                assigned += 1
        return _hal({"assigned": assigned, "alreadyAssigned": already, "total": assigned + already,
                     "assignedActions": actions})

    async def mgmt_create_rollout(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        body = await _json(request)
        if not isinstance(body, dict):
            raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", "rollout body is an object")
        name = _required(body, "name")
        with self._lock:
            ds_id = int(_required(body, "distributionSetId"))
            if ds_id not in self.sets:
                raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such distribution set")
            match = _fiql(_required(body, "targetFilterQuery"))
            targets = sorted(t.controller_id for t in self.targets.values()
                             if match({"controllerId": t.controller_id, "id": t.controller_id, "name": t.name}))
            if not targets:
                raise _error(web.HTTPBadRequest, "hawkbit.server.error.rollout.noTargets",
                             "the target filter matches no target")
            default_threshold = int((body.get("successCondition") or {}).get("expression", "100") or 100)
            groups: list[dict[str, Any]] = []
            if body.get("groups"):
                left = list(targets)
                for g in body["groups"]:
                    gmatch = _fiql(g.get("targetFilterQuery", ""))
                    pool = [t for t in left if gmatch({"controllerId": t, "id": t, "name": t})]
                    count = max(1, round(len(pool) * float(g.get("targetPercentage", 100)) / 100)) if pool else 0
                    members, left = pool[:count], [t for t in left if t not in pool[:count]]
                    threshold = int((g.get("successCondition") or {}).get("expression", default_threshold))
                    groups.append({"name": _required(g, "name"), "targets": members, "status": "ready",
                                   "threshold": threshold})
            else:
                amount = int(body.get("amountGroups", 1))
                if amount < 1:
                    raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", "amountGroups >= 1")
                size = -(-len(targets) // amount)
                for i in range(amount):
                    members = targets[i * size:(i + 1) * size]
                    if members:
                        groups.append({"name": f"group-{i + 1}", "targets": members, "status": "ready",
                                       "threshold": default_threshold})
            rollout = Rollout(self._next(), name, ds_id, groups, type=body.get("type", "forced"))
            self.rollouts[rollout.id] = rollout
        return _hal(self._rollout_json(rollout), status=201)

    def _rollout_json(self, r: Rollout) -> dict[str, Any]:
        per: dict[str, int] = {}
        for a in self.actions.values():
            if a.rollout == r.id:
                per[a.status] = per.get(a.status, 0) + 1
        total = sum(len(g["targets"]) for g in r.groups)
        return {"id": r.id, "name": r.name, "distributionSetId": r.ds, "status": r.status, "type": r.type,
                "totalTargets": total, "totalGroups": len(r.groups), "totalTargetsPerStatus": per}

    async def mgmt_rollout(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        r = self.rollouts.get(int(request.match_info["rid"]))
        if r is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such rollout")
        return _hal(self._rollout_json(r))

    async def mgmt_rollout_groups(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        r = self.rollouts.get(int(request.match_info["rid"]))
        if r is None:
            raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such rollout")
        content = [{"id": i + 1, "name": g["name"], "status": g["status"], "totalTargets": len(g["targets"])}
                   for i, g in enumerate(r.groups)]
        return _hal({"content": content, "total": len(content), "size": len(content)})

    async def mgmt_start_rollout(self, request: web.Request) -> web.Response:
        self._mgmt_auth(request)
        with self._lock:
            r = self.rollouts.get(int(request.match_info["rid"]))
            if r is None:
                raise _error(web.HTTPNotFound, "hawkbit.server.error.repo.entitiyNotFound", "no such rollout")
            if r.status != "ready":
                raise _error(web.HTTPBadRequest, "hawkbit.server.error.rollout.illegalstate",
                             f"rollout is {r.status}, not ready")
            r.status = "running"
            self._start_group(r, 0)
        return web.Response(status=200)

    def _start_group(self, r: Rollout, index: int) -> None:
        group = r.groups[index]
        group["status"] = "running"
        for cid in group["targets"]:
            self._assign(cid, r.ds, r.type, rollout=r.id)

    def _advance_rollouts(self) -> None:
        """THRESHOLD success condition: enough of a group finished -> the next group starts."""
        for r in self.rollouts.values():
            if r.status != "running":
                continue
            for i, group in enumerate(r.groups):
                if group["status"] != "running":
                    continue
                done = sum(1 for a in self.actions.values()
                           if a.rollout == r.id and a.target in group["targets"] and a.status == "finished")
                if done * 100 >= group["threshold"] * len(group["targets"]):
                    group["status"] = "finished"
                    if i + 1 < len(r.groups):
                        self._start_group(r, i + 1)
                    else:
                        r.status = "finished"
                break


def _hal(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/hal+json")


def _error(cls: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    return cls(text=json.dumps({"exceptionClass": "fixture", "errorCode": code, "message": message}),
               content_type="application/json")


async def _json(request: web.Request) -> Any:
    if request.content_type not in ("application/json", "application/hal+json"):
        raise _error(web.HTTPUnsupportedMediaType, "hawkbit.server.error.rest.body.notReadable",
                     f"Content-Type {request.content_type!r}: send application/json")
    try:
        return await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", "body is not JSON") from None


def _list_body(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
        raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", "the body is a JSON array")
    return body


def _required(item: dict[str, Any], key: str) -> Any:
    if item.get(key) in (None, ""):
        raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.body.notReadable", f"{key} is required")
    return item[key]


def _fiql(query: str) -> Any:
    """The FIQL subset rollouts and searches use here: key==pattern (* wildcard), ';' and, ',' or."""
    if not query.strip():
        return lambda fields: True
    alternatives = [[term.split("==", 1) for term in part.split(";")] for part in query.split(",")]
    for alt in alternatives:
        for term in alt:
            if len(term) != 2:
                raise _error(web.HTTPBadRequest, "hawkbit.server.error.rest.param.rsqlInvalid",
                             f"cannot read query {query!r}")

    def match(fields: dict[str, str]) -> bool:
        return any(all(fnmatch.fnmatchcase(str(fields.get(k.strip(), "")), v.strip()) for k, v in alt)
                   for alt in alternatives)

    return match
