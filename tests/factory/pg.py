"""A real, throwaway PostgreSQL server for the station database tests (Debian's postgresql package).

initdb + pg_ctl into a temporary directory, listening only on a Unix socket there. PostgreSQL refuses
to run as root: as root the server runs as the `postgres` system user the package created.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(directory: Path) -> Iterator[str]:
    """Start a server; yield the URL of an empty database `factory`; stop and remove it afterwards."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/host-packages.txt; run scripts/setup-host)")
    directory.mkdir(parents=True, exist_ok=True)
    data, sock = directory / "data", directory / "sock"
    sock.mkdir(exist_ok=True)
    prefix: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        for p in (directory, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
                   check=True, capture_output=True, env=env)
    port = "5432"
    opts = f"-k {sock} -c listen_addresses='' -p {port} -c fsync=off -c max_connections=100"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                    "-l", str(directory / "log"), "start"], check=True, capture_output=True, env=env)
    try:
        subprocess.run([*prefix, str(bindir / "createdb"), "-h", str(sock), "-p", port, "-U", user, "factory"],
                       check=True, capture_output=True, env=env)
        yield f"postgresql://{user}@/factory?host={sock}&port={port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True, env=env)
        shutil.rmtree(directory, ignore_errors=True)
