"""The U-Boot environment: fw_env.config, the initial variables, and the binary copies."""

from __future__ import annotations

import struct
import zlib

from pycam.definition import Product

# The only variables the boot script imports and exports; U-Boot's own defaults stay in U-Boot.
BOOT_VARS = ("BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT")


def fw_env_config(product: Product, device: str | None = None) -> str:
    """libubootenv's config: device, offset, size for each copy (two lines = redundant)."""
    env = product.layout.bootenv
    dev = device or product.board.disk_linux
    return (
        "# U-Boot environment: two raw copies before the first partition (generated from partitions/)\n"
        "# device\toffset\tsize\n"
        f"{dev}\t{env.offset:#x}\t{env.size:#x}\n"
        f"{dev}\t{env.redundant_offset:#x}\t{env.size:#x}\n"
    )


def initial_vars(product: Product) -> dict[str, str]:
    attempts = str(product.ota.attempts)
    return {"BOOT_ORDER": " ".join(product.ota.order), "BOOT_A_LEFT": attempts, "BOOT_B_LEFT": attempts}


def env_copy(variables: dict[str, str], size: int, flag: int) -> bytes:
    """One copy in libubootenv's redundant layout: crc32(data), flag byte, NUL-separated data.

    Written by hand instead of with mkenvimage because mkenvimage cannot set the flag,
    and both copies must be valid from the first boot.
    """
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in variables.items()) + b"\0"
    room = size - 5
    if len(data) > room:
        raise ValueError(f"environment needs {len(data)} bytes, the area holds {room}")
    data = data.ljust(room, b"\0")
    return struct.pack("<IB", zlib.crc32(data), flag) + data


def parse_env_copy(blob: bytes) -> tuple[bool, int, dict[str, str]]:
    """(crc valid, flag, variables) of one redundant-layout copy."""
    crc, flag = struct.unpack_from("<IB", blob)
    data = blob[5:]
    variables: dict[str, str] = {}
    for item in data.split(b"\0"):
        if not item:
            break
        key, _, value = item.decode(errors="replace").partition("=")
        variables[key] = value
    return zlib.crc32(data) == crc, flag, variables
