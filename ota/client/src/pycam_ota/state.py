"""State kept on /data across reboots: the action in flight, its outcome, a short history."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class State:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.pending_file = directory / "pending.json"
        self.status_file = directory / "status.json"
        self.history_file = directory / "history.jsonl"

    def _write(self, path: Path, data: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a power cut leaves the old or the new file, never half of one

    def pending(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.pending_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def set_pending(self, data: dict[str, Any]) -> None:
        self._write(self.pending_file, data)

    def clear_pending(self) -> None:
        self.pending_file.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        try:
            data = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def record(self, event: str, **fields: Any) -> None:
        """The latest outcome (status.json) and one line of history."""
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
        status = self.status()
        status.update(entry)
        status.setdefault("failed_versions", [])
        if event == "failure" and fields.get("version") and fields["version"] not in status["failed_versions"]:
            status["failed_versions"].append(fields["version"])
        self._write(self.status_file, status)
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.history_file, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def failed_versions(self) -> list[str]:
        return list(self.status().get("failed_versions", []))
