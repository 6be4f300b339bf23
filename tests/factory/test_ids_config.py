"""DID format, MAC blocks and the line configuration's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycam.errors import PycamError
from pycam.factory.config import load_line
from pycam.factory.ids import DidFormat, MacBlock, hostname, luhn


def test_did_format_and_check_digit() -> None:
    f = DidFormat(prefix="PCAM", line="01", digits=8, first=1)
    did = f.make(42)
    assert did.startswith("PCAM-01-00000042-")
    assert f.parse(did) == 42
    assert luhn("0100000042") == int(did[-1])
    wrong = did[:-1] + str((int(did[-1]) + 1) % 10)
    with pytest.raises(ValueError, match="check digit"):
        f.parse(wrong)
    # a transposition of two adjacent digits is caught by the Luhn digit
    swapped = did.replace("00000042", "00000024")
    with pytest.raises(ValueError):
        f.parse(swapped)
    with pytest.raises(ValueError, match="not a DID of this line"):
        f.parse("PCAM-02-00000042-0")
    assert hostname(did) == did.lower()


def test_did_format_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="prefix"):
        DidFormat(prefix="pc")
    with pytest.raises(ValueError, match="two digits"):
        DidFormat(line="1")
    with pytest.raises(ValueError, match="does not fit"):
        DidFormat(digits=4).make(10_000)


def test_mac_blocks() -> None:
    dev = MacBlock.parse({"block": "02:50:43:00:00:00", "count": 3})
    assert dev.locally_administered
    assert [dev.address(i) for i in range(3)] == ["02:50:43:00:00:00", "02:50:43:00:00:01", "02:50:43:00:00:02"]
    with pytest.raises(IndexError, match="exhausted"):
        dev.address(3)
    oui = MacBlock.parse({"oui": "00:1a:2b", "first": "00:10:00", "count": 16})
    assert not oui.locally_administered and oui.address(15) == "00:1a:2b:00:10:0f"
    with pytest.raises(ValueError, match="multicast"):
        MacBlock.parse({"block": "01:00:5e:00:00:00", "count": 1})
    with pytest.raises(ValueError, match="crosses its OUI"):
        MacBlock.parse({"oui": "00:1a:2b", "first": "ff:ff:ff", "count": 2})


def test_repository_line_config_loads() -> None:
    line = load_line()
    assert line.board == "qemuarm64" and line.mac.locally_administered
    assert line.did.make(line.did.first) == "PCAM-01-00000001-6"  # the example factory/README.md shows


@pytest.mark.parametrize(("edit", "message"), [
    (("  tenant_id: DEFAULT", "  tenant: DEFAULT"), "unknown key"),
    (("  storage_min_mb_s: 10", "  storage_min_mb_s: fast"), "storage_min_mb_s` must be a number"),
    (('  line: "01"', "  line: 1"), "two digits"),
    (('  block: "02:50:43:00:00:00"', '  block: "03:50:43:00:00:00"'), "multicast"),
])
def test_bad_line_config_names_the_problem(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = (Path(__file__).parents[2] / "factory" / "line.yml").read_text()
    assert edit[0] in text
    path = tmp_path / "line.yml"
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(PycamError, match=message):
        load_line(path)
