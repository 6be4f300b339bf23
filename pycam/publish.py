"""`pycam publish`: put signed bundles where devices find them.

--to DIR      the default OTA server: DIR/<compatible>/ holds the bundles, their sidecars and
              index.json (format in ota/client/README.md); serve DIR over HTTP(S) and point the
              devices' [pycam] index_url at it. RAUC can stream a bundle straight from there.
--hawkbit URL Eclipse hawkBit's Management API: a software module (type os) with the bundles as
              artifacts, a distribution set, then an assignment to --target devices or a
              --rollout in groups, started.

Each bundle needs its sidecar <bundle>.json (written by `pycam build` / `pycam bundle`): version,
compatible, sha256 and, for a delta, its base version. The sha256 is checked before anything is sent.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycam.engine.cache import file_sha256
from pycam.errors import PycamError
from pycam.log import log

INDEX_FORMAT = 1
DELTA = re.compile(r"\.delta-from-(?P<base>.+)\.raucb$")


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    compatible: str
    size: int
    sha256: str
    base: str | None  # a delta's base version

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".json")


def read_bundle(path: Path) -> Bundle:
    if not path.is_file():
        raise PycamError(f"no bundle at {path}", "build one: pycam bundle --version X")
    sidecar = path.with_name(path.name + ".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise PycamError(f"{path.name} has no sidecar {sidecar.name}",
                         "publish bundles as pycam build / pycam bundle wrote them (bundle + .json)") from None
    except ValueError as exc:
        raise PycamError(f"{sidecar} is not JSON: {exc}") from None
    try:
        version, compatible = str(meta["version"]), str(meta["compatible"])
    except KeyError as exc:
        raise PycamError(f"{sidecar} lacks {exc}", "rebuild the bundle with pycam bundle") from None
    want = meta.get("sha256") or meta.get("files", {}).get(path.name, {}).get("sha256")
    actual = file_sha256(path)
    if want and want != actual:
        raise PycamError(f"{path.name}: sha256 {actual} differs from its sidecar's {want}",
                         "the bundle or its sidecar was changed or truncated: rebuild or copy both again")
    match = DELTA.search(path.name)
    base = meta.get("base") or (match.group("base") if match else None)
    return Bundle(path, version, compatible, path.stat().st_size, actual, base)


def version_key(version: str) -> tuple[tuple[int, Any], ...]:
    """1.10.0 > 1.9.2; numbers compare as numbers, other parts as text (after numbers)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+~-]", version))


def _check_set(bundles: list[Bundle]) -> tuple[str, str]:
    versions = {b.version for b in bundles}
    compat = {b.compatible for b in bundles}
    if len(versions) != 1 or len(compat) != 1:
        raise PycamError("publish one release at a time: the bundles name "
                         f"versions {sorted(versions)} and compatibles {sorted(compat)}",
                         "pass the full bundle of one version and its deltas")
    return versions.pop(), compat.pop()


# --- a directory served over HTTP(S) ---------------------------------------------------------------
def publish_dir(bundles: list[Bundle], target: Path, *, allow_downgrade: bool = False,
                poll_seconds: int | None = None) -> Path:
    version, compatible = _check_set(bundles)
    directory = target / compatible
    directory.mkdir(parents=True, exist_ok=True)
    index_path = directory / "index.json"
    try:
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
    except ValueError as exc:
        raise PycamError(f"{index_path} is not JSON: {exc}", "repair or remove it, then publish again") from None
    if index and (index.get("format") != INDEX_FORMAT or index.get("compatible") != compatible):
        raise PycamError(f"{index_path} is not a format-{INDEX_FORMAT} index for {compatible}")
    index.setdefault("format", INDEX_FORMAT)
    index["compatible"] = compatible
    releases = index.setdefault("releases", {})
    if not any(b.base is None for b in bundles) and not any(
            "base" not in e for e in releases.get(version, {}).get("bundles", [])):
        raise PycamError(f"no full bundle of {version} among the bundles or in {index_path}",
                         "publish the full bundle with its deltas: a device on another version needs it")
    for bundle in bundles:
        for src in (bundle.path, bundle.sidecar):
            dest = directory / src.name
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)  # the same bytes, no copy, when DIR is on the build's filesystem
            except OSError:
                shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, dest)
        log.info("published %s (%d bytes)", bundle.path.name, bundle.size)
    entries = {e["file"]: e for e in releases.get(version, {}).get("bundles", [])}
    for b in bundles:
        entry: dict[str, Any] = {"file": b.path.name, "size": b.size, "sha256": b.sha256}
        if b.base:
            entry["base"] = b.base
        entries[b.path.name] = entry
    releases[version] = {
        "version": version,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "allow_downgrade": allow_downgrade,
        "bundles": sorted(entries.values(), key=lambda e: ("base" in e, e["file"])),
    }
    newest = max(releases, key=version_key)
    index["latest"] = version if allow_downgrade else newest
    if poll_seconds is not None:
        index["poll_seconds"] = poll_seconds
    tmp = index_path.with_name(".index.json.tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, index_path)  # devices never read a half-written index
    log.info("index %s: latest %s", index_path, index["latest"])
    return index_path


# --- Eclipse hawkBit, Management API -----------------------------------------------------------------
class Hawkbit:
    def __init__(self, url: str, *, user: str | None, password: str | None, token: str | None,
                 timeout: float = 600) -> None:
        self.url = url.rstrip("/")
        if token:
            self.auth = f"Bearer {token}"
        elif user and password is not None:
            self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        else:
            raise PycamError("no hawkBit credentials",
                             "pass --user and --password (or PYCAM_HAWKBIT_USER / PYCAM_HAWKBIT_PASSWORD), "
                             "or --token (PYCAM_HAWKBIT_TOKEN)")
        self.timeout = timeout

    def request(self, method: str, path: str, payload: Any = None, *, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        hdrs = {"Authorization": self.auth, "Accept": "application/hal+json, application/json", **(headers or {})}
        if payload is not None:
            body = json.dumps(payload).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._error(method, path, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise PycamError(f"hawkBit {method} {self.url}{path}: {getattr(exc, 'reason', exc)}",
                             "check the server URL (--hawkbit / PYCAM_HAWKBIT_URL) and that it is reachable") from None
        return json.loads(data) if data.strip() else None

    def _error(self, method: str, path: str, exc: urllib.error.HTTPError) -> PycamError:
        text = exc.read(2000).decode(errors="replace")
        try:
            detail = json.loads(text).get("message") or text
        except ValueError:
            detail = text.strip()
        hints = {
            401: "check the credentials (--user/--password, PYCAM_HAWKBIT_USER/PASSWORD, or --token)",
            403: "the user lacks the permission for this (hawkBit roles: CREATE_REPOSITORY, UPDATE_TARGET, "
                 "CREATE_ROLLOUT, HANDLE_ROLLOUT)",
            404: "check the names and ids (target controller ids, the server URL)",
            409: "that version is on the server already: publish a new version",
        }
        return PycamError(f"hawkBit {method} {path}: HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else ""),
                          hints.get(exc.code, "see the server's log"))

    def upload(self, module: int, bundle: Bundle) -> dict[str, Any]:
        """POST .../artifacts as multipart/form-data, streamed from the file (bundles are large)."""
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{bundle.path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def parts() -> Iterator[bytes]:
            yield head
            with open(bundle.path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            yield tail

        query = urllib.parse.urlencode({"filename": bundle.path.name, "sha256sum": bundle.sha256})
        return self.request("POST", f"/rest/v1/softwaremodules/{module}/artifacts?{query}", body=parts(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + bundle.size + len(tail))})


@dataclass
class Rollout:
    name: str
    target_filter: str
    groups: int = 1
    group_specs: tuple[str, ...] = ()  # NAME:PERCENT[:FILTER]
    threshold: int = 100
    error_threshold: int = 50


def publish_hawkbit(bundles: list[Bundle], server: Hawkbit, *, targets: list[str], rollout: Rollout | None,
                    assign_type: str = "forced", allow_downgrade: bool = False,
                    full_only: bool = False) -> dict[str, Any]:
    version, compatible = _check_set(bundles)
    if full_only:
        bundles = [b for b in bundles if b.base is None]
    if not any(b.base is None for b in bundles):
        raise PycamError(f"no full bundle of {version} among the bundles",
                         "publish the full bundle with its deltas: a device on another version needs it")
    (module,) = server.request("POST", "/rest/v1/softwaremodules", [{
        "name": compatible, "version": version, "type": "os", "vendor": "pycam",
        "description": f"RAUC bundles of {compatible} {version}"}])
    log.info("hawkBit software module %s:%s (id %s)", compatible, version, module["id"])
    for bundle in sorted(bundles, key=lambda b: b.base is not None):
        art = server.upload(module["id"], bundle)
        if art.get("hashes", {}).get("sha256") not in (None, bundle.sha256):
            raise PycamError(f"hawkBit stored {bundle.path.name} with sha256 {art['hashes']['sha256']}, "
                             f"not {bundle.sha256}", "upload again; check proxies between here and the server")
        log.info("uploaded %s (%d bytes, artifact %s)", bundle.path.name, bundle.size, art.get("id"))
    if allow_downgrade:
        server.request("POST", f"/rest/v1/softwaremodules/{module['id']}/metadata",
                       [{"key": "allow-downgrade", "value": "true", "targetVisible": True}])
    (ds,) = server.request("POST", "/rest/v1/distributionsets", [{
        "name": compatible, "version": version, "type": "os", "modules": [{"id": module["id"]}],
        "description": f"pycam firmware {version}"}])
    log.info("hawkBit distribution set %s:%s (id %s)", compatible, version, ds["id"])
    result: dict[str, Any] = {"software_module": module["id"], "distribution_set": ds["id"]}
    if targets:
        answer = server.request("POST", f"/rest/v1/distributionsets/{ds['id']}/assignedTargets",
                                [{"id": t, "type": assign_type} for t in targets])
        result["actions"] = [a["id"] for a in answer.get("assignedActions", [])]
        log.info("assigned to %d target(s) (%d already): actions %s", answer.get("assigned", 0),
                 answer.get("alreadyAssigned", 0), result["actions"])
    if rollout is not None:
        result["rollout"] = start_rollout(server, rollout, ds["id"], assign_type)
    return result


def start_rollout(server: Hawkbit, r: Rollout, ds: int, assign_type: str) -> int:
    body: dict[str, Any] = {
        "name": r.name, "distributionSetId": ds, "targetFilterQuery": r.target_filter, "type": assign_type,
        "successCondition": {"condition": "THRESHOLD", "expression": str(r.threshold)},
        "successAction": {"action": "NEXTGROUP", "expression": ""},
        "errorCondition": {"condition": "THRESHOLD", "expression": str(r.error_threshold)},
        "errorAction": {"action": "PAUSE", "expression": ""},
    }
    if r.group_specs:
        groups = []
        for spec in r.group_specs:
            name, _, rest = spec.partition(":")
            percent, _, query = rest.partition(":")
            try:
                share = float(percent or 100)
            except ValueError:
                raise PycamError(f"--group {spec!r}: {percent!r} is not a percentage",
                                 "write NAME:PERCENT[:FILTER], e.g. canary:10 or lab:100:controllerId==lab-*") from None
            group: dict[str, Any] = {"name": name, "targetPercentage": share}
            if query:
                group["targetFilterQuery"] = query
            groups.append(group)
        body["groups"] = groups
    else:
        body["amountGroups"] = r.groups
    created = server.request("POST", "/rest/v1/rollouts", body)
    rid = created["id"]
    deadline = time.monotonic() + 120
    status = created.get("status")
    while status != "ready":  # hawkBit creates the groups in the background ("creating")
        if time.monotonic() > deadline:
            raise PycamError(f"rollout {rid} still {status} after 120 s", "look at the rollout in hawkBit")
        time.sleep(2)
        status = server.request("GET", f"/rest/v1/rollouts/{rid}").get("status")
    server.request("POST", f"/rest/v1/rollouts/{rid}/start")
    log.info("rollout %s (id %s) started: %s", r.name, rid,
             f"{len(r.group_specs)} groups" if r.group_specs else f"{r.groups} group(s)")
    return int(rid)


# --- command line ----------------------------------------------------------------------------------
def cmd_publish(args: argparse.Namespace) -> int:
    bundles = [read_bundle(Path(p)) for p in args.bundles]
    if bool(args.to) == bool(args.hawkbit):
        raise PycamError("say where to publish: --to DIR or --hawkbit URL (one of them)",
                         "e.g. pycam publish build/qemuarm64/pycam-qemuarm64-0.2.0.raucb --to /srv/ota")
    if args.to:
        print(publish_dir(bundles, Path(args.to), allow_downgrade=args.allow_downgrade,
                          poll_seconds=args.poll_seconds))
        return 0
    server = Hawkbit(args.hawkbit, user=args.user or os.environ.get("PYCAM_HAWKBIT_USER"),
                     password=args.password if args.password is not None else os.environ.get(
                         "PYCAM_HAWKBIT_PASSWORD"),
                     token=args.token or os.environ.get("PYCAM_HAWKBIT_TOKEN"))
    rollout = None
    if args.rollout:
        rollout = Rollout(args.rollout, args.filter, args.groups, tuple(args.group), args.threshold)
    result = publish_hawkbit(bundles, server, targets=args.target, rollout=rollout, assign_type=args.type,
                             allow_downgrade=args.allow_downgrade, full_only=args.full_only)
    print(json.dumps(result))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="publish bundles to an update directory or to Eclipse hawkBit",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+", help="the full bundle of one version (and its deltas)")
    p.add_argument("--to", metavar="DIR", help="update directory served over HTTP(S) (the default OTA server)")
    p.add_argument("--hawkbit", metavar="URL", default=os.environ.get("PYCAM_HAWKBIT_URL"),
                   help="hawkBit server, e.g. https://hawkbit.example.com ($PYCAM_HAWKBIT_URL)")
    p.add_argument("--user", help="Management API user ($PYCAM_HAWKBIT_USER)")
    p.add_argument("--password", help="its password ($PYCAM_HAWKBIT_PASSWORD)")
    p.add_argument("--token", help="bearer token instead of user/password ($PYCAM_HAWKBIT_TOKEN)")
    p.add_argument("--target", action="append", default=[], help="assign to this controller id (repeatable)")
    p.add_argument("--rollout", metavar="NAME", help="create and start a rollout")
    p.add_argument("--filter", default="controllerId==*", help="rollout target filter (FIQL)")
    p.add_argument("--groups", type=int, default=1, help="rollout: number of equal groups")
    p.add_argument("--group", action="append", default=[], metavar="NAME:PERCENT[:FILTER]",
                   help="rollout: an explicit group (repeatable, in order)")
    p.add_argument("--threshold", type=int, default=100,
                   help="rollout: percent of a group that must succeed before the next starts")
    p.add_argument("--type", default="forced", choices=("soft", "forced", "downloadonly"),
                   help="hawkBit action type")
    p.add_argument("--full-only", action="store_true",
                   help="hawkBit: upload only the full bundle (rauc-hawkbit-updater takes one artifact)")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="let devices on a newer version install this one")
    p.add_argument("--poll-seconds", type=int, help="--to: how often devices poll the index")
    p.set_defaults(func=cmd_publish)
