"""Retention: when free space falls under the threshold (or recordings age out), the oldest go first."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from . import fmp4
from .config import StorageConfig
from .index import Index, parse_path

log = logging.getLogger(__name__)


def needed_bytes(root: Path, cfg: StorageConfig) -> int:
    """Bytes to free so that free space meets both min_free_mb and min_free_percent."""
    usage = shutil.disk_usage(root)
    want = max(cfg.min_free_mb * 1024 * 1024, int(usage.total * cfg.min_free_percent / 100))
    return max(0, want - usage.free)


def remove(index: Index, root: Path, row: dict[str, object]) -> None:
    # Row first: a power cut in between leaves an orphan file (harmless), never a row without its file.
    index.delete(int(row["id"]))  # type: ignore[call-overload]
    path = root / str(row["path"])
    path.unlink(missing_ok=True)
    for parent in path.parents:  # drop empty hour/day/month/year directories
        if parent == root:
            break
        try:
            parent.rmdir()
        except OSError:
            break


def enforce(index: Index, root: Path, cfg: StorageConfig, now: float | None = None) -> list[int]:
    deleted: list[int] = []
    if cfg.max_age_days:
        cutoff = (time.time() if now is None else now) - cfg.max_age_days * 86400
        for row in index.list(end=cutoff, state="closed", limit=10_000, oldest_first=True):
            remove(index, root, row)
            deleted.append(int(row["id"]))
    need = needed_bytes(root, cfg)
    while need > 0:
        batch = index.list(state="closed", limit=50, oldest_first=True)
        if not batch:
            log.warning("storage below the free-space threshold but no closed recording left to delete")
            break
        for row in batch:
            remove(index, root, row)
            deleted.append(int(row["id"]))
            need -= int(row["bytes"] or 0)
            if need <= 0:
                break
        need = needed_bytes(root, cfg)
    if deleted:
        log.info("retention: deleted %d recording(s)", len(deleted))
    return deleted


def rebuild(index: Index, root: Path) -> int:
    """Re-index every recording file under root (after the index was lost or damaged)."""
    known = index.paths()
    added = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            parsed = parse_path(rel)
            if parsed is None or rel in known:
                continue
            start, kind = parsed
            try:
                scan = fmp4.repair(full)
            except OSError:
                continue
            if scan.samples == 0:
                full.unlink(missing_ok=True)
                continue
            rec_id = index.add(rel, kind, "main", start, None)
            index.close_recording(
                rec_id, start + scan.duration_s, round(scan.duration_s, 3), scan.samples, scan.valid_length
            )
            added += 1
    log.info("index rebuilt: %d recording(s) found", added)
    return added
