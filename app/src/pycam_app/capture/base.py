"""The capture interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass

import av


class CaptureError(RuntimeError):
    """The camera could not be opened or stopped delivering frames."""


@dataclass(slots=True)
class Captured:
    frame: av.VideoFrame
    mono: float  # time.monotonic() when the frame was captured
    wall: float  # time.time() at the same moment (recordings and the latency stamp use it)


class Source(abc.ABC):
    """A camera. frames() blocks; the pipeline runs it in its own thread."""

    name: str = "?"
    # Share of the picture height, from the top, that is not scene content (the synthetic source's stamp):
    # motion detection ignores it.
    motion_exclude_top: float = 0.0

    @abc.abstractmethod
    def open(self) -> None: ...

    @abc.abstractmethod
    def frames(self) -> Iterator[Captured]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        return self.name
