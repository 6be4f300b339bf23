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


# Runs on the device (python3 there): one call of the camera app's API with the device's own
# credentials (the first-boot password in /data/app, or what the factory provisioned).
_API_CLIENT = r'''
import base64, json, os, ssl, sys, urllib.request
method, path, body = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
text = open(os.environ.get("PW", "/data/app/initial-password")).read()
# the first-boot file says "user: admin" and "password: ..."; PW may name a bare password
password = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("password:")),
                text.strip())
auth = base64.b64encode(f"admin:{password}".encode()).decode()
request = urllib.request.Request(f"{os.environ.get('BASE', 'http://127.0.0.1:8080')}{path}", method=method,
                                 data=body.encode() if body else None,
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=60, context=ssl._create_unverified_context()) as response:
    sys.stdout.buffer.write(response.read())
'''


def app_api(shell: Any, method: str, path: str, body: Any = None, timeout: float = 90) -> Any:
    """Call the camera app's HTTP API on the device; JSON answers are decoded."""
    import base64
    import shlex

    script = base64.b64encode(_API_CLIENT.encode()).decode()
    args = [method, path] + ([json.dumps(body)] if body is not None else [])
    out = sh(shell, f"echo {script} | base64 -d > /tmp/api.py && python3 /tmp/api.py {shlex.join(args)}",
             timeout=timeout)
    try:
        return json.loads(out)
    except ValueError:
        return out
