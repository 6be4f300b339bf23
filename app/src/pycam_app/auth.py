"""Credentials, sessions and login rate limiting.

Where the password comes from, first match wins:
  1. <data_dir>/credentials.json — written when the user changes the password (or on first start below)
  2. the factory identity (admin_password_hash or admin_password in /factory/identity.json)
  3. nothing provisioned: a random password is generated on first start, its hash stored in
     credentials.json and the clear text in <data_dir>/initial-password (mode 0600); the log says where.
There is never a fixed default password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .identity import Identity

log = logging.getLogger(__name__)

ITERATIONS = 60_000  # PBKDF2 rounds: ~50 ms on a Pi-class CPU; results are cached per process
MIN_PASSWORD = 8


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 (RFC 8018), 32 bytes: OpenSSL's where hashlib has it, else computed here.

    A plain-HTTP service never loads OpenSSL (cli._lean_process blocks _hashlib; libcrypto and its
    provider set-up cost ~3.5 MB). hashlib then has no pbkdf2_hmac on Python >= 3.12 and only a
    deprecated one on 3.11, so the loop is here, on the built-in SHA-256: ~6x slower than OpenSSL
    (~0.25 s for ITERATIONS on a laptop core), paid once per login thanks to the Authenticator's cache.
    """
    try:
        from _hashlib import pbkdf2_hmac
    except ImportError:
        pass
    else:
        return pbkdf2_hmac("sha256", password, salt, iterations)
    key = hashlib.sha256(password).digest() if len(password) > 64 else password
    key = key.ljust(64, b"\0")
    inner, outer = hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def prf(message: bytes) -> bytes:
        i, o = inner.copy(), outer.copy()
        i.update(message)
        o.update(i.digest())
        return o.digest()

    u = prf(salt + b"\x00\x00\x00\x01")  # one block: SHA-256's 32 bytes are the whole key
    acc = int.from_bytes(u, "big")
    for _ in range(iterations - 1):
        u = prf(u)
        acc ^= int.from_bytes(u, "big")
    return acc.to_bytes(32, "big")


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = pbkdf2_sha256(password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, iters, salt, digest = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        got = pbkdf2_sha256(password.encode(), base64.b64decode(salt), int(iters))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class Credentials:
    username: str
    password_hash: str
    source: str  # "data", "factory", "generated"


def load_credentials(data_dir: Path, ident: Identity, default_user: str) -> Credentials:
    stored = data_dir / "credentials.json"
    try:
        doc = json.loads(stored.read_text())
        if isinstance(doc, dict) and isinstance(doc.get("password_hash"), str):
            user = doc.get("username") if isinstance(doc.get("username"), str) else default_user
            return Credentials(str(user), doc["password_hash"], doc.get("source", "data"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        log.error("%s unreadable (%s): ignoring it", stored, e)
    user = ident.admin_user or default_user
    if ident.admin_password_hash:
        return Credentials(user, ident.admin_password_hash, "factory")
    if ident.admin_password:
        return Credentials(user, hash_password(ident.admin_password), "factory")
    password = secrets.token_urlsafe(12)
    creds = Credentials(user, hash_password(password), "generated")
    data_dir.mkdir(parents=True, exist_ok=True)
    initial = data_dir / "initial-password"
    _write_private(initial, f"user: {user}\npassword: {password}\n")
    save_credentials(data_dir, creds)
    log.warning(
        "no provisioned credentials: generated a random password for %r, readable (root only) in %s", user, initial
    )
    return creds


def reload_credentials(data_dir: Path, ident: Identity, default_user: str, current: Credentials) -> Credentials:
    """The credentials after the identity changed under a running service (`systemctl reload`).

    A password made up while the device was unprovisioned gives way to the factory one, as it does
    when the factory line restarts the service (factory-provision app-reset); a password the user set
    stays. Then the same order as at start (load_credentials).
    """
    if current.source == "generated" and (ident.admin_password_hash or ident.admin_password):
        (data_dir / "credentials.json").unlink(missing_ok=True)
        (data_dir / "initial-password").unlink(missing_ok=True)
        log.info("factory credentials for %r replace the generated password", ident.admin_user or default_user)
    return load_credentials(data_dir, ident, default_user)


def save_credentials(data_dir: Path, creds: Credentials) -> None:
    _write_private(
        data_dir / "credentials.json",
        json.dumps({"username": creds.username, "password_hash": creds.password_hash, "source": creds.source}),
    )


class RateLimiter:
    """Failed logins per client: after max_failures within lockout_s the client is locked out for lockout_s."""

    def __init__(self, max_failures: int, lockout_s: float, max_clients: int = 4096) -> None:
        self.max_failures, self.lockout_s = max_failures, lockout_s
        self._fails: OrderedDict[str, list[float]] = OrderedDict()
        self._max_clients = max_clients

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds the client must wait, 0 when it may try."""
        now = time.monotonic() if now is None else now
        times = [t for t in self._fails.get(client, []) if now - t < self.lockout_s]
        if len(times) >= self.max_failures:
            return max(0.0, self.lockout_s - (now - times[-self.max_failures]))
        return 0.0

    def failure(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        times = [t for t in self._fails.pop(client, []) if now - t < self.lockout_s]
        times.append(now)
        self._fails[client] = times[-self.max_failures :]
        while len(self._fails) > self._max_clients:
            self._fails.popitem(last=False)

    def success(self, client: str) -> None:
        self._fails.pop(client, None)


class Authenticator:
    """Checks passwords (with a per-process cache, PBKDF2 being slow on purpose) and manages sessions."""

    def __init__(self, data_dir: Path, creds: Credentials, session_ttl_s: float, max_sessions: int = 64) -> None:
        self.data_dir = data_dir
        self.creds = creds
        self.session_ttl_s = session_ttl_s
        self._sessions: OrderedDict[str, float] = OrderedDict()
        self._max_sessions = max_sessions
        self._good: bytes | None = None  # sha256 of the last verified password

    @property
    def username(self) -> str:
        return self.creds.username

    def check(self, username: str, password: str) -> bool:
        if not hmac.compare_digest(username.encode(), self.creds.username.encode()):
            verify_password(password, self.creds.password_hash)  # same cost for unknown users
            return False
        fp = hashlib.sha256(password.encode()).digest()
        if self._good is not None and hmac.compare_digest(fp, self._good):
            return True
        if verify_password(password, self.creds.password_hash):
            self._good = fp
            return True
        return False

    def change_password(self, new_password: str) -> None:
        if len(new_password) < MIN_PASSWORD:
            raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
        self.creds = Credentials(self.creds.username, hash_password(new_password), "data")
        save_credentials(self.data_dir, self.creds)
        self._good = None
        self._sessions.clear()  # everyone logs in again
        (self.data_dir / "initial-password").unlink(missing_ok=True)

    def replace(self, creds: Credentials) -> bool:
        """New credentials (a reload): sessions opened under the old ones end. False when unchanged."""
        if (creds.username, creds.password_hash) == (self.creds.username, self.creds.password_hash):
            self.creds = creds
            return False
        self.creds = creds
        self._good = None
        self._sessions.clear()
        return True

    def new_session(self) -> str:
        token = secrets.token_urlsafe(32)
        self._sessions[token] = time.monotonic() + self.session_ttl_s
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        return token

    def session_valid(self, token: str) -> bool:
        expiry = self._sessions.get(token)
        if expiry is None:
            return False
        if time.monotonic() > expiry:
            del self._sessions[token]
            return False
        return True

    def end_session(self, token: str) -> None:
        self._sessions.pop(token, None)
