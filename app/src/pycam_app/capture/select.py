"""Choose the capture backend from the config (auto: picamera2, then V4L2, then synthetic).

Only the chosen backend's module is imported: a camera never carries the synthetic source's test
pattern and stamp code, nor the V4L2 code on a picamera2 board.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import Config
from . import picam
from .base import Source

log = logging.getLogger(__name__)


def choose(cfg: Config) -> str:
    """The backend name the config selects on this machine."""
    source = cfg.capture.source
    if source != "auto":
        return source
    if picam.available():
        return "picamera2"
    if Path(cfg.capture.device).exists():
        return "v4l2"
    return "synthetic"


def open_source(cfg: Config) -> Source:
    name = choose(cfg)
    m = cfg.main
    src: Source
    if name == "picamera2":
        src = picam.Picamera2Source(m.width, m.height, m.fps)
    elif name == "v4l2":
        from .v4l2 import V4L2Source

        src = V4L2Source(cfg.capture.device, m.width, m.height, m.fps, cfg.capture.input_format)
    elif name == "v4l2-ffmpeg":
        from .v4l2_ffmpeg import FFmpegV4L2Source

        src = FFmpegV4L2Source(cfg.capture.device, m.width, m.height, m.fps, cfg.capture.input_format)
    else:
        from .synthetic import SyntheticSource

        src = SyntheticSource(m.width, m.height, m.fps)
    log.info("capture source: %s (config: %s)", src.describe(), cfg.capture.source)
    return src
