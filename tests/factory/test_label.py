"""The device label's QR code, decoded back by a real decoder from the label as written.

The station writes label.svg (pycam/factory/report.py, segno); the test renders that file with
librsvg (rsvg-convert, as a print pipeline would) and decodes the picture with ZBar (zbarimg):
the code must carry exactly the DID, MAC and model printed next to it, the DID valid for the line
(check digit) and the MAC inside the line's block. Both tools come from scripts/host-packages.txt.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pycam.factory import report
from pycam.factory.config import LineConfig
from pycam.factory.db import StationDB
from pycam.factory.ids import mac_int
from pycam.factory.station import Outcome

PAYLOAD = re.compile(r"^PYCAM;DID:(?P<did>[^;]+);MAC:(?P<mac>[^;]+);MODEL:(?P<model>[^;]+);$")


def tools() -> tuple[str, str]:
    rsvg, zbar = shutil.which("rsvg-convert"), shutil.which("zbarimg")
    if rsvg is None or zbar is None:
        pytest.skip("rsvg-convert or zbarimg not installed (run: scripts/setup-host)")
    return rsvg, zbar


def decode(svg: Path, zoom: float) -> list[str]:
    """Every QR code ZBar finds in the rendered label."""
    rsvg, zbar = tools()
    png = svg.with_name(f"{svg.stem}-{zoom}.png")
    subprocess.run([rsvg, "--zoom", str(zoom), "--background-color", "white", "-o", str(png), str(svg)],
                   check=True, capture_output=True, timeout=60)
    r = subprocess.run([zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"zbarimg found no QR code in {png}: {r.stderr}"
    return [line for line in r.stdout.splitlines() if line]


def provisioned_label(line: LineConfig, hw: str) -> tuple[Path, str, str]:
    db = StationDB(line.database)
    a = db.allocate(line.did, line.mac, line.station, hw)
    db.set_status(a.did, "provisioned")
    out = Outcome(hw, "pass", a.did, a.mac, hw, admin_password="pw-label-1")
    out.report_dir = report.device_report(line, out)
    return out.report_dir / "label.svg", a.did, a.mac


@pytest.mark.parametrize("zoom", [1.0, 3.0])  # the label's own size (4 px per module), and a print raster
def test_label_qr_decodes_to_the_did_and_mac_it_claims(line: LineConfig, zoom: float) -> None:
    tools()
    labels = [provisioned_label(line, f"hw-{i}") for i in range(3)]
    for svg, did, mac in labels:
        codes = decode(svg, zoom)
        assert len(codes) == 1, codes
        m = PAYLOAD.match(codes[0])
        assert m is not None, codes[0]
        assert (m["did"], m["mac"], m["model"]) == (did, mac, line.model)
        # the same identity is printed in text next to the code
        text = svg.read_text()
        assert f"DID {did}" in text and f"MAC {mac}" in text
        # and it is a DID of this line (check digit) and a MAC of its block
        line.did.parse(m["did"])
        assert 0 <= mac_int(m["mac"]) - line.mac.start < line.mac.count
    # three devices, three different codes
    assert len({decode(svg, zoom)[0] for svg, _, _ in labels}) == 3
