"""A new device identity without a restart: `systemctl reload pycam-app` (SIGHUP to the service).

The factory line writes /factory while the service runs; a restart would cost the whole Python + PyAV
start (tens of seconds on a small CPU or under emulation) and a gap in the video. A reload re-reads
what the service took from /factory at start — identity.json (serial, model, admin login), the
device certificate and key — and ends in the state a restarted service would be in: HTTPS on the
same port once a certificate exists (plain HTTP no longer served), the factory admin login instead
of a password made up while unprovisioned, endpoint.json rewritten for pycam-health. Capture,
encoding and recording are not touched.

Everything is read and checked before anything changes: a malformed identity.json or a certificate
that does not match its key fails the reload with the reason, and the service keeps its previous
identity.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import auth, identity

if TYPE_CHECKING:
    import ssl

    from .service import CameraService

log = logging.getLogger(__name__)


class ReloadError(Exception):
    """The new identity cannot be used; the service keeps the one it has."""


def _prepare(svc: CameraService) -> tuple[identity.Identity, str | None, ssl.SSLContext | None]:
    """Read and check everything (in a worker thread: file I/O, importing ssl, loading the key)."""
    from .web.server import tls_context, tls_digest

    cfg = svc.cfg
    try:
        ident = identity.read(cfg.factory_dir)
    except identity.IdentityError as e:
        raise ReloadError(str(e)) from e
    if svc.web is not None and svc.web.tls_digest is not None and not cfg.web.tls_wanted():
        # a restart would fall back to plain HTTP; a reload does not drop TLS on a broken factory partition
        raise ReloadError(f"device certificate {cfg.web.cert} or key {cfg.web.key} missing: kept the one served")
    try:
        digest = tls_digest(cfg.web)
        # the same files as served: no new context (loading a key costs seconds on a small CPU)
        unchanged = svc.web is not None and digest == svc.web.tls_digest
        ctx = tls_context(cfg.web) if digest is not None and not unchanged else None
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError: e.g. KEY_VALUES_MISMATCH
        raise ReloadError(f"certificate {cfg.web.cert} / key {cfg.web.key} not usable: {e}") from e
    return ident, digest, ctx


async def reload_identity(svc: CameraService) -> str:
    """Take the identity in /factory now; returns what changed. Raises ReloadError (nothing changed)."""
    web = svc.web
    if web is None:
        raise ReloadError("the service has not started yet")
    ident, digest, ctx = await asyncio.get_running_loop().run_in_executor(None, _prepare, svc)
    changes = []
    if digest != web.tls_digest:
        old_url = web.url
        try:
            await web.rebind(ctx)
        except OSError as e:
            kept = f"kept {web.url}" if web.listening else "NOT LISTENING (restart the service)"
            raise ReloadError(f"cannot listen on port {web.port} with the new setting ({e}): {kept}") from e
        web.tls_digest = digest
        changes.append(f"{old_url} -> {web.url}")
    creds = auth.reload_credentials(svc.data_dir, ident, svc.cfg.auth.username, svc.auth.creds)
    if svc.auth.replace(creds):
        changes.append(f"login {creds.username} ({creds.source})")
    if ident != svc.identity:
        changes.append(f"identity {ident.serial or 'unprovisioned'}")
    svc.identity = ident
    svc.url = web.url
    svc.write_endpoint()
    return ", ".join(changes) or "nothing changed"
