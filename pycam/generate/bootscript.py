"""The U-Boot boot script from ota/boot.cmd.in, filled in for one board and layout."""

from __future__ import annotations

import re

from pycam.definition import Product
from pycam.generate.bootenv import BOOT_VARS

SECTOR = 512


def _hex(value: int) -> str:
    return f"{value:#x}"


def substitutions(product: Product) -> dict[str, str]:
    board, layout = product.board, product.layout
    env = layout.bootenv
    addr = {k: int(v, 16) for k, v in board.loadaddr.items()}
    env1, scratch = addr["env"], addr["scratch"]
    env2 = env1 + 0x10000
    values = {
        "BOARD": board.name,
        "IFACE": board.uboot_iface,
        "DEVNUM": board.uboot_devnum,
        "CONSOLE": board.console,
        "CMDLINE": board.cmdline,
        "ATTEMPTS": str(product.ota.attempts),
        "ORDER": " ".join(product.ota.order),
        "VARS": " ".join(BOOT_VARS),
        "ENV_SIZE": _hex(env.size),
        # `env import/export -c` sizes count the crc but not the flag byte
        "ENV_IMPORT_SIZE": _hex(env.size - 1),
        "ENV_BLKS": _hex(env.size // SECTOR),
        "ENV1_BLK": _hex(env.offset // SECTOR),
        "ENV2_BLK": _hex(env.redundant_offset // SECTOR),
        "ENV1_ADDR": _hex(env1),
        "ENV1_FLAG": _hex(env1 + 4),
        "ENV1_CRC": _hex(env1 + 1),
        "ENV2_ADDR": _hex(env2),
        "ENV2_FLAG": _hex(env2 + 4),
        "ENV2_CRC": _hex(env2 + 1),
        "SCRATCH_ADDR": _hex(scratch),
        "SCRATCH_CRC": _hex(scratch + 1),
        "SCRATCH_FLAG": _hex(scratch + 4),
        "KERNEL_ADDR": board.loadaddr["kernel"],
        "INITRD_ADDR": board.loadaddr["initrd"],
        "KERNEL_FILE": "Image",
        "INITRD_FILE": "initrd.img",
        "FDT_ADDR": board.fdt_addr,
    }
    for slot in layout.slots:
        values[f"{slot}_KERNEL_PART"] = str(layout.slot_part(slot, "kernel").number)
        values[f"{slot}_ROOT_DEV"] = board.linux_device(layout.slot_part(slot, "rootfs"))
    return values


def boot_script(product: Product) -> str:
    template = product.ota.boot_script.read_text()
    values = substitutions(product)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{product.ota.boot_script}: unknown placeholder @{key}@")
        return values[key]

    return re.sub(r"@([A-Z0-9_]+)@", fill, template)
