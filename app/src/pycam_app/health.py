"""The health document served at /api/health (the OTA health gate and factory self-test read it)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import __version__
from .pipeline import boottime

if TYPE_CHECKING:
    from .service import CameraService

STALL_S = 3.0  # no main frame for this long = stalled


def document(svc: CameraService) -> dict[str, Any]:
    p = svc.pipeline
    now = time.monotonic()
    last = p.main.last_mono
    if p.first_frame_boottime_s is None:
        status = "starting"
    elif last is None or now - last > STALL_S:
        status = "stalled"
    else:
        status = "ok"
    return {
        "status": status,
        "version": __version__,
        "frames": p.frames,
        "fps": {name: s.meter.value(now) for name, s in p.streams.items()},
        "first_frame_boottime_s": p.first_frame_boottime_s,
        "boottime_s": round(boottime(), 3),
        "uptime_s": round(now - svc.started_mono, 3),
        "encoder": p.main.encoder,
        "source": p.source.describe(),
        "clients": svc.clients,
        "recording": svc.recording_active(),
        "streams": {
            name: {
                "width": s.width,
                "height": s.height,
                "fps_target": s.fps,
                "frames": s.frames,
                "bytes": s.bytes,
                "encoder": s.encoder,
                "ring_packets": len(s.ring),
                "subscribers": s.subscriber_count(),
            }
            for name, s in p.streams.items()
        },
        "pipeline_restarts": p.restarts,
        "last_error": p.last_error,
    }
