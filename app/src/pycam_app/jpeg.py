"""JPEG encoding of frames (snapshots, MJPEG fallback) with PyAV's mjpeg encoder."""

from __future__ import annotations

import threading
from fractions import Fraction

import av

_TB = Fraction(1, 25)


class JpegEncoder:
    """Thread-safe; keeps one encoder context per frame size."""

    def __init__(self, quality_max: int = 8) -> None:
        self._lock = threading.Lock()
        self._ctx: dict[tuple[int, int], av.VideoCodecContext] = {}
        self._q = quality_max
        self._n = 0

    def _context(self, w: int, h: int) -> av.VideoCodecContext:
        ctx = self._ctx.get((w, h))
        if ctx is None:
            ctx = av.CodecContext.create("mjpeg", "w")
            ctx.width, ctx.height = w, h
            ctx.pix_fmt = "yuvj420p"
            ctx.time_base = _TB
            ctx.options = {"qmin": "2", "qmax": str(self._q)}
            ctx.open()
            self._ctx[(w, h)] = ctx
        return ctx

    def encode(self, frame: av.VideoFrame, width: int | None = None, height: int | None = None) -> bytes:
        w, h = width or frame.width, height or frame.height
        with self._lock:  # also around reformat: a frame's reformatter (PyAV) is not thread-safe
            src = frame.reformat(width=w, height=h, format="yuvj420p", threads=1)
            # The encoder wants increasing timestamps in its own time base, whatever the frame carried.
            self._n += 1
            src.pts = self._n
            src.time_base = _TB
            packets = self._context(w, h).encode(src)
        return b"".join(bytes(p) for p in packets)
