"""labgrid from several threads: one station drives several fixtures at once.

labgrid records nested steps (every driver call) on one process-wide stack, and asserts that a
step ends on top of it; two devices driven from two threads interleave their steps and trip that
assertion. Giving each thread its own stack keeps labgrid's step logging intact per device.
"""

from __future__ import annotations

import threading
from typing import Any


class _Stacks(threading.local):
    def __init__(self) -> None:
        self.stack: list[Any] = []


def thread_safe_steps() -> None:
    import importlib

    # `labgrid.step` the attribute is the decorator; the module holds the stack
    steps = importlib.import_module("labgrid.step").steps
    if getattr(type(steps), "_pycam_per_thread", False):
        return
    local = _Stacks()

    class PerThreadSteps(type(steps)):  # type: ignore[misc]
        _pycam_per_thread = True

        @property
        def _stack(self) -> list[Any]:
            return local.stack

        @_stack.setter
        def _stack(self, value: list[Any]) -> None:
            local.stack = value

    steps.__class__ = PerThreadSteps
