"""Video self-test on the station: two JPEG snapshots from the device, decoded with PyAV.

Not black and not a flat field: the luma's mean and spread. Not frozen: the share of pixels whose
luma moved by more than 8 levels between the two snapshots (taken 1.5 s apart).
"""

from __future__ import annotations

import io
from typing import Any

from pycam.errors import PycamError


def _gray(jpeg: bytes) -> Any:
    try:
        import av
    except ImportError as e:
        raise PycamError("the station decodes snapshots with PyAV", "run: scripts/setup-host") from e
    with av.open(io.BytesIO(jpeg), mode="r", format="mjpeg") as container:
        frame = next(container.decode(video=0))
    return frame.to_ndarray(format="gray")


def measure(first: bytes, second: bytes) -> dict[str, float | int]:
    import numpy as np

    a, b = _gray(first), _gray(second)
    if a.shape != b.shape:
        raise ValueError(f"snapshots differ in size: {a.shape} and {b.shape}")
    changed = np.abs(a.astype(np.int16) - b.astype(np.int16)) > 8
    return {
        "mean_luma": round(float(a.mean()), 1),
        "stddev_luma": round(float(a.std()), 1),
        "changed_pixels_pct": round(100 * float(changed.mean()), 3),
        "width": int(a.shape[1]),
        "height": int(a.shape[0]),
    }
