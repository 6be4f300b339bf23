"""Every file pycam writes into the root from the product definition (both engines install these)."""

from __future__ import annotations

import json

from pycam.definition import Product
from pycam.generate.bootenv import fw_env_config
from pycam.generate.fstab import fstab
from pycam.generate.rauc import system_conf
from pycam.generate.systemd import watchdog_conf


def root_files(product: Product, version: str) -> dict[str, str]:
    """Path in the root -> text."""
    board = product.board
    board_info = {
        "board": board.name,
        "description": board.description,
        "hardware": board.hardware,
        "watchdog": board.watchdog_device,
        "compatible": product.compatible,
    }
    return {
        "/etc/rauc/system.conf": system_conf(product),
        "/etc/fw_env.config": fw_env_config(product),
        "/etc/fstab": fstab(product),
        "/etc/systemd/system.conf.d/10-pycam-watchdog.conf": watchdog_conf(board),
        "/etc/pycam/app.toml": board.app_config.read_text() if board.app_config.exists() else "",
        "/etc/pycam/board.json": json.dumps(board_info, indent=2, sort_keys=True) + "\n",
        "/etc/pycam/version": version + "\n",
        # the OTA client's product default (a provisioned device's /factory/ota/hawkbit.conf wins)
        "/etc/pycam/hawkbit.conf": (product.root / "ota" / "hawkbit.conf").read_text(),
        "/etc/modules-load.d/pycam.conf": "# generated from board/<board>/board.yml kernel.load\n"
        + "".join(f"{m}\n" for m in board.load_modules),
    }
