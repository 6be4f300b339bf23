"""HTTP(S) for the client: JSON requests and resumable, hash-checked downloads (standard library only)."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycam_ota.config import Config

log = logging.getLogger("pycam-ota")
CHUNK = 256 * 1024


class HttpError(Exception):
    def __init__(self, message: str, status: int | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient  # the network failed, not the data: try again later (and resume)


@dataclass
class Http:
    """Requests with the configuration's TLS settings and timeouts."""

    cfg: Config

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cfg.ca_file or None)
        if not self.cfg.ssl_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cfg.ssl_cert and self.cfg.ssl_key:
            ctx.load_cert_chain(self.cfg.ssl_cert, self.cfg.ssl_key)
        return ctx

    def open(self, url: str, *, method: str = "GET", body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        ctx = self.context() if url.startswith("https:") else None
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.cfg.timeout, context=ctx)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace").strip()
            raise HttpError(f"{method} {url}: HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else ""),
                            exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HttpError(f"{method} {url}: {reason}", transient=True) from None

    def json(self, url: str, *, method: str = "GET", payload: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        hdrs = {"Accept": "application/hal+json, application/json", **(headers or {})}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            hdrs["Content-Type"] = "application/json"
        with self.open(url, method=method, body=body, headers=hdrs) as resp:
            data = resp.read()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise HttpError(f"{method} {url}: the answer is not JSON") from None

    def download(self, url: str, dest: Path, *, sha256: str, size: int | None,
                 headers: dict[str, str] | None = None, progress: Any = None) -> Path:
        """Fetch `url` to `dest`, resuming `dest.part` with a Range request; the sha256 must match.

        A partial file of another artifact is never resumed: `dest.part.sha256` names what it holds.
        """
        part = dest.with_name(dest.name + ".part")
        marker = dest.with_name(dest.name + ".part.sha256")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and file_sha256(dest) == sha256:
            return dest
        if not (marker.exists() and marker.read_text().strip() == sha256):
            part.unlink(missing_ok=True)
            marker.write_text(sha256 + "\n")
        have = part.stat().st_size if part.exists() else 0
        if size is not None:
            need = size - have
            free = shutil.disk_usage(dest.parent).free
            if need > free:
                raise HttpError(f"not enough space in {dest.parent} for {url}: {need} bytes needed, {free} free")
        hdrs = dict(headers or {})
        if have and (size is None or have < size):
            hdrs["Range"] = f"bytes={have}-"
            log.info("resuming %s at byte %d", url, have)
        if size is None or have < size:
            self._fetch_into(url, part, have, hdrs, size, progress)
        actual = file_sha256(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            marker.unlink(missing_ok=True)
            raise HttpError(f"{url}: sha256 {actual} does not match the expected {sha256}; download discarded")
        os.replace(part, dest)
        marker.unlink(missing_ok=True)
        return dest


    def _fetch_into(self, url: str, part: Path, have: int, headers: dict[str, str], size: int | None,
                    progress: Any) -> None:
        with self.open(url, headers=headers) as resp:
            if have and resp.status != 206:
                have = 0  # the server ignored the Range: start over
            elif resp.status == 206 and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                raise HttpError(f"GET {url}: Content-Range {resp.headers.get('Content-Range')!r} "
                                f"does not continue at byte {have}")
            got = have
            with open(part, "ab" if have else "wb") as out:
                try:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        got += len(chunk)
                        if progress:
                            progress(got, size)
                except (http.client.HTTPException, OSError) as exc:
                    # what arrived stays in the .part file: the next attempt resumes after it
                    raise HttpError(f"GET {url}: connection lost after {got} bytes ({exc!r})",
                                    transient=True) from None
                finally:
                    out.flush()
                    os.fsync(out.fileno())
            if size is not None and got < size:
                raise HttpError(f"GET {url}: connection closed after {got} of {size} bytes", transient=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
