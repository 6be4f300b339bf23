"""Fragmented MP4 (ISO BMFF) for one H.264 track: the live view's MSE stream and the recordings.

Fragmented files suit both jobs: a browser's Media Source Extensions take the init segment then one small
fragment per frame, and a recording cut by a power loss is still valid up to its last complete fragment
(scan()/repair() find that point). Timescale is the service's 90 kHz packet clock.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import h264

TIMESCALE = 90_000
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_KEY_FLAGS = 0x02000000  # sample_depends_on = 2 (I-frame)
_DELTA_FLAGS = 0x01010000  # depends on others, non-sync sample


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def init_segment(width: int, height: int, sps: bytes, pps: bytes) -> bytes:
    """ftyp + moov describing one avc1 video track (track 1) with no samples (they come in fragments)."""
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso6avc1mp41")
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),
        struct.pack(">IH", 0x10000, 0x100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),
    )
    tkhd = full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, 1, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0))  # 'und'
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", bytes(12), b"pycam video\0")
    avc1 = box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),
        bytes(16),
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x480000, 0x480000),
        bytes(4),
        struct.pack(">H", 1),
        bytes(32),
        struct.pack(">Hh", 0x18, -1),
        box(b"avcC", h264.avcc_record(sps, pps)),
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        full_box(b"stts", 0, 0, bytes(4)),
        full_box(b"stsc", 0, 0, bytes(4)),
        full_box(b"stsz", 0, 0, bytes(8)),
        full_box(b"stco", 0, 0, bytes(4)),
    )
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    minf = box(b"minf", full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0)))
    return ftyp + box(b"moov", mvhd, trak, mvex)


@dataclass(slots=True)
class Sample:
    data: bytes  # AVCC (length-prefixed) access unit
    duration: int  # in TIMESCALE units
    key: bool


def media_segment(sequence: int, base_time: int, samples: Sequence[Sample]) -> bytes:
    """moof + mdat for consecutive samples starting at decode time base_time."""
    n = len(samples)
    trun_flags = 0x000701  # data-offset, sample duration, size, flags present
    entries = b"".join(
        struct.pack(">III", s.duration, len(s.data), _KEY_FLAGS if s.key else _DELTA_FLAGS) for s in samples
    )
    # moof size is fixed by the sample count: compute the data offset (moof + mdat header) up front.
    trun_size = 12 + 8 + 12 * n
    traf_size = 8 + 16 + 20 + trun_size
    moof_size = 8 + 16 + traf_size
    trun = full_box(b"trun", 0, trun_flags, struct.pack(">Ii", n, moof_size + 8), entries)
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1))  # default-base-is-moof
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_time))
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), box(b"traf", tfhd, tfdt, trun))
    assert len(moof) == moof_size
    payload = b"".join(s.data for s in samples)
    return moof + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


class LiveMuxer:
    """One viewer's stream: an init segment, then one fragment per access unit, times relative to the join."""

    def __init__(self, fps: float) -> None:
        self.nominal = max(1, round(TIMESCALE / fps))
        self.sequence = 0
        self.base: int | None = None

    def fragment(self, data: bytes, pts: int, key: bool) -> bytes:
        if self.base is None:
            self.base = pts
        self.sequence += 1
        return media_segment(self.sequence, pts - self.base, [Sample(h264.to_avcc(data), self.nominal, key)])


# ---- reading back (recovery, index rebuild, tests) ----


@dataclass
class Scan:
    valid_length: int = 0  # bytes up to the end of the last complete fragment
    has_init: bool = False
    fragments: int = 0
    samples: int = 0
    first_time: int | None = None  # decode time of the first sample, TIMESCALE units
    end_time: int | None = None  # decode time after the last sample
    keyframes: list[int] = field(default_factory=list)  # decode times of sync samples

    @property
    def duration_s(self) -> float:
        if self.first_time is None or self.end_time is None:
            return 0.0
        return (self.end_time - self.first_time) / TIMESCALE


def _boxes(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of complete boxes in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos, pos + header, pos + size
        pos += size


def _parse_moof(buf: bytes, start: int, end: int) -> tuple[int, list[tuple[int, bool]]] | None:
    """(base decode time, [(duration, key)]) of a moof written by media_segment()."""
    for kind, _, p, e in _boxes(buf, start, end):
        if kind != b"traf":
            continue
        base = 0
        samples: list[tuple[int, bool]] = []
        for k2, _, p2, e2 in _boxes(buf, p, e):
            if k2 == b"tfdt":
                version = buf[p2]
                base = (
                    struct.unpack_from(">Q", buf, p2 + 4)[0]
                    if version == 1
                    else struct.unpack_from(">I", buf, p2 + 4)[0]
                )
            elif k2 == b"trun":
                flags = struct.unpack_from(">I", buf, p2)[0] & 0xFFFFFF
                count = struct.unpack_from(">I", buf, p2 + 4)[0]
                q = p2 + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
                for _ in range(count):
                    dur = size = sflags = 0
                    if flags & 0x100:
                        dur = struct.unpack_from(">I", buf, q)[0]
                        q += 4
                    if flags & 0x200:
                        size = struct.unpack_from(">I", buf, q)[0]
                        q += 4
                    if flags & 0x400:
                        sflags = struct.unpack_from(">I", buf, q)[0]
                        q += 4
                    if flags & 0x800:
                        q += 4
                    del size
                    samples.append((dur, not (sflags & 0x10000)))
                    if q > e2:
                        return None
        return base, samples
    return None


def scan(path: str | Path) -> Scan:
    """Find the valid prefix of a fragmented MP4: init segment then complete moof+mdat pairs."""
    buf = Path(path).read_bytes()
    result = Scan()
    pending: tuple[int, list[tuple[int, bool]]] | None = None
    for kind, _start, payload, end in _boxes(buf, 0, len(buf)):
        if kind in (b"ftyp", b"free", b"styp"):
            if not result.has_init:
                result.valid_length = end
            continue
        if kind == b"moov":
            result.has_init = True
            result.valid_length = end
        elif kind == b"moof":
            pending = _parse_moof(buf, payload, end)
            if pending is None:
                break
        elif kind == b"mdat" and pending is not None and result.has_init:
            base, samples = pending
            t = base
            for dur, key in samples:
                if key:
                    result.keyframes.append(t)
                t += dur
            if result.first_time is None:
                result.first_time = base
            result.end_time = t
            result.samples += len(samples)
            result.fragments += 1
            result.valid_length = end
            pending = None
        else:
            break
    return result


def repair(path: str | Path) -> Scan:
    """Truncate a recording to its last complete fragment (after a power cut) and fsync it."""
    result = scan(path)
    size = Path(path).stat().st_size
    if result.valid_length < size:
        with open(path, "r+b") as f:
            f.truncate(result.valid_length)
            f.flush()
            os.fsync(f.fileno())
    return result
