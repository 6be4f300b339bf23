"""One station's provisioning run for one device: check, key, allocate, sign, write, apply, self-test, report.

Failure handling (nothing in limbo): nothing is allocated before the device answered and made its
key. Once a DID/MAC is allocated, a failure before the device confirmed its commit marks the
allocation `void` with the reason (it is never handed out again and shows in the line summary); if
the device cannot even be asked whether the commit landed, `void` as well, because the factory
partition's atomic switch means the device holds either that complete identity or none, and a
device holding a voided identity is refused as already provisioned until explicitly re-provisioned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from pycam.errors import PycamError
from pycam.factory import frames, hawkbit, report, selftest
from pycam.factory.ca import FactoryCA
from pycam.factory.config import LineConfig
from pycam.factory.db import Allocation, StationDB, TestResult, now
from pycam.factory.ids import hostname
from pycam.factory.link import DeviceLink, Refused, Shell
from pycam.factory.netserver import NetServer
from pycam.log import log

PAYLOAD = "/run/pycam-factory/payload.json"
RELOAD_RC, RELOAD_LOG = "/run/pycam-factory/app-reload.rc", "/run/pycam-factory/app-reload.log"
# In the background (a subshell's job: no job-control chatter on the console): an app still starting
# after the boot may have read /factory before the commit, and a reload asked for during its start
# would merge into the start job and never happen, so wait until it is up; an app that is not
# running at all is started.
APP_RELOAD = (
    f"rm -f {RELOAD_RC}; ( sh -c 'while [ \"$(systemctl show -P ActiveState pycam-app.service)\" = activating ]; "
    f"do sleep 0.5; done; systemctl reload-or-restart pycam-app.service > {RELOAD_LOG} 2>&1; "
    f"echo $? > {RELOAD_RC}.tmp; mv {RELOAD_RC}.tmp {RELOAD_RC}' < /dev/null > /dev/null 2>&1 & )"
)
STEPS = ("connect", "keygen", "allocate", "sign", "register", "write", "apply", "selftest", "report")

# (device, step, state, detail): state is start | done | fail | skip
ProgressFn = Callable[[str, str, str, str], None]


def log_progress(device: str, step: str, state: str, detail: str) -> None:
    log.info("%-14s %-9s %-5s %s", device, step, state, detail)


def hash_password(password: str, iterations: int = 60_000) -> str:
    """The app's format (pycam_app.auth.hash_password): pbkdf2_sha256$iterations$salt$hash, base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass
class Outcome:
    device: str
    outcome: str = "error"  # pass | fail (self-test) | refused | error
    did: str = ""
    mac: str = ""
    hw_id: str = ""
    failed_step: str = ""
    error: str = ""
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    results: list[TestResult] = field(default_factory=list)
    report_dir: Path | None = None
    admin_password: str = ""
    cert_pem: str = ""
    stale: list[str] = field(default_factory=list)
    snapshot: bytes = b""


class Station:
    def __init__(self, line: LineConfig, db: StationDB, ca: FactoryCA, *, hardware: dict[str, Any],
                 version: str, net: NetServer | None = None, progress: ProgressFn = log_progress,
                 operator: str = "") -> None:
        self.line, self.db, self.ca = line, db, ca
        self.hardware, self.version = hardware, version
        self.net = net
        self.progress = progress
        self.operator = operator or line.station
        self._lock = threading.Lock()  # one station may drive several devices from threads; the DB is shared

    # -- the run --
    def provision(self, device: str, shell: Shell, *, reprovision: bool = False, reason: str = "",
                  run_selftest: bool = True) -> Outcome:
        if reprovision and not reason:
            raise PycamError("re-provisioning needs a reason (it is audited)", "pass --reason '...'")
        out = Outcome(device)
        t_start = time.monotonic()
        with self._lock:
            run_id = self.db.start_run(self.line.station)
        alloc: Allocation | None = None
        fresh = False  # a newly allocated DID/MAC (re-provisioning may keep the device's own)
        committed = False
        step = "connect"
        try:
            link = DeviceLink(shell)
            step = self._step(out, "connect")
            status = link.helper("factory-provision", "status")
            out.hw_id, out.stale = str(status.get("hw_id", "")), list(status.get("stale", []))
            if status.get("provisioned") and not reprovision:
                raise Refused(f"device already provisioned as {status.get('did')}",
                              "re-provisioning must be requested explicitly (--reprovision --reason ...)")
            self._done(out, step, f"hw {out.hw_id[:12]} version {status.get('version')}"
                       + (f", leftover {out.stale} from an interrupted write" if out.stale else ""))

            step = self._step(out, "keygen")
            # the app keeps running (it may still be starting after the boot): it takes the identity by
            # a reload in `apply`, which costs far less than the restart it replaces (factory/README.md)
            csr = str(link.helper("factory-provision", "keygen")["csr"])
            self._done(out, step, "key pair made on the device, CSR received")

            step = self._step(out, "allocate")
            alloc = self._allocate(status, out, reprovision, reason)
            fresh = alloc.status == "allocated"
            out.did, out.mac = alloc.did, alloc.mac
            self._done(out, step, f"{alloc.did} {alloc.mac}")

            step = self._step(out, "sign")
            host = hostname(alloc.did)
            cert = self.ca.sign(csr, alloc.did, host, alloc.mac, self.line.device_cert_days)
            out.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
            self._done(out, step, f"serial {cert.serial_number:x}"[:40])

            step = self._step(out, "register")
            token = hawkbit.new_token()
            if self.line.ota.register:
                hawkbit.register(self.line.ota, alloc.did, token, f"{self.line.model} from {self.line.station}")
                self._done(out, step, f"hawkBit target {alloc.did} created")
            else:
                self._done(out, step, "hawkBit registration off (ota.register)", state="skip")

            step = self._step(out, "write")
            out.admin_password = secrets.token_urlsafe(9)
            payload = self._payload(alloc, host, token, out, reason)
            link.put(PAYLOAD, json.dumps(payload).encode())
            args = ["commit", PAYLOAD] + (["--reprovision"] if reprovision else [])
            try:
                link.helper("factory-provision", *args, timeout=120)
            except Refused:
                raise
            except Exception:
                committed = self._landed(link, alloc.did)
                if not committed:
                    raise
            committed = True
            with self._lock:
                self.db.set_status(alloc.did, "provisioned", reason, hw_id=out.hw_id)
            self._done(out, step, "factory partition written (atomic switch)")

            step = self._step(out, "apply")
            link.sh("systemctl restart pycam-factory-identity.service", timeout=120)
            # the running app reloads the identity (HTTPS, factory login) while the self-tests that do not
            # need it run; the video and TLS tests wait for the reload's outcome (_wait_app)
            link.sh(APP_RELOAD, timeout=60)
            self._done(out, step, f"hostname {host}, MAC {alloc.mac}, app reloading the identity")

            if run_selftest:
                step = self._step(out, "selftest")
                out.results = self._selftest(link, out)
                failed = [r.test for r in out.results if r.verdict == "fail"]
                self._done(out, step, f"{len(out.results)} tests, failed: {', '.join(failed) or 'none'}")
                out.outcome = "fail" if failed else "pass"
                out.failed_step = "selftest" if failed else ""
            else:
                self._wait_app(link)
                out.outcome = "pass"
        except Exception as e:  # every failure ends in a recorded, reported run
            out.failed_step, out.error = step, str(e).splitlines()[0]
            out.outcome = "refused" if isinstance(e, Refused) else "error"
            self.progress(device, step, "fail", out.error)
            if alloc is not None and not committed and fresh:
                with self._lock:
                    self.db.set_status(alloc.did, "void", f"{step}: {out.error}"[:500], hw_id=out.hw_id)
                self.progress(device, step, "fail", f"{alloc.did}/{alloc.mac} marked void (never reused)")
            elif alloc is not None and not committed:
                with self._lock:
                    self.db.audit(self.line.station, self.operator, "reprovision-failed", alloc.did,
                                  f"{step}: {out.error}"[:500])
        out.seconds = round(time.monotonic() - t_start, 1)
        self.progress(device, "report", "start", "")
        out.report_dir = report.device_report(self.line, out)
        with self._lock:
            self.db.finish_run(run_id, did=out.did, hw_id=out.hw_id, outcome=out.outcome,
                               failed_step=out.failed_step, error=out.error, seconds=out.seconds, steps=out.steps,
                               report=str(out.report_dir), results=out.results)
        self.progress(device, "report", "done", f"{out.outcome.upper()} in {out.seconds} s -> {out.report_dir}")
        return out

    # -- steps --
    def _step(self, out: Outcome, step: str) -> str:
        out.steps[step] = time.monotonic()
        self.progress(out.device, step, "start", "")
        return step

    def _done(self, out: Outcome, step: str, detail: str, state: str = "done") -> None:
        out.steps[step] = round(time.monotonic() - out.steps[step], 2)
        self.progress(out.device, step, state, detail)

    def _allocate(self, status: dict[str, Any], out: Outcome, reprovision: bool, reason: str) -> Allocation:
        with self._lock:
            if reprovision and status.get("provisioned"):
                old = self.db.allocation(str(status.get("did")))
                self.db.audit(self.line.station, self.operator, "reprovision", str(status.get("did")),
                              f"hw {out.hw_id}: {reason}")
                if old is not None and old.status == "provisioned":
                    return old  # same DID and MAC, new key and certificate
            alloc = self.db.allocate(self.line.did, self.line.mac, self.line.station, out.hw_id)
            if reprovision:
                self.db.audit(self.line.station, self.operator, "reprovision-new-identity", alloc.did,
                              f"replaces {status.get('did') or 'nothing'}: {reason}")
            return alloc

    def _payload(self, alloc: Allocation, host: str, token: str, out: Outcome, reason: str) -> dict[str, Any]:
        identity = {
            "format": 1, "did": alloc.did, "serial": alloc.did, "mac": alloc.mac, "hostname": host,
            "model": self.line.model, "hw_revision": self.line.hw_revision, "admin_user": self.line.admin_user,
            "admin_password_hash": hash_password(out.admin_password), "provisioned_at": now(),
            "station": self.line.station, "hw_id": out.hw_id,
        }
        if reason:
            identity["reprovision_reason"] = reason
        conf = hawkbit.config_text(self.line.ota, alloc.did, token, alloc.mac, self.line.model, self.line.hw_revision)
        return {"identity": identity,
                "files": {"device.crt": out.cert_pem, "ca-chain.pem": self.ca.chain_pem.decode(),
                          "ota/hawkbit.conf": conf}}

    def _landed(self, link: DeviceLink, did: str) -> bool:
        """After a failed commit call: did the identity land anyway? False also when the device is gone."""
        try:
            status = link.helper("factory-provision", "status", timeout=30)
        except Exception:
            return False
        return bool(status.get("provisioned")) and status.get("did") == did

    @staticmethod
    def _wait_app(link: DeviceLink) -> None:
        """Wait for the app's reload with the identity (APP_RELOAD).

        The app reports ready (start) only after its first frame (or after 60 s without one, which it
        logs), and a reload leaves capture alone; the video test then checks that frames advance. A
        health gate still waiting since boot is re-armed, so that it probes the app as it serves now
        (HTTPS) and marks the slot good.
        """
        try:
            link.sh(f"for i in $(seq 600); do [ -f {RELOAD_RC} ] && break; sleep 0.5; done; "
                    f"test \"$(cat {RELOAD_RC} 2>/dev/null)\" = 0", timeout=400)
        except PycamError as e:
            why = link.sh(f"cat {RELOAD_RC} {RELOAD_LOG} 2>&1; journalctl -u pycam-app.service -n 4 -o cat "
                          "--no-pager 2>&1 || true", timeout=60)
            raise PycamError(f"the app did not take the identity (systemctl reload pycam-app): {why[-300:]}",
                             "see `journalctl -u pycam-app` on the device") from e
        link.sh("if [ \"$(systemctl is-active pycam-health-gate.service)\" = activating ]; then "
                "systemctl restart --no-block pycam-health-gate.service; fi", timeout=60)

    def _selftest(self, link: DeviceLink, out: Outcome) -> list[TestResult]:
        tests, na = selftest.applicable(self.hardware)
        station_url = f"http://{self.line.device_address}:{self.net.port}" if self.net else ""
        if not station_url:
            na.setdefault("network", "station runs without its throughput server")
        frames_key = secrets.token_hex(8) if self.net else ""
        todo = [t for t in tests if t not in na]
        measured: dict[str, Any] = {}
        for phase in ([t for t in todo if t not in selftest.NEEDS_APP], [t for t in todo if t in selftest.NEEDS_APP]):
            if phase and phase[0] in selftest.NEEDS_APP:
                t0 = time.monotonic()
                self._wait_app(link)
                # how long the app kept the video test waiting (its start after the boot, the reload)
                out.steps["selftest.wait_app"] = round(time.monotonic() - t0, 2)
            if any(t in selftest.ON_DEVICE for t in phase):
                spec = selftest.device_spec(phase, self.line.limits, station_url, self.line.admin_user,
                                            out.admin_password, frames_key)
                measured.update(link.helper("factory-selftest", spec, timeout=600)["results"])
        video = measured.get("video")
        if frames_key and video and not video.get("error") and self.net is not None:
            shots = [self.net.take_frame(f"{frames_key}-{i}") for i in (1, 2)]
            try:
                if shots[0] is None or shots[1] is None:
                    raise ValueError("the device's snapshots did not arrive at the station")
                video["value"].update(frames.measure(shots[0], shots[1]))
                out.snapshot = shots[0]
            except (ValueError, OSError) as e:
                video["error"] = f"snapshot analysis: {e}"
        for name, m in measured.items():
            out.steps[f"selftest.{name}"] = float(m.get("seconds", 0))
        skew = link.clock() if "clock" in todo else None
        der = serialization.Encoding.DER
        from cryptography import x509

        cert_sha = hashlib.sha256(x509.load_pem_x509_certificate(out.cert_pem.encode()).public_bytes(der)).hexdigest()
        return selftest.evaluate(measured, na, self.line.limits, {"version": self.version, "cert_sha256": cert_sha},
                                 skew)
