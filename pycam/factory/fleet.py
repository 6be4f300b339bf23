"""Devices for a station to work on, as labgrid targets: QEMU devices flashed from the built image
(development, CI, bench), or the targets of a labgrid environment file describing a real rig.

On a rig the environment's target needs a power driver, a console, a ShellDriver and a
FactoryStrategy (pycam.factory.strategy); if it also has a USBStorageDriver the station flashes
the image through it with bmaptool before booting.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from pycam.definition import Product
from pycam.errors import PycamError
from pycam.log import log


def qemu_env(product: Product, disk: Path) -> dict[str, Any]:
    from pycam.qemu import labgrid_env

    env = labgrid_env(product, disk)
    drivers = env["targets"]["main"]["drivers"]
    drivers.pop("PycamQemuStrategy", None)
    drivers["FactoryStrategy"] = {}
    return env


def flash_qemu(image: Path, disk: Path) -> None:
    """'Flashing' a QEMU device: its disk becomes a sparse copy of the image."""
    disk.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)


@contextmanager
def qemu_devices(product: Product, image: Path, work: Path, names: list[str]) -> Iterator[dict[str, Any]]:
    """name -> labgrid ShellStrategy of a QEMU device flashed from `image` (powered off)."""
    from labgrid import Environment

    from pycam.factory import strategy  # noqa: F401 - registers FactoryStrategy with labgrid
    from pycam.factory.lgthreads import thread_safe_steps

    thread_safe_steps()
    if not image.exists():
        raise PycamError(f"no image at {image}", "run: pycam build")
    envs = {}
    try:
        for name in names:
            disk = work / name / "disk.img"
            flash_qemu(image, disk)
            config = work / name / "env.yaml"
            config.write_text(yaml.safe_dump(qemu_env(product, disk), sort_keys=False))
            envs[name] = Environment(str(config))
        yield {n: e.get_target("main").get_driver("FactoryStrategy") for n, e in envs.items()}
    finally:
        for name, env in envs.items():
            try:
                env.get_target("main").get_driver("FactoryStrategy").transition("off")
            except Exception as e:
                log.warning("%s: power off failed: %s", name, e)
            env.cleanup()


@contextmanager
def rig_devices(env_file: Path, image: Path | None) -> Iterator[dict[str, Any]]:
    """Every target of a labgrid environment file (a rig), flashed with `image` if it has USB storage.
    Each target needs a FactoryStrategy (pycam.factory.strategy) next to its power, console and shell."""
    from labgrid import Environment

    from pycam.factory import strategy  # noqa: F401 - registers FactoryStrategy with labgrid
    from pycam.factory.lgthreads import thread_safe_steps

    thread_safe_steps()
    env = Environment(str(env_file))
    try:
        out = {}
        for name in env.config.get_targets():
            target = env.get_target(name)
            if image is not None:
                try:
                    storage = target.get_driver("USBStorageDriver")
                except Exception as e:
                    raise PycamError(f"{env_file}: target {name} has no USBStorageDriver to flash with",
                                     "flash the devices beforehand (pycam flash) and omit --image") from e
                log.info("%s: flashing %s (bmaptool)", name, image)
                from labgrid.driver.usbstoragedriver import Mode

                storage.write_image(str(image), mode=Mode.BMAPTOOL)
            out[name] = target.get_driver("FactoryStrategy")
        yield out
    finally:
        env.cleanup()
