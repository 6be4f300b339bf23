"""A synthetic camera: colour bars, an optional moving box, and the frame counter/time stamp (stamp.py).

Used on laptops and CI, and by the tests and the latency benchmark, which read the stamp back.
Pure Python: the static picture is rendered once and copied per frame; only the stamp and the box change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import av

from .. import stamp
from .base import Captured, Source

# 75% colour bars (white, yellow, cyan, green, magenta, red, blue, black) in BT.601 limited-range YUV.
BARS: list[tuple[int, int, int]] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
]
BOX_Y = 235


def _bar_row(width: int, component: int) -> bytes:
    edges = [round(k * width / len(BARS)) for k in range(len(BARS) + 1)]
    return b"".join(bytes([BARS[i][component]]) * (edges[i + 1] - edges[i]) for i in range(len(BARS)))


class SyntheticSource(Source):
    name = "synthetic"
    motion_exclude_top = (stamp.BANDS + 0.5) / stamp.BAND_FRACTION

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.moving = False  # tests and the "simulate motion" hook toggle this
        self.counter = 0
        self._stop = threading.Event()
        self._planes: list[bytes] = []
        self._line_sizes: list[int] = []

    def open(self) -> None:
        self._stop.clear()
        probe = av.VideoFrame(self.width, self.height, "yuv420p")
        self._line_sizes = [p.line_size for p in probe.planes]
        band_rows = stamp.BANDS * stamp.band_height(self.height)
        planes = []
        for i, plane in enumerate(probe.planes):
            h = plane.height
            w = plane.width
            ls = plane.line_size
            stamp_rows = band_rows if i == 0 else (band_rows + 1) // 2
            neutral = (bytes([stamp.BLACK if i == 0 else 128]) * w).ljust(ls, b"\0")
            bars = _bar_row(w, i).ljust(ls, b"\0")
            planes.append(neutral * stamp_rows + bars * (h - stamp_rows))
        self._planes = planes

    def close(self) -> None:
        self._stop.set()

    def make_frame(self, counter: int, wall: float) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        y = memoryview(frame.planes[0])  # type: ignore[arg-type]
        ls = self._line_sizes[0]
        bh = stamp.band_height(self.height)
        for band, word in enumerate(stamp.band_bits(counter, int(wall * 1000))):
            row = stamp.render_row(word, self.width)
            for r in range(band * bh, (band + 1) * bh):
                y[r * ls : r * ls + self.width] = row
        if self.moving:
            self._draw_box(y, ls, counter)
        return frame

    def _draw_box(self, y: memoryview, ls: int, counter: int) -> None:
        # A white box sweeping left to right: large enough to trip motion detection at any sensitivity.
        size = max(8, self.height // 4)
        top = self.height // 2 - size // 2
        span = max(1, self.width - size)
        x = (counter * max(2, self.width // 20)) % span
        row = bytes([BOX_Y]) * size
        for r in range(top, top + size):
            y[r * ls + x : r * ls + x + size] = row

    def frames(self) -> Iterator[Captured]:
        period = 1.0 / self.fps
        due = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < due:
                if self._stop.wait(due - now):
                    return
                now = time.monotonic()
            # Late (slow consumer): skip the missed slots rather than burst, and keep frames at least
            # 0.75 period apart so a consumer decimating at the same rate keeps every one.
            due = max(due + period, now + 0.75 * period)
            wall = time.time()
            self.counter += 1
            yield Captured(self.make_frame(self.counter, wall), now, wall)
