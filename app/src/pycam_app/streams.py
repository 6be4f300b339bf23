"""Encoded streams: an in-memory ring buffer of recent packets plus fan-out to subscribers.

The pipeline thread publishes; live viewers (asyncio) and the recorder (its own thread) subscribe with a
callback that must not block. The ring lets a viewer start at the latest keyframe and an event clip start
before its trigger.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import h264
from .encoder import TIME_BASE


@dataclass(slots=True, frozen=True)
class Packet:
    seq: int  # per stream, increasing without gaps
    data: bytes  # one H.264 access unit, Annex B
    pts: int  # in encoder.TIME_BASE (90 kHz) since the pipeline started
    key: bool
    mono: float  # capture time (time.monotonic())
    wall: float  # capture time (time.time())
    frame_no: int  # the main stream frame counter at capture


Subscriber = Callable[[Packet], None]


class FpsMeter:
    """Frames per second over a short sliding window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def value(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        t = self._times
        if len(t) < 2 or now - t[-1] > self.window_s:
            return 0.0
        return round((len(t) - 1) / (t[-1] - t[0]), 2) if t[-1] > t[0] else 0.0


class Stream:
    def __init__(self, name: str, width: int, height: int, fps: float, ring_s: float) -> None:
        self.name, self.width, self.height, self.fps = name, width, height, fps
        self.ring_s = ring_s
        self.ring: deque[Packet] = deque()
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.encoder = ""
        self.frames = 0
        self.bytes = 0
        self.last_mono: float | None = None
        self.meter = FpsMeter()
        self._lock = threading.Lock()
        self._subs: dict[int, Subscriber] = {}
        self._next_id = 0
        self._seq = 0

    # -- producer side (pipeline thread) --
    def publish(self, data: bytes, pts: int, key: bool, mono: float, wall: float, frame_no: int) -> Packet:
        if key:
            sps, pps = h264.parameter_sets(data)
            if sps and pps:
                self.sps, self.pps = sps, pps
        with self._lock:
            self._seq += 1
            pkt = Packet(self._seq, data, pts, key, mono, wall, frame_no)
            self.ring.append(pkt)
            self._trim()
            subs = list(self._subs.values())
        self.frames += 1
        self.bytes += len(data)
        self.last_mono = mono
        self.meter.tick(mono)
        for cb in subs:
            cb(pkt)
        return pkt

    def _trim(self) -> None:
        # Drop whole GOPs from the front while the rest still covers ring_s from a keyframe.
        ring = self.ring
        horizon = ring[-1].pts - int(self.ring_s / TIME_BASE)
        while True:
            nxt = next((i for i in range(1, len(ring)) if ring[i].key), None)
            if nxt is None or ring[nxt].pts > horizon:
                return
            for _ in range(nxt):
                ring.popleft()

    # -- consumer side --
    def subscribe(self, cb: Subscriber) -> Callable[[], None]:
        with self._lock:
            sid = self._next_id
            self._next_id += 1
            self._subs[sid] = cb

        def unsubscribe() -> None:
            with self._lock:
                self._subs.pop(sid, None)

        return unsubscribe

    def subscribe_from_keyframe(self, cb: Subscriber) -> Callable[[], None]:
        """Subscribe and first replay the ring from its latest keyframe, with no gap or duplicate."""
        with self._lock:
            backlog = self._since_last_key()
            sid = self._next_id
            self._next_id += 1
            self._subs[sid] = cb
            # Replay while holding the lock so a concurrent publish cannot overtake the backlog.
            for p in backlog:
                cb(p)

        def unsubscribe() -> None:
            with self._lock:
                self._subs.pop(sid, None)

        return unsubscribe

    def _since_last_key(self) -> list[Packet]:
        ring = self.ring
        for i in range(len(ring) - 1, -1, -1):
            if ring[i].key:
                return list(ring)[i:]
        return []

    def since(self, mono: float, upto_seq: int) -> list[Packet]:
        """Packets from the keyframe at or before capture time mono (or the oldest one), up to upto_seq."""
        with self._lock:
            pkts = [p for p in self.ring if p.seq <= upto_seq]
        start = None
        for i, p in enumerate(pkts):
            if p.key and (start is None or p.mono <= mono):
                start = i
        return [] if start is None else pkts[start:]

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def ring_bytes(self) -> int:
        with self._lock:
            return sum(len(p.data) for p in self.ring)

    def codec_string(self) -> str:
        """RFC 6381 codec string for MSE, e.g. avc1.42c01e."""
        return "avc1." + self.sps[1:4].hex() if self.sps else "avc1.42e01e"
