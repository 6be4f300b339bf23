"""Talking to a device's factory helpers over its console (a labgrid ShellDriver, or anything with
the same `run(command, timeout=...) -> (stdout lines, stderr lines, exit code)`)."""

from __future__ import annotations

import base64
import json
import shlex
import time
from typing import Any, Protocol

from pycam.errors import PycamError

MARK = "PYCAM-FACTORY "
CHUNK = 3072  # base64 characters per console line: below the tty's 4096-byte canonical line limit


class Shell(Protocol):
    def run(self, cmd: str, timeout: float = ...) -> tuple[list[str], list[str], int]: ...


class Refused(PycamError):
    """The device refused (already provisioned, certificate not for its key, bad CA chain)."""


class DeviceLink:
    def __init__(self, shell: Shell, helper_dir: str = "/usr/lib/pycam") -> None:
        self.shell = shell
        self.helper_dir = helper_dir

    def sh(self, command: str, timeout: float = 60) -> str:
        out, _, code = self.shell.run(command, timeout=timeout)
        if code != 0:
            raise PycamError(f"device command failed ({code}): {command[:80]}: {' '.join(out)[-300:]}")
        return "\n".join(out)

    def helper(self, name: str, *args: str, timeout: float = 120) -> dict[str, Any]:
        command = " ".join([f"{self.helper_dir}/{name}", *map(shlex.quote, args)])
        out, _, code = self.shell.run(command, timeout=timeout)
        answers = [line[len(MARK):] for line in out if line.startswith(MARK)]
        if not answers:
            raise PycamError(f"{name} gave no answer (exit {code}): {' '.join(out)[-400:]}",
                             "is this image built with the factory helpers (rootfs/overlay/usr/lib/pycam)?")
        doc: dict[str, Any] = json.loads(answers[-1])
        if code == 3:
            raise Refused(f"device refused: {doc.get('error')}")
        if code != 0 or not doc.get("ok"):
            raise PycamError(f"{name} {args[:1]} failed on the device: {doc.get('error')}")
        return doc

    def put(self, path: str, data: bytes) -> None:
        """Write a file on the device through the console, base64 in short lines, checked by sha256."""
        import hashlib

        text = base64.b64encode(data).decode()
        self.sh(f": > {shlex.quote(path)}.b64")
        for i in range(0, len(text), CHUNK):
            self.sh(f"printf %s {text[i:i + CHUNK]} >> {shlex.quote(path)}.b64")
        digest = self.sh(f"base64 -d {shlex.quote(path)}.b64 > {shlex.quote(path)} && rm {shlex.quote(path)}.b64"
                         f" && sha256sum {shlex.quote(path)}").split()[0]
        if digest != hashlib.sha256(data).hexdigest():
            raise PycamError(f"{path} arrived damaged on the device (console transfer)", "re-run provisioning")

    def clock(self) -> float:
        """Device clock minus station clock, seconds (console round trip halved)."""
        t0 = time.time()
        device = float(self.sh("date +%s.%N"))
        t1 = time.time()
        return device - (t0 + t1) / 2
