"""Build-server friendly logging: UTC timestamps, the stage, and how long it took."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("pycam")


def setup(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(levelname)-5s %(message)s", "%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


@contextmanager
def stage(name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Log the start and the duration of one build stage (and record it in `timings`)."""
    log.info("[%s] start", name)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log.error("[%s] failed after %.1f s", name, time.monotonic() - start)
        raise
    elapsed = time.monotonic() - start
    log.info("[%s] done in %.1f s", name, elapsed)
    if timings is not None:
        timings[name] = round(elapsed, 1)
