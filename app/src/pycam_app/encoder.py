"""H.264 encoding with PyAV: the V4L2 M2M hardware encoder where it opens, libx264 otherwise."""

from __future__ import annotations

import contextlib
import logging
from fractions import Fraction
from typing import cast

import av

from .config import EncoderConfig, StreamConfig

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90_000)  # MPEG clock: every packet timestamp in the service uses it


class EncoderError(RuntimeError):
    pass


def _open(name: str, s: StreamConfig, e: EncoderConfig) -> av.VideoCodecContext:
    ctx = cast("av.VideoCodecContext", av.CodecContext.create(name, "w"))  # an encoder of a video codec
    ctx.width, ctx.height = s.width, s.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = TIME_BASE
    ctx.framerate = Fraction(s.fps).limit_denominator(1001)
    ctx.bit_rate = s.bitrate
    ctx.gop_size = max(1, round(s.keyframe_interval * s.fps))
    ctx.max_b_frames = 0  # live view and MSE want decode order == presentation order
    if name == "libx264":
        ctx.profile = "Constrained Baseline"
        ctx.options = {
            "preset": e.preset,
            "tune": "zerolatency",
            "threads": str(e.threads),
            # VBV keeps frame sizes even, so one keyframe does not stall a slow link.
            "maxrate": str(s.bitrate),
            "bufsize": str(s.bitrate),
            "sc_threshold": "0",  # keyframes exactly at the interval: predictable pre-roll and join
        }
    ctx.open()
    return ctx


class H264Encoder:
    """Encodes yuv420p frames with pts in TIME_BASE into H.264 Annex B access units."""

    def __init__(self, stream: StreamConfig, enc: EncoderConfig) -> None:
        self.stream = stream
        self.enc = enc
        candidates = ["h264_v4l2m2m", "libx264"] if enc.name == "auto" else [enc.name]
        errors = []
        for name in candidates:
            try:
                self._ctx = _open(name, stream, enc)
                self.name = name
                break
            except (av.error.FFmpegError, ValueError, OSError) as err:
                errors.append(f"{name}: {err}")
                log.debug("encoder %s unavailable: %s", name, err)
        else:
            raise EncoderError("no H.264 encoder could be opened: " + "; ".join(errors))
        log.info("encoder %s for %dx%d@%g %d bit/s", self.name, stream.width, stream.height, stream.fps, stream.bitrate)

    def encode(self, frame: av.VideoFrame, pts: int) -> list[tuple[bytes, int, bool]]:
        """(data, pts, keyframe) for every packet the encoder emits for this frame."""
        frame.pts = pts
        frame.time_base = TIME_BASE
        try:
            packets = self._ctx.encode(frame)
        except av.error.FFmpegError as e:
            raise EncoderError(f"{self.name} failed: {e}") from e
        return [(bytes(p), int(p.pts if p.pts is not None else pts), bool(p.is_keyframe)) for p in packets]

    def close(self) -> None:
        # Older PyAV has no close(); the context is then freed with the object.
        with contextlib.suppress(Exception):
            self._ctx.close()  # type: ignore[attr-defined]
