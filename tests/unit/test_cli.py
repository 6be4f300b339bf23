"""Bad input ends with a clear message naming the problem and what to run, and exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycam.cli import main
from pycam.engine import hosttools
from pycam.errors import PycamError


def test_unknown_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--board", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown board 'nope'" in err and "qemuarm64" in err


def test_missing_signing_key(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCAM_KEYS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("pycam.engine.build.check_host", lambda product: None)
    assert main(["build"]) == 1
    err = capsys.readouterr().err
    assert "missing signing key material" in err and "pycam keys init" in err


def test_missing_host_tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PycamError) as err:
        hosttools.require_tools()
    assert "mmdebstrap (Debian package mmdebstrap)" in str(err.value)
    assert "setup-host" in err.value.hint


def test_binfmt_not_available(tmp_path: Path) -> None:
    with pytest.raises(PycamError, match="binfmt_misc is not mounted"):
        hosttools.require_binfmt("arm64", tmp_path / "binfmt_misc")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text("disabled\n")
    with pytest.raises(PycamError, match="no enabled qemu-aarch64 binfmt handler"):
        hosttools.require_binfmt("arm64", tmp_path)
    with pytest.raises(PycamError, match="arm64 only"):
        hosttools.require_binfmt("riscv64", tmp_path)


def test_full_disk(tmp_path: Path) -> None:
    with pytest.raises(PycamError) as err:
        hosttools.require_space(tmp_path, needed=1 << 60)
    assert "free under" in str(err.value) and "PYCAM_BUILD_DIR" in err.value.hint


def test_keys_init_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["keys", "init", "--dir", str(tmp_path / "k"), "--if-missing"]) == 0


def test_flash_refuses_non_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"\0" * 4096)
    (tmp_path / "x.img.bmap").write_text("<bmap/>")
    assert main(["flash", str(image), str(tmp_path)]) == 1
    assert "not a block device" in capsys.readouterr().err


def test_qemu_command_boots_the_working_copy_with_the_board_devices(product, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from pycam import qemu

    monkeypatch.setenv("PYCAM_BUILD_DIR", str(tmp_path))
    with pytest.raises(PycamError, match="pycam build"):
        qemu.working_copy(product)
    image = tmp_path / "qemuarm64" / "pycam-qemuarm64.img"
    image.parent.mkdir()
    image.write_bytes(b"disk")
    copy = qemu.working_copy(product)
    copy.write_bytes(b"written by the device")
    assert qemu.working_copy(product).read_bytes() == b"written by the device"  # persists across runs
    assert qemu.working_copy(product, fresh=True).read_bytes() == b"disk"
    if Path(product.board.uboot_binary).exists():
        cmd = qemu.command(product, copy)
        assert cmd[cmd.index("-bios") + 1] == product.board.uboot_binary
        assert f"if=virtio,format=raw,file={copy}" in cmd
        assert "i6300esb" in cmd  # the board's watchdog


def test_a_yocto_only_board_is_refused_by_the_default_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--board", "raspberrypi4-64"]) == 1
    err = capsys.readouterr().err
    assert "no bootloader for the default engine" in err and "kas build kas.yml:board/raspberrypi4-64/kas.yml" in err
