"""Board outputs through sysfs files named in [hardware]: status LED, IR illuminator, IR-cut filter.

An empty path means the board has no such part; write errors are logged once, never fatal.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .config import HardwareConfig

log = logging.getLogger(__name__)


class Hardware:
    def __init__(self, cfg: HardwareConfig) -> None:
        self.cfg = cfg
        self.state: dict[str, bool] = {}
        self._warned: set[str] = set()

    def _write(self, name: str, path: str, on: bool) -> None:
        self.state[name] = on
        if not path:
            return
        try:
            Path(path).write_text("1\n" if on else "0\n")
        except OSError as e:
            if path not in self._warned:
                self._warned.add(path)
                log.error("cannot set %s via %s: %s", name, path, e)

    def indicator(self, on: bool) -> None:
        self._write("indicator", self.cfg.indicator_led, on)

    def night(self, on: bool) -> None:
        # Night: IR illuminator on, IR-cut filter out of the light path (value 0).
        self._write("ir_led", self.cfg.ir_led, on)
        self._write("ir_cut", self.cfg.ir_cut, not on)
