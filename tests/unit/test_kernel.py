from __future__ import annotations

from pathlib import Path

import pytest

from pycam.engine.kernel import module_closure
from pycam.errors import PycamError


@pytest.fixture
def moddir(tmp_path: Path) -> Path:
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko\n"
        "kernel/fs/jbd2/jbd2.ko:\n"
        "kernel/fs/mbcache.ko:\n"
        "kernel/crypto/crc32c_generic.ko:\n"
        "kernel/drivers/media/test-drivers/vivid/vivid.ko: kernel/drivers/media/v4l2-core/videodev.ko\n"
        "kernel/drivers/media/v4l2-core/videodev.ko:\n"
    )
    (tmp_path / "modules.softdep").write_text("softdep ext4 pre: crypto-crc32c\n")
    (tmp_path / "modules.alias").write_text("alias crypto-crc32c crc32c_generic\n")
    (tmp_path / "modules.builtin").write_text("kernel/fs/squashfs/squashfs.ko\n")
    return tmp_path


def test_closure_follows_hard_and_soft_dependencies(moddir: Path) -> None:
    assert module_closure(moddir, ["ext4"]) == [
        "kernel/crypto/crc32c_generic.ko",
        "kernel/fs/ext4/ext4.ko",
        "kernel/fs/jbd2/jbd2.ko",
        "kernel/fs/mbcache.ko",
    ]


def test_builtin_modules_need_no_file(moddir: Path) -> None:
    assert module_closure(moddir, ["squashfs"]) == []


def test_unknown_module_is_named(moddir: Path) -> None:
    with pytest.raises(PycamError, match="'nosuch'"):
        module_closure(moddir, ["vivid", "nosuch"])
