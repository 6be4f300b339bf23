"""V4L2 cameras entirely through PyAV: FFmpeg's video4linux2 demuxer opens and reads the device.

capture.source = "v4l2-ffmpeg". Not the default: the demuxer asks the driver for 256 buffers and maps
every one it gets (vivid grants 32 frames, 11 MB at 640x360; a 1080p webcam ~130 MB), which a 128 MB
camera cannot afford. The default "v4l2" backend (v4l2.py) streams with 3 buffers and hands the
frames to PyAV. This one is kept for drivers the 3-buffer reader does not handle, and for comparison.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import av

from .base import Captured, CaptureError, Source

log = logging.getLogger(__name__)


class FFmpegV4L2Source(Source):
    name = "v4l2-ffmpeg"

    def __init__(self, device: str, width: int, height: int, fps: float, input_format: str = "") -> None:
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.input_format = input_format
        self._container: Any = None
        self._closed = False

    def describe(self) -> str:
        return f"v4l2-ffmpeg:{self.device}"

    def open(self) -> None:
        self._closed = False
        base: dict[str, str] = {}
        if self.input_format:
            base["input_format"] = self.input_format
        wanted = dict(base, video_size=f"{self.width}x{self.height}", framerate=f"{self.fps:g}")
        # Drivers accept only some sizes/rates: ask for ours, then fall back to the driver's default
        # (the pipeline scales whatever arrives).
        last: Exception | None = None
        for options in (wanted, dict(base, video_size=f"{self.width}x{self.height}"), base):
            try:
                self._container = av.open(self.device, format="video4linux2", options=options)
                stream = self._container.streams.video[0]
                log.info(
                    "v4l2 %s opened: %sx%s %s (asked %s)",
                    self.device,
                    stream.codec_context.width,
                    stream.codec_context.height,
                    stream.codec_context.pix_fmt,
                    options,
                )
                return
            except (av.error.FFmpegError, OSError) as e:
                last = e
        raise CaptureError(f"cannot open V4L2 device {self.device}: {last}")

    def frames(self) -> Iterator[Captured]:
        if self._container is None:
            raise CaptureError("V4L2 source not opened")
        try:
            for frame in self._container.decode(video=0):
                if self._closed:
                    return
                yield Captured(frame, time.monotonic(), time.time())
        except (av.error.FFmpegError, OSError) as e:
            if not self._closed:
                raise CaptureError(f"V4L2 device {self.device} failed: {e}") from e
        if not self._closed:
            raise CaptureError(f"V4L2 device {self.device} stopped delivering frames")

    def close(self) -> None:
        self._closed = True
        c, self._container = self._container, None
        if c is not None:
            try:
                c.close()
            except Exception:  # closing a vanished device must not mask the original error
                log.debug("closing %s failed", self.device, exc_info=True)
