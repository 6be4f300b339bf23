"""Device identity from the factory partition (read-only, written by the factory line). All optional.

Read from <factory_dir> (default /factory):
  identity.json  {"serial": str, "model": str, "hw_revision": str,
                  "admin_user": str, "admin_password_hash": "pbkdf2_sha256$<iter>$<salt b64>$<hash b64>",
                  "admin_password": str}   (the hash is preferred; the plain form is for printed labels)
  device.crt / device.key   the device TLS certificate and key (paths from [web] cert/key)
Unknown keys are ignored; a malformed file is logged and treated as absent (an unprovisioned device).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    serial: str = ""
    model: str = ""
    hw_revision: str = ""
    admin_user: str = ""
    admin_password_hash: str = ""
    admin_password: str = ""

    @property
    def provisioned(self) -> bool:
        return bool(self.serial)


class IdentityError(ValueError):
    """identity.json exists but cannot be read or is not an identity."""


def read(factory_dir: str | Path) -> Identity:
    """The identity; Identity() when there is none (no file, or a dangling link: an interrupted write).

    Raises IdentityError for a file that exists but is unreadable or malformed: a reload keeps the
    identity it has rather than dropping to unprovisioned.
    """
    path = Path(factory_dir) / "identity.json"
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return Identity()
    except (OSError, ValueError) as e:
        raise IdentityError(f"{path} unreadable ({e})") from e
    if not isinstance(data, dict):
        raise IdentityError(f"{path} is not a JSON object")

    def s(key: str) -> str:
        v = data.get(key, "")
        return v if isinstance(v, str) else ""

    return Identity(
        serial=s("serial"),
        model=s("model"),
        hw_revision=s("hw_revision"),
        admin_user=s("admin_user"),
        admin_password_hash=s("admin_password_hash"),
        admin_password=s("admin_password"),
    )


def load(factory_dir: str | Path) -> Identity:
    """At start: a malformed identity is logged and the device runs as unprovisioned."""
    try:
        return read(factory_dir)
    except IdentityError as e:
        log.error("%s: running as an unprovisioned device", e)
        return Identity()
