"""Small helpers for talking to the booted device through labgrid's ShellDriver."""

from __future__ import annotations

import json
import time
from typing import Any


def sh(shell: Any, command: str, timeout: float = 60) -> str:
    """Run a command that must succeed; return its output."""
    return "\n".join(shell.run_check(command, timeout=timeout))


def sh_rc(shell: Any, command: str, timeout: float = 60) -> tuple[str, int]:
    out, _, code = shell.run(command, timeout=timeout)
    return "\n".join(out), code


def uboot_env(shell: Any) -> dict[str, str]:
    lines = shell.run_check("fw_printenv")
    return dict(line.split("=", 1) for line in lines if "=" in line)


def rauc_status(shell: Any) -> dict[str, Any]:
    return json.loads(sh(shell, "rauc status --detailed --output-format=json"))


def slot(status: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in status["slots"]:
        if name in entry:
            return entry[name]
    raise KeyError(name)


def wait_unit_done(shell: Any, unit: str, timeout: float) -> str:
    """Wait for a oneshot unit to finish; return 'active' (succeeded) or 'failed'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, _ = sh_rc(shell, f"systemctl is-active {unit}")
        if state.strip() in ("active", "failed"):
            return state.strip()
        time.sleep(3)
    raise TimeoutError(f"{unit} still not finished after {timeout:.0f} s")
