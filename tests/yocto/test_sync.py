"""meta-pycam's generated files are what the product definition gives (one definition, two engines)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pycam import ROOT
from pycam.definition import load_product
from pycam.generate.bootenv import env_copy, initial_vars
from pycam.yocto import COPIED_FILES, MACHINE_FILES, check, expected, main, squashfs_settings, sync

from .conftest import BOARDS, LAYER

# what the generator reads: a copy of these is a complete product definition
DEFINITION = ("board", "partitions", "ota", "rootfs")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A scratch checkout: the definition and the layer, to change and regenerate."""
    for name in DEFINITION:
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copytree(LAYER, tmp_path / "meta-pycam")
    return tmp_path


def test_three_boards_are_yocto_boards() -> None:
    assert {"qemuarm64", "raspberrypi4-64", "raspberrypi0-2w-64"} <= set(BOARDS)


def test_committed_layer_matches_the_definition() -> None:
    drift = check(ROOT)
    listing = ", ".join(f"{d.path} ({d.reason})" for d in drift)
    assert not drift, f"run `python -m pycam.yocto sync`: {listing}"


def test_check_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--check"]) == 0
    assert "matches" in capsys.readouterr().out


def test_every_board_has_every_file() -> None:
    files = expected(ROOT)
    for board in BOARDS:
        machine = load_product(board).board.yocto_machine
        for pattern in MACHINE_FILES.values():
            assert Path("meta-pycam") / pattern.format(m=machine) in files


def test_definition_change_is_detected_and_synced(tree: Path) -> None:
    layout = tree / "partitions" / "ab-squashfs.yml"
    data = yaml.safe_load(layout.read_text())
    for part in data["partitions"]:
        if part["name"] == "data":
            part["size"] = "512MiB"
    data["disk-size"] = "2048MiB"
    layout.write_text(yaml.safe_dump(data, sort_keys=False))

    drift = {d.path.name for d in check(tree)}
    assert {"pycam-qemuarm64.wks.in", "pycam-raspberrypi4-64.wks.in"} <= drift
    assert main(["sync", "--check", "--root", str(tree)]) == 1

    sync(tree)
    assert check(tree) == []
    assert "--fixed-size 512M" in (tree / "meta-pycam/wic/pycam-qemuarm64.wks.in").read_text()


def test_compatible_change_reaches_system_conf(tree: Path) -> None:
    ota = tree / "ota" / "ota.yml"
    ota.write_text(ota.read_text().replace('compatible: "pycam-{board}"', 'compatible: "acme-{board}"'))
    sync(tree)
    conf = (tree / "meta-pycam/recipes-core/rauc/files/qemuarm64/system.conf").read_text()
    assert "compatible=acme-qemuarm64" in conf
    inc = (tree / "meta-pycam/conf/distro/include/pycam-board-qemuarm64.inc").read_text()
    assert 'PYCAM_COMPATIBLE = "acme-qemuarm64"' in inc


def test_stale_board_files_are_reported(tree: Path) -> None:
    stale = tree / "meta-pycam/recipes-core/rauc/files/oldboard/system.conf"
    stale.parent.mkdir(parents=True)
    stale.write_text("[system]\n")
    assert any(d.reason == "stale" and d.path.name == "system.conf" for d in check(tree))
    sync(tree)
    assert not stale.exists()


def test_stale_copy_of_the_delta_tooling_is_caught_and_synced(tree: Path) -> None:
    """The layer's pycam-bundle-delta runs copies of ota/delta/make-delta and ota/hooks/delta-install."""
    copies = {Path("meta-pycam") / copy: tree / source for source, copy in COPIED_FILES.items()}
    assert {p.name for p in copies.values()} == {"make-delta", "delta-install"}
    script = tree / "ota" / "delta" / "make-delta"
    script.write_text(script.read_text().replace("SOURCE_WINDOW = 16 * 1024 * 1024", "SOURCE_WINDOW = 8 * 1024 * 1024"))
    hook_copy = tree / "meta-pycam/recipes-core/bundles/files/delta-install"
    hook_copy.chmod(0o644)  # a copy that lost its executable bit
    assert {(d.path.name, d.reason) for d in check(tree)} == {("make-delta", "differs"), ("delta-install", "differs")}
    assert main(["sync", "--check", "--root", str(tree)]) == 1

    sync(tree)
    assert check(tree) == []
    for copy, source in copies.items():
        assert (tree / copy).read_bytes() == source.read_bytes()
        assert (tree / copy).stat().st_mode & 0o111


@pytest.mark.parametrize("board", BOARDS)
def test_boot_script_device_tree(board: str) -> None:
    product = load_product(board)
    machine = product.board.yocto_machine
    script = (LAYER / f"recipes-bsp/pycam-boot-script/files/{machine}/boot.cmd").read_text()
    booti = [line for line in script.splitlines() if line.strip().startswith("booti ")]
    assert len(booti) == 1
    fdt = "${fdt_addr}" if board.startswith("raspberrypi") else "${fdtcontroladdr}"
    assert booti[0].split()[-1] == fdt
    assert "@" not in script.replace("@BOARD@", ""), "unfilled placeholder"


@pytest.mark.parametrize("board", BOARDS)
def test_initial_environment_matches_the_default_engine(board: str, tmp_path: Path) -> None:
    """pycam-bootenv builds copy 1 with `mkenvimage -r`, copy 2 with flag 0: the engine's bytes."""
    product = load_product(board)
    machine = product.board.yocto_machine
    text = (LAYER / f"recipes-bsp/pycam-bootenv/files/{machine}/uboot-env.txt").read_text()
    variables = dict(line.split("=", 1) for line in text.splitlines())
    assert variables == initial_vars(product)
    mkenvimage = shutil.which("mkenvimage")
    if mkenvimage is None:
        pytest.skip("mkenvimage (u-boot-tools) not installed")
    import subprocess

    out = tmp_path / "env.bin"
    subprocess.run([mkenvimage, "-r", "-p", "0", "-s", str(product.layout.bootenv.size), "-o", str(out),
                    str(LAYER / f"recipes-bsp/pycam-bootenv/files/{machine}/uboot-env.txt")], check=True)
    copy1 = out.read_bytes()
    assert copy1 == env_copy(initial_vars(product), product.layout.bootenv.size, flag=1)
    copy2 = copy1[:4] + b"\0" + copy1[5:]
    assert copy2 == env_copy(initial_vars(product), product.layout.bootenv.size, flag=0)


def test_app_recipe_version_is_the_app_version() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "app" / "pyproject.toml").read_text())["project"]["version"]
    recipes = sorted((LAYER / "recipes-pycam" / "pycam-app").glob("pycam-app_*.bb"))
    assert [r.name for r in recipes] == [f"pycam-app_{version}.bb"]


@pytest.mark.parametrize(("opts", "fstype", "extra"), [
    (["-comp", "xz", "-b", "1M"], "squashfs-xz", "-b 1M"),
    (["-comp", "zstd", "-Xcompression-level", "19", "-b", "256K"], "squashfs-zst", "-Xcompression-level 19 -b 256K"),
    (["-b", "128K"], "squashfs", "-b 128K"),
])
def test_squashfs_settings_follow_the_default_engine(opts: list[str], fstype: str, extra: str) -> None:
    assert squashfs_settings(opts) == (fstype, extra)
