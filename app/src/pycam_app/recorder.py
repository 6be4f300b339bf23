"""Recordings: event clips with pre-roll from the ring buffer, manual clips, continuous segments.

One thread owns all file writing. It sees every packet of the recorded stream in order (through a
subscription), so a clip started by an event can take the ring buffer's packets up to the last one it
handled and continue with the queue, without gap or duplicate. Files are fragmented MP4, one fragment per
GOP, under <data_dir>/recordings/YYYY/MM/DD/HH/, indexed in SQLite (index.py).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fmp4, h264, retention
from .config import Config
from .encoder import TIME_BASE
from .index import Index, relative_path
from .streams import Packet, Stream

log = logging.getLogger(__name__)

QUEUE_MAX = 1200  # packets; beyond this the disk is too slow and clips are cut rather than memory grown
RETENTION_EVERY_S = 30.0

Notify = Callable[[str, dict[str, Any]], None]  # (event name, data) for the event bus


class ClipWriter:
    """One fragmented MP4 file: buffers a GOP, writes it as one fragment when the next keyframe arrives."""

    def __init__(self, path: Path, stream: Stream, first: Packet) -> None:
        if not first.key or stream.sps is None or stream.pps is None:
            raise ValueError("a clip must start at a keyframe with known parameter sets")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.nominal = max(1, round(1 / (stream.fps * TIME_BASE)))
        self._f = open(path, "wb")  # noqa: SIM115 - stays open across fragments until close()
        self._f.write(fmp4.init_segment(stream.width, stream.height, stream.sps, stream.pps))
        self._gop: list[Packet] = []
        self._seq = 0
        self.base_pts = first.pts
        self.first = first
        self.last: Packet = first
        self.frames = 0
        self.bytes = 0
        self.add(first)

    def add(self, pkt: Packet) -> None:
        if pkt.key and self._gop:
            self._flush(pkt.pts)
        self._gop.append(pkt)
        self.last = pkt
        self.frames += 1

    def _flush(self, next_pts: int | None) -> None:
        gop = self._gop
        samples = []
        for i, p in enumerate(gop):
            nxt = gop[i + 1].pts if i + 1 < len(gop) else next_pts
            dur = (nxt - p.pts) if nxt is not None and nxt > p.pts else self.nominal
            samples.append(fmp4.Sample(h264.to_avcc(p.data), dur, p.key))
        self._seq += 1
        self._f.write(fmp4.media_segment(self._seq, gop[0].pts - self.base_pts, samples))
        self._f.flush()
        self._gop = []

    @property
    def duration_s(self) -> float:
        return (self.last.pts - self.base_pts) * float(TIME_BASE) + self.nominal * float(TIME_BASE)

    def close(self) -> int:
        if self._gop:
            self._flush(None)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.bytes = self._f.tell()
        self._f.close()
        return self.bytes


@dataclass
class Clip:
    rec_id: int
    kind: str
    writer: ClipWriter
    until_mono: float | None  # close after the packet captured past this time; None = open-ended
    events: list[int]


class Recorder:
    def __init__(self, cfg: Config, stream: Stream, index: Index, root: Path, notify: Notify) -> None:
        self.cfg = cfg
        self.stream = stream
        self.index = index
        self.root = root
        self.notify = notify
        self.continuous = cfg.recording.continuous
        self.events_enabled = cfg.recording.events
        self.event_clip: Clip | None = None
        self.cont_clip: Clip | None = None
        self.dropped = 0
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUE_MAX)
        self._last_seq = 0
        self._need_key = False
        self._thread: threading.Thread | None = None
        self._unsub: Callable[[], None] | None = None
        self._next_retention = 0.0
        self._cont_boundary = 0.0
        # An event that found no keyframe in the ring: (kind, until, trigger frame, event ids).
        self._event_id: int | None = None  # the motion event in progress
        self._pending: tuple[str, float | None, int | None, list[int]] | None = None

    # -- public, any thread --
    @property
    def active(self) -> bool:
        return self.event_clip is not None or self.cont_clip is not None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._unsub:
            self._unsub()
        self._put(("stop", None), block=True)
        if self._thread is not None:
            self._thread.join(timeout)

    def motion(self, phase: str, data: dict[str, Any]) -> None:
        """A motion event started or ended (data: mono, wall, score, frame); called from the pipeline."""
        self._put(("motion-" + phase, data), block=True)

    def command(self, name: str, arg: Any = None) -> Future[Any]:
        """Run a command in the recorder thread: manual-start, manual-stop, continuous, format, retention."""
        fut: Future[Any] = Future()
        self._put(("cmd", (name, arg, fut)), block=True)
        return fut

    def _put(self, item: tuple[str, Any], block: bool = False) -> None:
        try:
            self._q.put(item, block=block, timeout=5 if block else None)
        except queue.Full:
            self.dropped += 1
            self._need_key = True

    def _on_packet(self, pkt: Packet) -> None:
        self._put(("pkt", pkt))

    # -- recorder thread --
    def _run(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("recording recovery failed")
        self._unsub = self.stream.subscribe(self._on_packet)
        while True:
            try:
                kind, arg = self._q.get(timeout=1.0)
            except queue.Empty:
                kind, arg = "tick", None
            try:
                if kind == "stop":
                    self._close_all()
                    return
                self._handle(kind, arg)
            except Exception:
                log.exception("recorder: %s failed", kind)
                self._abort_all()
            now = time.monotonic()
            if now >= self._next_retention:
                self._next_retention = now + RETENTION_EVERY_S
                self._retention()

    def _handle(self, kind: str, arg: Any) -> None:
        if kind == "pkt":
            self._packet(arg)
        elif kind == "motion-start":
            event_id = self.index.add_event("motion", arg["wall"], arg.get("score"), arg.get("frame"))
            self._event_id = event_id
            if not self.events_enabled:
                return
            if self.event_clip is not None:
                self.event_clip.until_mono = None  # motion continues: keep the clip open
                self.event_clip.events.append(event_id)
                self.index.link_event(event_id, self.event_clip.rec_id)
            else:
                start = arg["mono"] - self.cfg.recording.pre_roll_s
                self._open_event_clip("event", start, None, arg.get("frame"), [event_id])
        elif kind == "motion-end":
            if self._event_id is not None:
                self.index.end_event(self._event_id, time.time())
                self._event_id = None
            clip = self.event_clip
            if clip is not None and clip.kind == "event":
                clip.until_mono = arg["mono"] + self.cfg.recording.post_roll_s
        elif kind == "cmd":
            name, value, fut = arg
            try:
                fut.set_result(self._command(name, value))
            except Exception as e:
                fut.set_exception(e)

    def _command(self, name: str, value: Any) -> Any:
        if name == "manual-start":
            duration = float(value or self.cfg.recording.max_clip_s)
            until = time.monotonic() + duration
            if self.event_clip is not None:
                self.event_clip.until_mono = max(self.event_clip.until_mono or until, until)
                return self.event_clip.rec_id
            return self._open_event_clip("manual", time.monotonic(), until, None, [])
        if name == "manual-stop":
            if self.event_clip is not None:
                self._close(self.event_clip)
                self.event_clip = None
                return True
            return False
        if name == "continuous":
            self.continuous = bool(value)
            if not self.continuous and self.cont_clip is not None:
                self._close(self.cont_clip)
                self.cont_clip = None
            return self.continuous
        if name == "events":
            self.events_enabled = bool(value)
            return self.events_enabled
        if name == "format":
            self._abort_all()
            self.index.clear()
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
            return True
        if name == "retention":
            return self._retention()
        raise ValueError(f"unknown recorder command {name}")

    def _open_event_clip(
        self, kind: str, start_mono: float, until: float | None, trigger_frame: int | None, events: list[int]
    ) -> int | None:
        backlog = self.stream.since(start_mono, self._last_seq)
        if not backlog:
            # Nothing usable in the ring yet: the clip starts at the next keyframe.
            self._pending = (kind, until, trigger_frame, events)
            return None
        clip = self._new_clip(kind, backlog[0], until, trigger_frame, events)
        for p in backlog[1:]:
            clip.writer.add(p)
        self.event_clip = clip
        return clip.rec_id

    def _new_clip(
        self, kind: str, first: Packet, until: float | None, trigger_frame: int | None, events: list[int]
    ) -> Clip:
        rel = relative_path(first.wall, kind)
        rec_id = self.index.add(rel, kind, self.stream.name, first.wall, first.frame_no, trigger_frame)
        writer = ClipWriter(self.root / rel, self.stream, first)
        for ev in events:
            self.index.link_event(ev, rec_id)
        log.info("recording %s %s (from frame %d)", kind, rel, first.frame_no)
        self.notify("recording-started", {"id": rec_id, "kind": kind, "path": rel})
        return Clip(rec_id, kind, writer, until, events)

    def _packet(self, pkt: Packet) -> None:
        if pkt.seq != self._last_seq + 1 and self._last_seq:
            self._need_key = True  # packets were dropped: clips cannot continue across the gap
        self._last_seq = pkt.seq
        if self._need_key:
            if not pkt.key:
                return
            self._need_key = False
            self._close_all()
        if self._pending is not None and pkt.key and self.stream.sps is not None:
            kind, until, trigger, events = self._pending
            self._pending = None
            self.event_clip = self._new_clip(kind, pkt, until, trigger, events)
        elif self.event_clip is not None:
            clip = self.event_clip
            over_len = clip.writer.duration_s >= self.cfg.recording.max_clip_s
            if (clip.until_mono is not None and pkt.mono > clip.until_mono) or (over_len and pkt.key):
                self._close(clip)
                self.event_clip = None
                if over_len and clip.until_mono is None and clip.kind == "event":
                    self.event_clip = self._new_clip("event", pkt, None, None, [])  # still moving: next clip
            else:
                clip.writer.add(pkt)
        self._continuous(pkt)

    def _continuous(self, pkt: Packet) -> None:
        if not self.continuous:
            return
        seg = self.cfg.recording.segment_s
        if self.cont_clip is not None and pkt.key and pkt.wall >= self._cont_boundary:
            self._close(self.cont_clip)
            self.cont_clip = None
        if self.cont_clip is None:
            if not pkt.key or self.stream.sps is None:
                return
            self.cont_clip = self._new_clip("continuous", pkt, None, None, [])
            # Segments end on wall-clock multiples of segment_s (e.g. whole minutes).
            self._cont_boundary = (pkt.wall // seg + 1) * seg
        else:
            self.cont_clip.writer.add(pkt)

    def _close(self, clip: Clip) -> None:
        w = clip.writer
        size = w.close()
        end = w.last.wall + w.nominal * float(TIME_BASE)
        self.index.close_recording(clip.rec_id, end, round(w.duration_s, 3), w.frames, size)
        self.notify(
            "recording-stopped",
            {"id": clip.rec_id, "kind": clip.kind, "frames": w.frames, "duration_s": round(w.duration_s, 3)},
        )

    def _close_all(self) -> None:
        for clip in (self.event_clip, self.cont_clip):
            if clip is not None:
                try:
                    self._close(clip)
                except OSError:
                    log.exception("closing %s failed", clip.writer.path)
        self.event_clip = self.cont_clip = None
        self._pending = None

    def _abort_all(self) -> None:
        # After an error the files may be inconsistent: close what can be closed; recovery fixes the rest.
        try:
            self._close_all()
        except Exception:
            log.exception("recorder: cleanup failed")
        self.event_clip = self.cont_clip = None

    def _retention(self) -> int:
        deleted = retention.enforce(self.index, self.root, self.cfg.storage)
        if deleted:
            self.notify("recording-deleted", {"count": len(deleted), "ids": deleted[:50]})
        return len(deleted)

    def recover(self) -> dict[str, int]:
        """After a crash or power cut: repair or drop recordings left open, forget rows without files."""
        stats = {"repaired": 0, "dropped": 0, "rebuilt": 0}
        for row in self.index.list(state="open", limit=1_000_000):
            path = self.root / row["path"]
            try:
                scan = fmp4.repair(path)
            except FileNotFoundError:
                self.index.delete(row["id"])
                stats["dropped"] += 1
                continue
            except OSError as e:
                log.error("cannot repair %s: %s", path, e)
                continue
            if scan.samples == 0:
                path.unlink(missing_ok=True)
                self.index.delete(row["id"])
                stats["dropped"] += 1
                log.warning("recovery: dropped empty recording %s", row["path"])
            else:
                self.index.close_recording(
                    row["id"],
                    row["start"] + scan.duration_s,
                    round(scan.duration_s, 3),
                    scan.samples,
                    scan.valid_length,
                )
                stats["repaired"] += 1
                log.warning("recovery: kept %s up to its last complete fragment (%.1f s)", row["path"], scan.duration_s)
        if self.index.rebuilt:
            stats["rebuilt"] = retention.rebuild(self.index, self.root)
        return stats
