"""The update logic: poll, pick a bundle, download, install, reboot, and report the outcome after the reboot.

An action lives in /data (state.py) from the install until the device has booted again:
success is reported only when the new slot is the booted one AND the health gate proved it;
failure when the boot counter brought the old slot back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycam_ota import index
from pycam_ota.config import Config
from pycam_ota.ddi import Artifact, Ddi, Offer, parse_sleep
from pycam_ota.device import Device
from pycam_ota.http import Http, HttpError
from pycam_ota.state import State

log = logging.getLogger("pycam-ota")
PENDING_RECHECK = 10  # seconds between looks at the health gate after an update's reboot
CANCEL_CHECK = 10.0  # seconds between looks for a cancelAction during a download


class Cancelled(Exception):
    pass


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def candidates(offer: Offer, running: str) -> list[Artifact]:
    """The delta whose base is the running version first, then the full bundle (the fallback)."""
    full = [a for a in offer.artifacts if not a.is_delta]
    delta = [a for a in offer.artifacts if a.is_delta and a.base == running]
    return delta[:1] + full[:1]


@dataclass
class Reporter:
    """Where progress and the outcome go: hawkBit feedback, or only the log and state for the index."""

    ddi: Ddi | None
    action: str

    def send(self, execution: str, finished: str, message: str, progress: tuple[int, int] | None = None) -> None:
        log.info("[%s] %s/%s: %s", self.action, execution, finished, message)
        if self.ddi is None:
            return
        try:
            self.ddi.feedback(self.action, execution, finished, [message], progress)
        except HttpError as exc:
            log.warning("feedback not delivered: %s", exc)

    def proceeding(self, message: str, progress: tuple[int, int] | None = None) -> None:
        self.send("proceeding", "none", message, progress)

    def closed(self, ok: bool, message: str) -> None:
        self.send("closed", "success" if ok else "failure", message)


class Client:
    def __init__(self, cfg: Config, device: Device, http: Http | None = None, state: State | None = None,
                 clock: Any = time) -> None:
        self.cfg, self.device = cfg, device
        self.http = http or Http(cfg)
        self.state = state or State(Path(cfg.state_dir))
        self.ddi = Ddi(cfg, self.http) if cfg.mode == "hawkbit" else None
        self.clock = clock
        self._boot_id = boot_id

    # --- after a reboot -------------------------------------------------------------------------
    def finish_pending(self) -> bool:
        """Report the outcome of an installed action once it is known; True while still waiting."""
        pending = self.state.pending()
        if not pending or pending.get("stage") != "installed":
            return False
        reporter = self._reporter(pending)
        if pending.get("boot_id") == self._boot_id():
            return True  # not rebooted yet (post_update_reboot = false): the new slot is not running
        booted = self.device.booted_slot()
        version = pending["version"]
        if booted == pending["target_slot"]:
            health = self.device.health(booted)
            if health == "pending":
                return True
            if health == "failed":
                # the gate reboots an unproven slot; the boot counter decides. Nothing to report yet.
                log.warning("slot %s runs %s but its health gate failed; waiting for the boot counter", booted,
                            version)
                return True
            running = self.device.version()
            if running != version:
                message = f"slot {booted} booted but runs {running}, not {version}"
                reporter.closed(False, message)
                self.state.record("failure", action=pending["action"], version=version, message=message)
            else:
                message = f"{version} booted from slot {booted} and confirmed by the health gate"
                reporter.closed(True, message)
                self.state.record("success", action=pending["action"], version=version, message=message,
                                  slot=booted)
            self.state.clear_pending()
            return False
        message = (f"rolled back: slot {pending['target_slot']} with {version} was not confirmed, the boot "
                   f"counter brought back slot {booted} ({self.device.version()})")
        reporter.closed(False, message)
        self.state.record("failure", action=pending["action"], version=version, message=message, slot=booted)
        self.state.clear_pending()
        return False

    def _reporter(self, pending: dict[str, Any]) -> Reporter:
        ddi = self.ddi if pending.get("mode") == "hawkbit" and self.ddi is not None else None
        return Reporter(ddi, str(pending["action"]))

    # --- one poll -------------------------------------------------------------------------------
    def step(self) -> int:
        """Poll once, act on what the server says; return the seconds to sleep."""
        try:
            if self.finish_pending():
                return PENDING_RECHECK
            if self.cfg.mode == "hawkbit":
                return self._step_hawkbit()
            if self.cfg.mode == "index":
                return self._step_index()
            log.info("no update server configured (%s): neither hawkbit_server nor [pycam] index_url",
                     self.cfg.path)
            return self.cfg.retry_wait
        except (HttpError, OSError) as exc:
            log.error("%s; retrying in %d s", exc, self.cfg.retry_wait)
            return self.cfg.retry_wait

    def _step_hawkbit(self) -> int:
        assert self.ddi is not None
        base = self.ddi.poll()
        sleep = parse_sleep(base.get("config", {}).get("polling", {}).get("sleep"), self.cfg.retry_wait)
        links = base.get("_links", {})
        if "configData" in links:
            attrs = {**self.cfg.device, "pycam_version": self.device.version()}
            self.ddi.put_config_data(attrs)
        if "cancelAction" in links:
            self._cancel(links["cancelAction"]["href"])
        if "deploymentBase" in links:
            offer = self.ddi.offer(self.ddi.get(links["deploymentBase"]["href"]))
            pending = self.state.pending()
            if pending and pending.get("action") == offer.action and pending.get("stage") == "installed":
                return PENDING_RECHECK
            if not offer.install:
                log.info("action %s: the server says not yet (download/update skip or no maintenance window)",
                         offer.action)
                return sleep
            self.apply(offer, Reporter(self.ddi, offer.action))
        return sleep

    def _cancel(self, href: str) -> None:
        assert self.ddi is not None
        stop = str(self.ddi.get(href).get("cancelAction", {}).get("stopId", ""))
        pending = self.state.pending()
        if pending and pending.get("action") == stop and pending.get("stage") == "installed":
            self.ddi.feedback(stop, "rejected", "success", ["installation done already; reporting its outcome"],
                              kind="cancelAction")
            return
        if pending and pending.get("action") == stop:
            self._discard_download(pending)
            self.state.clear_pending()
        log.info("action %s canceled by the server", stop)
        self.ddi.feedback(stop, "closed", "success", ["action canceled"], kind="cancelAction")
        self.state.record("canceled", action=stop)

    def _step_index(self) -> int:
        compatible = self.device.compatible()
        url = index.index_location(self.cfg.index_url, compatible)
        doc = index.fetch(self.http, self.cfg.index_url, compatible)
        sleep = int(doc.get("poll_seconds") or self.cfg.index_poll)
        offer = index.latest_offer(doc, url)
        running = self.device.version()
        if offer is None or offer.version == running:
            return sleep
        if offer.version in self.state.failed_versions():
            log.info("%s failed on this device before; not trying it again", offer.version)
            return sleep
        self.apply(offer, Reporter(None, offer.action))
        return sleep

    # --- an update ------------------------------------------------------------------------------
    def apply(self, offer: Offer, reporter: Reporter) -> None:
        running = self.device.version()
        choices = candidates(offer, running)
        if not choices:
            reporter.closed(False, f"no bundle for this device: no full bundle and no delta from {running} among "
                                   + ", ".join(a.filename for a in offer.artifacts))
            self.state.record("failure", action=offer.action, version=offer.version, message="no usable bundle")
            return
        mode = "hawkbit" if reporter.ddi is not None else "index"
        pending = {"action": offer.action, "mode": mode, "version": offer.version, "from_version": running,
                   "stage": "downloading"}
        self.state.set_pending(pending)
        if offer.allow_downgrade:
            self.device.allow_downgrade()
        from_slot = self.device.booted_slot()
        errors: list[str] = []
        for n, artifact in enumerate(choices):
            try:
                source = self._fetch(offer, artifact, reporter, pending)
            except Cancelled:
                return
            except HttpError as exc:
                if exc.transient or (exc.status is not None and exc.status >= 500):
                    # keep the action and the partial download: the next poll resumes it
                    reporter.proceeding(f"download of {artifact.filename} interrupted ({exc}); resuming later")
                    return
                errors.append(f"{artifact.filename}: {exc}")
                if n + 1 < len(choices):
                    reporter.proceeding(f"{artifact.filename} could not be fetched ({exc}); trying the full bundle")
                    continue
                break
            except OSError as exc:
                errors.append(f"{artifact.filename}: {exc}")
                if n + 1 < len(choices):
                    reporter.proceeding(f"{artifact.filename} could not be fetched ({exc}); trying the full bundle")
                    continue
                break
            pending.update(stage="installing", artifact=artifact.filename)
            self.state.set_pending(pending)
            reporter.proceeding(f"installing {artifact.filename}", (0, 100))
            error = self._install(source, artifact, reporter, offer)
            if source == str(self._download_path(artifact)):
                Path(source).unlink(missing_ok=True)
            if error is None:
                target = self.device.primary_slot()
                pending.update(stage="installed", target_slot=target, from_slot=from_slot, boot_id=self._boot_id())
                self.state.set_pending(pending)
                reporter.proceeding(f"{artifact.filename} installed into slot {target}; "
                                    + ("rebooting" if self.cfg.post_update_reboot else "active after the next reboot"),
                                    (100, 100))
                self.state.record("installed", action=offer.action, version=offer.version,
                                  artifact=artifact.filename, slot=target)
                if self.cfg.post_update_reboot:
                    self.device.reboot()
                return
            errors.append(f"{artifact.filename}: {error}")
            if artifact.is_delta and n + 1 < len(choices):
                reporter.proceeding(f"delta {artifact.filename} refused ({error}); falling back to the full bundle")
                continue
            break
        message = "installation failed: " + "; ".join(errors)
        reporter.closed(False, message)
        self.state.record("failure", action=offer.action, version=offer.version, message=message)
        self.state.clear_pending()

    def _download_path(self, artifact: Artifact) -> Path:
        return Path(self.cfg.bundle_download_location)

    def _discard_download(self, pending: dict[str, Any]) -> None:
        loc = Path(self.cfg.bundle_download_location)
        for p in (loc, loc.with_name(loc.name + ".part"), loc.with_name(loc.name + ".part.sha256")):
            p.unlink(missing_ok=True)

    def _fetch(self, offer: Offer, artifact: Artifact, reporter: Reporter, pending: dict[str, Any]) -> str:
        if self.cfg.stream_bundle:
            return artifact.url  # RAUC streams it (and checks the signature over what it reads)
        reporter.send("download", "none", f"downloading {artifact.filename} ({artifact.size} bytes)")
        last = [self.clock.monotonic(), 0]

        def progress(got: int, size: int | None) -> None:
            now = self.clock.monotonic()
            if now - last[0] >= CANCEL_CHECK:
                last[0] = now
                self._check_cancel(offer, pending)
                if size:
                    pct = got * 100 // size
                    if pct - last[1] >= 10:
                        last[1] = pct
                        reporter.send("download", "none", f"downloaded {pct}% of {artifact.filename}", (pct, 100))

        path = self.http.download(artifact.url, self._download_path(artifact), sha256=artifact.sha256,
                                  size=artifact.size, headers=offer.headers, progress=progress)
        reporter.send("downloaded", "none", f"{artifact.filename}: sha256 verified")
        self._check_cancel(offer, pending)
        return str(path)

    def _check_cancel(self, offer: Offer, pending: dict[str, Any]) -> None:
        if self.ddi is None:
            return
        links = self.ddi.poll().get("_links", {})
        if "cancelAction" not in links:
            return
        stop = str(self.ddi.get(links["cancelAction"]["href"]).get("cancelAction", {}).get("stopId", ""))
        if stop != offer.action:
            return
        self._discard_download(pending)
        self.state.clear_pending()
        self.ddi.feedback(stop, "closed", "success", ["download stopped: action canceled"], kind="cancelAction")
        self.state.record("canceled", action=stop, version=offer.version)
        raise Cancelled(stop)

    def _install(self, source: str, artifact: Artifact, reporter: Reporter, offer: Offer) -> str | None:
        args: dict[str, tuple[str, Any]] = {}
        if self.cfg.stream_bundle:
            headers = [f"{k}: {v}" for k, v in offer.headers.items()]
            if headers:
                args["http-headers"] = ("as", headers)
            if not self.cfg.ssl_verify:
                args["tls-no-verify"] = ("b", True)
        reported = [-1]

        def progress(pct: int, text: str) -> None:
            if pct >= reported[0] + 20 or pct == 100:
                reported[0] = pct
                reporter.proceeding(f"installing {artifact.filename}: {pct}% {text}", (pct, 100))

        return self.device.install(source, args, progress)

    # --- forever --------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            self.clock.sleep(self.step())
