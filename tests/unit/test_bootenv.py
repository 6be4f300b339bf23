"""The environment format pycam writes, the boot script reads, and libubootenv (RAUC's side) agrees on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pycam.generate.bootenv import env_copy, fw_env_config, initial_vars, parse_env_copy
from tests.unit.conftest import need


def test_copy_roundtrip(product) -> None:
    blob = env_copy(initial_vars(product), 0x4000, flag=7)
    assert len(blob) == 0x4000
    ok, flag, variables = parse_env_copy(blob)
    assert ok and flag == 7
    assert variables == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}


def test_corruption_is_detected(product) -> None:
    blob = bytearray(env_copy(initial_vars(product), 0x4000, flag=1))
    blob[20] ^= 0xFF
    ok, _, _ = parse_env_copy(bytes(blob))
    assert not ok


def _disk_with_env(product, path: Path) -> Path:
    env = product.layout.bootenv
    with path.open("wb") as f:
        f.truncate(env.redundant_offset + env.size + 4096)
        f.seek(env.offset)
        f.write(env_copy(initial_vars(product), env.size, flag=1))
        f.seek(env.redundant_offset)
        f.write(env_copy(initial_vars(product), env.size, flag=0))
    cfg = path.with_suffix(".config")
    cfg.write_text(fw_env_config(product, device=str(path)))
    return cfg


def test_libubootenv_reads_and_writes_our_copies(product, tmp_path: Path) -> None:
    need("fw_printenv", "fw_setenv")
    disk = tmp_path / "disk.img"
    cfg = _disk_with_env(product, disk)
    out = subprocess.run(["fw_printenv", "-c", cfg], check=True, capture_output=True, text=True).stdout
    assert "BOOT_ORDER=A B" in out and "BOOT_B_LEFT=3" in out

    # what RAUC does on install: libubootenv writes the older copy with the next flag
    subprocess.run(["fw_setenv", "-c", cfg, "BOOT_ORDER", "B A"], check=True)
    env = product.layout.bootenv
    data = disk.read_bytes()
    first = parse_env_copy(data[env.offset:env.offset + env.size])
    second = parse_env_copy(data[env.redundant_offset:env.redundant_offset + env.size])
    assert first == (True, 1, initial_vars(product))  # untouched
    assert second[0] and second[1] == 2 and second[2]["BOOT_ORDER"] == "B A"
    out = subprocess.run(["fw_printenv", "-c", cfg, "BOOT_ORDER"], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "BOOT_ORDER=B A"


def test_libubootenv_falls_back_to_the_valid_copy(product, tmp_path: Path) -> None:
    need("fw_printenv")
    disk = tmp_path / "disk.img"
    cfg = _disk_with_env(product, disk)
    env = product.layout.bootenv
    with disk.open("r+b") as f:  # a power cut mid-write of copy 1
        f.seek(env.offset + 100)
        f.write(b"\xff" * 64)
    out = subprocess.run(["fw_printenv", "-c", cfg, "BOOT_A_LEFT"], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "BOOT_A_LEFT=3"


def test_fw_env_config_matches_layout(product) -> None:
    lines = [line.split() for line in fw_env_config(product).splitlines() if not line.startswith("#")]
    env = product.layout.bootenv
    assert lines == [["/dev/vda", hex(env.offset), hex(env.size)],
                     ["/dev/vda", hex(env.redundant_offset), hex(env.size)]]
