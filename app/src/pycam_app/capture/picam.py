"""Raspberry Pi cameras through picamera2 (libcamera). Imported only where picamera2 exists."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import av

from .base import Captured, CaptureError, Source

log = logging.getLogger(__name__)


def _module() -> Any:
    return importlib.import_module("picamera2")


def available() -> bool:
    """True when picamera2 imports and libcamera reports at least one camera."""
    try:
        mod = _module()
    except Exception:  # ImportError, or libcamera failing to load its IPA modules
        return False
    try:
        return bool(mod.Picamera2.global_camera_info())
    except Exception:
        return False


class Picamera2Source(Source):
    name = "picamera2"

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._cam: Any = None
        self._stop = threading.Event()

    def open(self) -> None:
        try:
            mod = _module()
        except ImportError as e:
            raise CaptureError(f"picamera2 is not installed: {e}") from e
        self._stop.clear()
        try:
            cam = mod.Picamera2()
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)},
                buffer_count=4,
            )
            # The ISP wants aligned strides: let picamera2 adjust the size; the pipeline scales back.
            cam.align_configuration(config)
            cam.configure(config)
            cam.start()
        except Exception as e:
            raise CaptureError(f"cannot start picamera2 camera: {e}") from e
        self._cam = cam

    def frames(self) -> Iterator[Captured]:
        if self._cam is None:
            raise CaptureError("picamera2 source not opened")
        while not self._stop.is_set():
            try:
                array = self._cam.capture_array("main")
            except Exception as e:
                if self._stop.is_set():
                    return
                raise CaptureError(f"picamera2 capture failed: {e}") from e
            mono, wall = time.monotonic(), time.time()
            # YUV420 arrives as one (height*3/2, width) uint8 plane stack, which is PyAV's yuv420p layout.
            yield Captured(av.VideoFrame.from_ndarray(array, format="yuv420p"), mono, wall)

    def close(self) -> None:
        self._stop.set()
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
                cam.close()
            except Exception:
                log.debug("closing picamera2 failed", exc_info=True)
