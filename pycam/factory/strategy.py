"""A labgrid strategy for a factory fixture: off, or booted to a logged-in console shell.

labgrid's own ShellStrategy also waits for `systemctl is-system-running` with a 30 s timeout, which
a device under emulation (or a camera app still starting) does not meet; the station needs the shell
only. Works with any power driver (QEMUDriver, a PDU, ...) plus a console and a ShellDriver.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import attr
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError


class Status(enum.Enum):
    unknown = 0
    off = 1
    shell = 2


@target_factory.reg_driver
@attr.s(eq=False)
class FactoryStrategy(Strategy):
    bindings: ClassVar[dict[str, str]] = {"power": "PowerProtocol", "console": "ConsoleProtocol",
                                          "shell": "ShellDriver"}

    status = attr.ib(default=Status.unknown)

    @step(args=["status"])
    def transition(self, status: Status | str, *, step=None) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            return
        if status == Status.off:
            self.target.deactivate(self.shell)
            self.target.activate(self.power)
            self.power.off()
        else:
            self.transition(Status.off)
            self.target.activate(self.console)
            self.power.on()
            self.target.activate(self.shell)  # waits for the login prompt and logs in
        self.status = status
