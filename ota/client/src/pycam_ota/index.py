"""The static update index written by `pycam publish --to DIR` (format in ota/client/README.md).

  {index_url}/{compatible}/index.json
  {"format": 1, "compatible": str, "latest": version, "poll_seconds": int,
   "releases": {version: {"version", "published", "allow_downgrade",
                          "bundles": [{"file", "size", "sha256", "base"?}]}}}

Bundle files are relative to index.json, so the directory can be served from anywhere.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from pycam_ota.ddi import Artifact, Offer
from pycam_ota.http import Http, HttpError

FORMAT = 1


def index_location(index_url: str, compatible: str) -> str:
    return f"{index_url.rstrip('/')}/{urllib.parse.quote(compatible)}/index.json"


def fetch(http: Http, index_url: str, compatible: str) -> dict[str, Any]:
    url = index_location(index_url, compatible)
    doc = http.json(url)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HttpError(f"{url}: not a format-{FORMAT} pycam update index")
    if doc.get("compatible") != compatible:
        raise HttpError(f"{url}: index is for {doc.get('compatible')!r}, this device is {compatible!r}")
    return doc


def latest_offer(doc: dict[str, Any], url: str) -> Offer | None:
    version = doc.get("latest")
    if not version:
        return None
    release = doc.get("releases", {}).get(version)
    if not release:
        raise HttpError(f"{url}: latest {version!r} is not among the releases")
    artifacts = tuple(
        Artifact(filename=b["file"], url=urllib.parse.urljoin(url, urllib.parse.quote(b["file"])),
                 size=b.get("size"), sha256=b["sha256"], base=b.get("base"))
        for b in release.get("bundles", [])
    )
    return Offer(action=f"index:{version}", version=version, artifacts=artifacts,
                 allow_downgrade=bool(release.get("allow_downgrade", False)))
