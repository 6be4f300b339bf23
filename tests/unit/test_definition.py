from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pycam import ROOT
from pycam.definition import load_layout, load_product, parse_size
from pycam.errors import PycamError


def test_sizes() -> None:
    assert parse_size("16KiB", "x") == 16384
    assert parse_size("1GiB", "x") == 1 << 30
    assert parse_size(512, "x") == 512
    with pytest.raises(PycamError, match="cannot read size '16MB'"):
        parse_size("16MB", "x")


def test_layout_numbers_and_slots(product) -> None:
    layout = product.layout
    assert [p.number for p in layout.partitions] == list(range(1, len(layout.partitions) + 1))
    assert layout.slots == ["A", "B"]
    assert layout.slot_part("A", "rootfs").fs == "squashfs"
    assert layout.slot_part("B", "kernel").fs == "vfat"
    assert product.board.linux_device(layout.slot_part("B", "rootfs")) == "/dev/vda5"
    assert product.compatible == "pycam-qemuarm64"


def test_unknown_board_names_the_boards() -> None:
    with pytest.raises(PycamError) as err:
        load_product("no-such-board")
    assert "unknown board 'no-such-board'" in str(err.value)
    assert "qemuarm64" in err.value.hint


def _layout_copy(tmp_path: Path, edit: str, replacement: str) -> Path:
    src = (ROOT / "partitions" / "ab-squashfs.yml").read_text()
    assert edit in src
    path = tmp_path / "layout.yml"
    path.write_text(src.replace(edit, replacement))
    return path


def test_overlapping_env_copies_are_refused(tmp_path: Path) -> None:
    path = _layout_copy(tmp_path, "redundant-offset: 1088KiB", "redundant-offset: 1032KiB")
    with pytest.raises(PycamError, match="overlap"):
        load_layout(path)


def test_slot_without_kernel_is_refused(tmp_path: Path) -> None:
    path = _layout_copy(tmp_path, "role: kernel\n    slot: B", "role: kernel\n    slot: A")
    with pytest.raises(PycamError, match="slot B has no kernel partition"):
        load_layout(path)


def test_partitions_must_fit_the_disk(tmp_path: Path) -> None:
    path = _layout_copy(tmp_path, "disk-size: 1024MiB", "disk-size: 512MiB")
    with pytest.raises(PycamError, match="disk-size"):
        load_layout(path)


def test_unknown_filesystem(tmp_path: Path) -> None:
    path = _layout_copy(tmp_path, "fs: ext4\n    size: 16MiB", "fs: jffs2\n    size: 16MiB")
    with pytest.raises(PycamError, match="jffs2"):
        load_layout(path)


def test_every_board_loads() -> None:
    for board in (ROOT / "board").glob("*/board.yml"):
        product = load_product(board.parent.name)
        assert product.board.arch == "arm64"


def test_board_missing_key_names_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for sub in ("partitions", "ota"):
        shutil.copytree(ROOT / sub, root / sub)
    (root / "board" / "x").mkdir(parents=True)
    text = (ROOT / "board" / "qemuarm64" / "board.yml").read_text().replace("arch: arm64\n", "")
    (root / "board" / "x" / "board.yml").write_text(text)
    with pytest.raises(PycamError, match="missing key 'arch'"):
        load_product("x", root)
