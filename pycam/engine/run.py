"""Running host tools: logged command lines, captured output, errors that say what failed."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pycam.errors import PycamError
from pycam.log import log

DISK_FULL_BYTES = 64 * 1024**2


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    stream: bool = False,
    check_space: Path | None = None,
) -> str:
    """Run a command; on failure raise PycamError naming the step and the tool's last words.

    stream=True passes the tool's output through (long steps show their own progress);
    otherwise the output is kept and shown only when the command fails.
    """
    args = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(args))
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            stdout=None if stream else subprocess.PIPE,
            stderr=None if stream else subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except FileNotFoundError:
        raise PycamError(f"{what}: {args[0]} is not installed", "run: sudo scripts/setup-host") from None
    if proc.returncode != 0:
        if check_space is not None:
            raise_if_disk_full(check_space, what)
        tail = "\n".join((proc.stdout or "").strip().splitlines()[-25:])
        raise PycamError(
            f"{what} failed: `{shlex.join(args[:6])}{' ...' if len(args) > 6 else ''}` exited {proc.returncode}"
            + (f"\n{tail}" if tail else "")
        )
    return proc.stdout or "" if capture or not stream else ""


def raise_if_disk_full(path: Path, what: str) -> None:
    probe = path if path.exists() else path.parent
    free = shutil.disk_usage(probe).free
    if free < DISK_FULL_BYTES:
        raise PycamError(
            f"{what}: the disk holding {path} is full ({free // 1024**2} MiB free)",
            "free some space (or point PYCAM_BUILD_DIR at a bigger disk) and run the build again",
        )


def oserror(exc: OSError, what: str, path: Path) -> PycamError:
    if exc.errno == errno.ENOSPC:
        return PycamError(
            f"{what}: no space left on the disk holding {path}",
            "free some space (or point PYCAM_BUILD_DIR at a bigger disk) and run the build again",
        )
    return PycamError(f"{what}: {exc}")
