"""A content-keyed cache of stage outputs.

An entry is a directory named after the stage and the hash of its inputs. It is built
under a temporary name and renamed into place only when complete, with a record of
every file's sha256, so a crash never leaves an entry that looks valid and a corrupted
entry is noticed and rebuilt instead of silently used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycam.log import log

RECORD = "pycam-cache.json"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(path: Path) -> dict[str, object]:
    """Size and sha256 of an output, as the manifests and sidecars list it."""
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def tree_sha256(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): file_sha256(p)
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != RECORD
    }


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, stage: str, inputs: dict[str, Any]) -> Path:
        return self.root / f"{stage}-{digest(inputs)[:16]}"

    def get(
        self,
        stage: str,
        inputs: dict[str, Any],
        produce: Callable[[Path], None],
        *,
        refresh: bool = False,
    ) -> Path:
        """The entry for these inputs, produced by produce(tmpdir) if it is missing or broken."""
        path = self.entry(stage, inputs)
        if path.exists() and not refresh:
            problem = self._verify(path)
            if problem is None:
                log.info("[%s] cached: %s", stage, path.name)
                return path
            log.warning("[%s] cache entry %s is corrupt (%s); discarding it and rebuilding", stage, path, problem)
        if path.exists():
            shutil.rmtree(path)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{path.name}-{time.monotonic_ns()}"
        tmp.mkdir()
        try:
            produce(tmp)
            record = {"stage": stage, "inputs": inputs, "files": tree_sha256(tmp)}
            (tmp / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @staticmethod
    def _verify(path: Path) -> str | None:
        try:
            record = json.loads((path / RECORD).read_text())
        except (OSError, ValueError) as exc:
            return f"no readable {RECORD}: {exc}"
        actual = tree_sha256(path)
        if actual != record.get("files"):
            changed = sorted(set(actual.items()) ^ set(record.get("files", {}).items()))
            return f"{len(changed)} file(s) differ from the record, e.g. {changed[0][0] if changed else '?'}"
        return None

    def prune(self, keep: set[Path]) -> None:
        """Remove entries of stages that were rebuilt with other inputs (keeps the cache bounded)."""
        stages = {p.name.rsplit("-", 1)[0] for p in keep}
        for entry in self.root.glob("*-*"):
            if entry not in keep and entry.name.rsplit("-", 1)[0] in stages and entry.is_dir():
                log.debug("pruning cache entry %s", entry)
                shutil.rmtree(entry, ignore_errors=True)
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
