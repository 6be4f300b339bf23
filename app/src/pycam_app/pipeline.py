"""The capture -> process -> encode pipeline, in one thread.

Every captured frame (decimated to the main fps) is scaled to the main size, optionally privacy-masked,
night-converted or watermarked, and encoded; every frame due for the sub stream is scaled again and
encoded, and handed to frame listeners (motion detection, MJPEG). Frame counters and first-frame time
are what the health endpoint and the systemd watchdog look at.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import av
from av.video.reformatter import VideoReformatter

from . import overlay
from .capture.base import Captured, CaptureError, Source
from .config import Config, StreamConfig
from .encoder import TIME_BASE, EncoderError, H264Encoder
from .streams import Stream

log = logging.getLogger(__name__)

# Share of a frame period a frame may arrive early and still count: a source running at exactly the
# configured rate, with jitter, must not lose every other frame.
SLACK = 0.3
SCALE_THREADS = 1  # swscale threads per scaler: the frames are small, the pipeline is one thread

FrameListener = Callable[[av.VideoFrame, Captured, int], None]


@dataclass
class Controls:
    """Picture settings the device API changes at run time (read by the pipeline thread every frame)."""

    on: bool = True  # False = privacy mode: black picture, no motion
    night: bool = False  # IR mode: grey picture
    watermark: bool = True  # date/time in the picture
    extra: dict[str, object] = field(default_factory=dict)


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Pipeline:
    def __init__(self, cfg: Config, source: Source, controls: Controls | None = None) -> None:
        self.cfg = cfg
        self.source = source
        self.controls = controls or Controls()
        # The recorded stream keeps the event pre-roll: an event clip starts at the keyframe at or before
        # (event - pre_roll), at most one GOP earlier, and the recorder takes it well within a second of
        # the event. The ring always starts at a keyframe at least ring_s old, so pre-roll + one GOP + 1 s
        # covers it (it held two GOPs more: ~1 MB at the 2 Mbit/s main default). The other stream keeps
        # only what a live viewer joins from (the latest keyframe onwards).
        def ring_s(name: str, s: StreamConfig) -> float:
            if name == cfg.recording.stream:
                return cfg.recording.pre_roll_s + s.keyframe_interval + 1
            return s.keyframe_interval + 1

        self.main = Stream("main", cfg.main.width, cfg.main.height, cfg.main.fps, ring_s("main", cfg.main))
        self.sub = Stream("sub", cfg.sub.width, cfg.sub.height, cfg.sub.fps, ring_s("sub", cfg.sub))
        self.frames = 0  # main stream frames captured and encoded
        self.first_frame_boottime_s: float | None = None
        self.first_frame_mono: float | None = None
        self.started_mono = time.monotonic()
        self.last_error = ""
        self.restarts = 0
        # Snapshots take the next frame of their stream: the pipeline keeps no decoded frame between frames.
        self._frame_waiters: list[tuple[str, Future[av.VideoFrame]]] = []
        self._waiters_lock = threading.Lock()
        self._listeners: list[FrameListener] = []
        self._analysis: list[FrameListener] = []
        # One scaler each, kept across frames, single-threaded (SCALE_THREADS): frame.reformat() builds a
        # new SwsContext for every frame and, asking for "auto" threads, starts and joins a pool of
        # slice threads each time (8.9 ms a frame against 0.3 ms on a laptop core for 640x360 ->
        # 320x180; their stacks and allocations come and go every frame). A kept context with auto
        # threads stalled the pipeline in the QEMU image, so scaling stays on the pipeline thread.
        self._to_main = VideoReformatter()
        self._to_sub = VideoReformatter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None
        self._started = threading.Event()

    @property
    def streams(self) -> dict[str, Stream]:
        return {"main": self.main, "sub": self.sub}

    def add_sub_listener(self, fn: FrameListener) -> None:
        """fn(sub frame, capture, frame_no) for every sub-stream frame, after overlays."""
        self._listeners.append(fn)

    def add_analysis_listener(self, fn: FrameListener) -> None:
        """fn(main frame before overlays, capture, frame_no) at the sub stream's rate (motion detection)."""
        self._analysis.append(fn)

    def next_frame(self, stream: str) -> Future[av.VideoFrame]:
        """The next frame the pipeline encodes for `stream` ("main" or "sub"), after overlays."""
        fut: Future[av.VideoFrame] = Future()
        with self._waiters_lock:
            self._frame_waiters.append((stream, fut))
        return fut

    def _hand_over(self, stream: str, frame: av.VideoFrame) -> None:
        with self._waiters_lock:
            waiting = [w for w in self._frame_waiters if w[0] == stream]
            self._frame_waiters = [w for w in self._frame_waiters if w[0] != stream]
        for _, fut in waiting:
            with contextlib.suppress(InvalidStateError):  # the snapshot gave up waiting
                fut.set_result(frame)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)
        self._thread.start()

    def wait_started(self, timeout: float) -> bool:
        """True once the encoders are open and the source delivered or is about to deliver frames."""
        return self._started.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.source.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            encoders: list[H264Encoder] = []
            try:
                main_enc = H264Encoder(self.cfg.main, self.cfg.encoder)
                encoders.append(main_enc)
                sub_enc = H264Encoder(self.cfg.sub, self.cfg.encoder)
                encoders.append(sub_enc)
                self.main.encoder, self.sub.encoder = main_enc.name, sub_enc.name
                self.source.open()
                self._started.set()
                self._loop(main_enc, sub_enc)
                backoff = 1.0
            except (CaptureError, EncoderError, av.error.FFmpegError, OSError) as e:
                self.last_error = str(e)
                log.error("pipeline: %s; retrying in %.0f s", e, backoff)
            except Exception as e:  # keep the thread alive; the watchdog handles a permanent failure
                self.last_error = repr(e)
                log.exception("pipeline crashed; retrying in %.0f s", backoff)
            finally:
                self.source.close()
                for enc in encoders:
                    enc.close()
            if self._stop.wait(backoff):
                break
            self.restarts += 1
            backoff = min(backoff * 2, 10.0)

    def _loop(self, main_enc: H264Encoder, sub_enc: H264Encoder) -> None:
        m, s = self.cfg.main, self.cfg.sub
        main_period, sub_period = 1.0 / m.fps, 1.0 / s.fps
        main_due = sub_due = 0.0
        for cap in self.source.frames():
            if self._stop.is_set():
                return
            now = cap.mono
            if now < main_due - main_period * SLACK:
                continue
            main_due = max(main_due + main_period, now + main_period * SLACK)
            sub_due_now = now >= sub_due - sub_period * SLACK
            if sub_due_now:
                sub_due = max(sub_due + sub_period, now + sub_period * SLACK)
            self._process(cap, main_enc, sub_enc, sub_due_now)
            # Drop the frame now, not when the next one arrives: between frames the pipeline holds none.
            del cap

    def _process(self, cap: Captured, main_enc: H264Encoder, sub_enc: H264Encoder, sub_due_now: bool) -> None:
        m, s = self.cfg.main, self.cfg.sub
        now = cap.mono
        if self._t0 is None:
            self._t0 = now
        if self.first_frame_boottime_s is None:
            self.first_frame_boottime_s = boottime() - (time.monotonic() - now)
            self.first_frame_mono = now
            log.info("first frame %.3f s after boot", self.first_frame_boottime_s)
        pts = round((now - self._t0) / TIME_BASE)
        frame = cap.frame
        if frame.width != m.width or frame.height != m.height or frame.format.name != "yuv420p":
            frame = self._to_main.reformat(
                frame, width=m.width, height=m.height, format="yuv420p", threads=SCALE_THREADS
            )
        self.frames += 1
        frame_no = self.frames
        if sub_due_now:
            self._notify(self._analysis, frame, cap, frame_no)
        frame = overlay.apply(frame, self.controls, cap.wall)
        for data, p, key in main_enc.encode(frame, pts):
            self.main.publish(data, p, key, cap.mono, cap.wall, frame_no)
        sub_frame = None
        if sub_due_now:
            sub_frame = self._to_sub.reformat(frame, width=s.width, height=s.height, threads=SCALE_THREADS)
            for data, p, key in sub_enc.encode(sub_frame, pts):
                self.sub.publish(data, p, key, cap.mono, cap.wall, frame_no)
            self._notify(self._listeners, sub_frame, cap, frame_no)
        # Only now, once this thread is done with them: a VideoFrame's reformatter is not thread-safe.
        if self._frame_waiters:
            self._hand_over("main", frame)
            if sub_frame is not None:
                self._hand_over("sub", sub_frame)

    @staticmethod
    def _notify(listeners: list[FrameListener], frame: av.VideoFrame, cap: Captured, frame_no: int) -> None:
        for fn in listeners:
            try:
                fn(frame, cap, frame_no)
            except Exception:
                log.exception("frame listener failed")
