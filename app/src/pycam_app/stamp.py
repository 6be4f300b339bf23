"""The synthetic source's machine-readable stamp: frame counter and capture wall time in the picture.

Layout is proportional to the frame size so it survives scaling (main -> sub) and H.264 coding:
two bands at the top, each H/20 high, of 40 equal-width black/white blocks, most significant bit first.
  band 0: 32-bit frame counter, then an 8-bit check (XOR of the counter's bytes)
  band 1: 40-bit capture wall-clock time in milliseconds, modulo 2**40
The browser test and the latency benchmark decode the same layout in JavaScript (web/static/stamp.js).
"""

from __future__ import annotations

from collections.abc import Callable

BITS = 40
BANDS = 2
BAND_FRACTION = 20  # each band is height / BAND_FRACTION
WHITE = 235
BLACK = 16
MS_MODULUS = 1 << 40


def _check(counter: int) -> int:
    c = counter & 0xFFFFFFFF
    return (c ^ (c >> 8) ^ (c >> 16) ^ (c >> 24)) & 0xFF


def band_bits(counter: int, wall_ms: int) -> tuple[int, int]:
    """The two 40-bit words written into the bands."""
    c = counter & 0xFFFFFFFF
    return (c << 8) | _check(c), wall_ms % MS_MODULUS


def block_edges(width: int) -> list[int]:
    return [round(k * width / BITS) for k in range(BITS + 1)]


def band_height(height: int) -> int:
    return max(2, height // BAND_FRACTION)


def render_row(word: int, width: int) -> bytes:
    edges = block_edges(width)
    parts = []
    for k in range(BITS):
        bit = (word >> (BITS - 1 - k)) & 1
        parts.append(bytes([WHITE if bit else BLACK]) * (edges[k + 1] - edges[k]))
    return b"".join(parts)


def decode(luma_at: Callable[[int, int], int], width: int, height: int) -> tuple[int, int] | None:
    """Read (counter, wall_ms mod 2**40) back; luma_at(x, y) gives a luma sample. None if the check fails."""
    words = []
    for band in range(BANDS):
        y = int((band + 0.5) * height / BAND_FRACTION)
        word = 0
        for k in range(BITS):
            x = int((k + 0.5) * width / BITS)
            word = (word << 1) | (1 if luma_at(x, y) >= 128 else 0)
        words.append(word)
    counter, check = words[0] >> 8, words[0] & 0xFF
    if _check(counter) != check:
        return None
    return counter, words[1]


def decode_plane(plane: bytes | memoryview, line_size: int, width: int, height: int) -> tuple[int, int] | None:
    """decode() over a luma plane buffer (e.g. bytes(frame.planes[0]))."""
    return decode(lambda x, y: plane[y * line_size + x], width, height)
