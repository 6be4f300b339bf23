"""Debian's updates since the point release, month by month: which package versions, uploaded when.

bench/delta_bench.py uses this to model a monthly security update. Debian's archive keeps only each
suite's newest version, so a past month cannot be rebuilt exactly; what can be rebuilt is the point
release (suite `bookworm`) and the point release plus any chosen subset of today's updates
(`bookworm-security`, `bookworm-updates`). Each updated package's newest version carries its upload
date in its changelog, so "the update of month M" is modelled as: the point release, with the
packages whose newest version was uploaded in M at that version. A package updated in several
months appears only in the last one, with all its changes since the point release: the model errs
towards larger monthly deltas, never smaller.

A private apt configuration (arm64 indices in a temporary directory, nothing changed on the host)
reads the indices and downloads the .debs whose changelogs give the dates.
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

# the trailer line of a changelog entry: " -- Name <mail>  Thu, 29 Oct 2026 12:00:00 +0000"
TRAILER = re.compile(rb"^ -- .*<.*>  (.+)$", re.MULTILINE)
KERNEL_META = "linux-image-arm64"


@dataclass(frozen=True)
class Update:
    package: str
    old: str
    new: str
    uploaded: datetime

    @property
    def month(self) -> str:
        return self.uploaded.strftime("%Y-%m")


class Apt:
    """apt-get / apt-cache for arm64 on the given sources, with all state under `work`."""

    def __init__(self, sources: list[str], work: Path) -> None:
        self.work = work
        for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (work / "state" / "status").touch()
        (work / "sources.list").write_text("".join(f"{line}\n" for line in sources))
        self.options = [f"-oDir::State={work}/state", f"-oDir::State::status={work}/state/status",
                        f"-oDir::Cache={work}/cache", f"-oDir::Etc::SourceList={work}/sources.list",
                        "-oDir::Etc::SourceParts=/dev/null", "-oDir::Etc::Preferences=/dev/null",
                        "-oDir::Etc::PreferencesParts=/dev/null", "-oAPT::Architecture=arm64",
                        "-oAPT::Architectures=arm64", "-oDebug::NoLocking=1",
                        "-oAPT::Sandbox::User=root"]  # the .debs land in a root-owned temporary directory
        subprocess.run(["apt-get", *self.options, "-qq", "update"], check=True)

    def versions(self, package: str) -> list[tuple[str, str]]:
        """(version, suite line) as `apt-cache madison` lists them, newest first."""
        out = subprocess.run(["apt-cache", *self.options, "madison", package], check=True, capture_output=True,
                             text=True).stdout
        return [(cols[1].strip(), cols[2].strip()) for cols in (line.split("|") for line in out.splitlines())
                if len(cols) >= 3]

    def download(self, package: str, version: str) -> Path | None:
        debs = self.work / "debs"
        done = subprocess.run(["apt-get", *self.options, "-qq", "download", f"{package}={version}"], cwd=debs,
                              capture_output=True)
        if done.returncode != 0:
            return None
        return next(debs.glob(f"{package}_*.deb"), None)


def _changelog_date(deb: Path, package: str) -> datetime | str | None:
    """The top entry's date, or the package whose doc directory this one links to, or None."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        docdir = f"usr/share/doc/{package}"
        # a binNMU's own changelog comes first: it is when these bytes were built
        for name in (f"{docdir}/changelog.Debian.arm64.gz", f"{docdir}/changelog.Debian.gz", f"{docdir}/changelog.gz"):
            member = members.get(name)
            if member is not None and member.isfile():
                text = gzip.decompress(tar.extractfile(member).read())  # type: ignore[union-attr]
                match = TRAILER.search(text)
                if match:
                    return parsedate_to_datetime(match.group(1).decode())
        link = members.get(docdir)
        if link is not None and link.issym():
            return link.linkname.rstrip("/").split("/")[-1]
    return None


def upload_date(apt: Apt, package: str, version: str) -> datetime:
    """When this version was uploaded, from the changelog in its .deb (or in the package its docs link to)."""
    for _ in range(3):
        deb = apt.download(package, version)
        if deb is None:
            raise RuntimeError(f"cannot download {package}={version} to read its changelog")
        found = _changelog_date(deb, package)
        deb.unlink()
        if isinstance(found, datetime):
            return found
        if found is None:
            break
        # the docs live in another binary package of the same source, at the same version
        package = found
    raise RuntimeError(f"{package}={version}: no changelog to date it")


def updates(apt: Apt, changed: dict[str, tuple[str, str]]) -> list[Update]:
    """changed: package -> (point release version, today's version), e.g. from two roots' contents."""
    found = []
    for package, (old, new) in sorted(changed.items()):
        if old == "-" or new == "-":
            continue  # appeared or vanished with another update: apt resolves it from the pins
        found.append(Update(package, old, new, upload_date(apt, package, new)))
    return found


def kernel_update(apt: Apt) -> Update | None:
    """The kernel metapackage: the point release's version and the newest, if they differ."""
    versions = apt.versions(KERNEL_META)
    point = next((v for v, suite in versions if suite.endswith("bookworm/main arm64 Packages")), None)
    newest = versions[0][0] if versions else None
    if point is None or newest is None or newest == point:
        return None
    return Update(KERNEL_META, point, newest, upload_date(apt, KERNEL_META, newest))


def month_pins(all_updates: list[Update], month: str) -> dict[str, str]:
    """package -> version for a root that has exactly month's updates on top of the point release."""
    return {u.package: (u.new if u.month == month else u.old) for u in all_updates}
