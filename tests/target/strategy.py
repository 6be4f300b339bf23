"""A labgrid strategy for a pycam QEMU target: off -> shell, and reboots watched on the console.

Resources/drivers come from the environment (QEMUDriver for power and console, ShellDriver
for commands); this strategy only orders them, like labgrid's own ShellStrategy, plus
what the A/B tests need: the console log of a whole boot, across resets.
"""

from __future__ import annotations

import enum
import re
import time
from typing import ClassVar

import attr
import pexpect
from labgrid.driver import QEMUDriver, ShellDriver
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError


class Status(enum.Enum):
    unknown = 0
    off = 1
    shell = 2


# printed by ota/boot.cmd.in for every boot attempt
SLOT_LINE = re.compile(rb"pycam: booting slot (\w) \(BOOT_ORDER=([^)]*?) BOOT_A_LEFT=(\w+) BOOT_B_LEFT=(\w+)\)")


@target_factory.reg_driver
@attr.s(eq=False)
class PycamQemuStrategy(Strategy):
    bindings: ClassVar[dict[str, str]] = {"qemu": "QEMUDriver", "shell": "ShellDriver"}

    status = attr.ib(default=Status.unknown)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.qemu: QEMUDriver
        self.shell: ShellDriver

    @step(args=["status"])
    def transition(self, status: Status | str, *, step=None) -> None:
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            step.skip("nothing to do")
            return
        if status == Status.off:
            self.target.deactivate(self.shell)
            self.target.activate(self.qemu)
            self.qemu.off()
        elif status == Status.shell:
            self.transition(Status.off)
            self.qemu.on()
            self.target.activate(self.shell)
        self.status = status

    def power_on_and_watch(self, until: bytes, timeout: float) -> bytes:
        """Power on (from off) and return the console output up to and including `until`."""
        self.transition(Status.off)
        self.qemu.on()
        self.status = Status.unknown
        return self.read_until(until, timeout)

    def read_until(self, until: bytes | re.Pattern[bytes], timeout: float) -> bytes:
        pattern = until if isinstance(until, re.Pattern) else re.compile(re.escape(until))
        self.target.deactivate(self.shell)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data += self.qemu.read(size=4096, timeout=1.0)
            except pexpect.TIMEOUT:
                continue
            if pattern.search(data):
                return data
        raise TimeoutError(f"{pattern.pattern!r} not seen on the console within {timeout:.0f} s; last output:\n"
                           + data[-2000:].decode(errors="replace"))

    def reboot_and_watch(self, command: str, until: bytes | re.Pattern[bytes], timeout: float) -> bytes:
        """Run a command that resets the device; return the console output until `until`."""
        self.transition(Status.shell)
        self.shell.console.sendline(command)
        self.status = Status.unknown
        return self.read_until(until, timeout)

    def attach_shell(self) -> None:
        """After a watched boot: log in on the console (waits for the login prompt)."""
        self.target.activate(self.shell)
        self.status = Status.shell
