"""Motion detection by frame differencing on a tiny grey thumbnail of the sub stream (pure Python).

Each analysed frame is scaled to 64x36 grey; a pixel "changed" when it differs from the previous thumbnail
by more than the sensitivity's pixel threshold; motion is when the changed share of the watched zones
exceeds the sensitivity's area threshold. Start/end transitions become events; the mean brightness also
drives night-shot "auto".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from av.video.reformatter import VideoReformatter

GRID_W, GRID_H = 64, 36
# sensitivity -> (pixel difference threshold, changed share of the zone)
THRESHOLDS: dict[str, tuple[int, float]] = {"low": (40, 0.06), "medium": (25, 0.02), "high": (14, 0.006)}


@dataclass
class MotionState:
    active: bool = False
    score: float = 0.0
    brightness: float = 0.0
    started_mono: float = 0.0
    last_active_mono: float = 0.0
    last_end_mono: float = -1e9


def zone_mask(areas: list[dict[str, float]], exclude_top: float = 0.0) -> list[int]:
    """Indices of thumbnail pixels inside the zones (all pixels when there are none)."""
    first = min(GRID_H, int(exclude_top * GRID_H + 0.999)) * GRID_W
    if not areas:
        return list(range(first, GRID_W * GRID_H))
    idx: set[int] = set()
    for a in areas:
        x0, y0 = int(a["x"] * GRID_W), int(a["y"] * GRID_H)
        x1 = max(x0 + 1, round((a["x"] + a["w"]) * GRID_W))
        y1 = max(y0 + 1, round((a["y"] + a["h"]) * GRID_H))
        for y in range(y0, min(y1, GRID_H)):
            idx.update(range(y * GRID_W + x0, y * GRID_W + min(x1, GRID_W)))
    return sorted(i for i in idx if i >= first)


def thumbnail(frame: av.VideoFrame, scaler: VideoReformatter | None = None) -> bytes:
    """The frame as GRID_W x GRID_H grey bytes (scaler: a reformatter kept across frames, see pipeline)."""
    g = (scaler or VideoReformatter()).reformat(frame, width=GRID_W, height=GRID_H, format="gray", threads=1)
    plane = g.planes[0]
    data = bytes(plane)
    ls = plane.line_size
    if ls == GRID_W:
        return data[: GRID_W * GRID_H]
    return b"".join(data[y * ls : y * ls + GRID_W] for y in range(GRID_H))


def changed_share(prev: bytes, cur: bytes, mask: list[int], pixel_threshold: int) -> float:
    if not mask:
        return 0.0
    n = sum(1 for i in mask if abs(cur[i] - prev[i]) > pixel_threshold)
    return n / len(mask)


EventSink = Callable[[str, dict[str, Any]], None]  # ("start"|"end", data)


class MotionDetector:
    def __init__(self, fps: float, cooldown_s: float, sink: EventSink, exclude_top: float = 0.0) -> None:
        self.period = 1.0 / fps
        self.exclude_top = exclude_top
        self.cooldown_s = cooldown_s
        self.sink = sink
        self.enabled = True
        self.sensitivity = "medium"
        self.state = MotionState()
        self._areas: list[dict[str, float]] = []
        self._mask = zone_mask([], exclude_top)
        self._prev: bytes | None = None
        self._next = 0.0
        self._scaler = VideoReformatter()  # used by the pipeline thread only

    def configure(self, enabled: bool, sensitivity: str, areas: list[dict[str, float]]) -> None:
        self.enabled, self.sensitivity = enabled, sensitivity
        if areas != self._areas:
            self._areas = areas
            self._mask = zone_mask(areas, self.exclude_top)
        if not enabled:
            self.reset()

    def reset(self) -> None:
        self._prev = None
        if self.state.active:
            self._end(time.monotonic(), {})

    def feed(self, frame: av.VideoFrame, mono: float, wall: float, frame_no: int) -> None:
        if not self.enabled or mono < self._next:
            return
        self._next = mono + self.period * 0.7  # slack for jitter, as in the pipeline
        cur = thumbnail(frame, self._scaler)
        self.state.brightness = sum(cur) / len(cur)
        prev, self._prev = self._prev, cur
        if prev is None:
            return
        pixel_t, area_t = THRESHOLDS[self.sensitivity]
        score = changed_share(prev, cur, self._mask, pixel_t)
        self.state.score = score
        st = self.state
        if score >= area_t:
            st.last_active_mono = mono
            if not st.active and mono - st.last_end_mono >= self.cooldown_s:
                st.active = True
                st.started_mono = mono
                self.sink("start", {"score": round(score, 4), "frame": frame_no, "mono": mono, "wall": wall})
        elif st.active and mono - st.last_active_mono >= self.cooldown_s:
            self._end(mono, {"frame": frame_no, "wall": wall})

    def _end(self, mono: float, data: dict[str, Any]) -> None:
        st = self.state
        st.active = False
        st.last_end_mono = mono
        self.sink("end", dict(data, mono=mono, duration_s=round(mono - st.started_mono, 3)))
