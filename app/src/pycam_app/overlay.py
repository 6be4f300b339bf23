"""In-picture processing on the main frame: privacy mask, night (IR) grey, date/time watermark.

Works on the yuv420p planes in place through memoryviews, touching only the rows it changes, so it costs
well under a millisecond per frame in pure Python.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import av

if TYPE_CHECKING:
    from .pipeline import Controls

# 5x7 glyphs: 7 rows of 5 columns per character ('#' = lit).
_GLYPHS = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    ":": ("     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "),
    " ": ("     ",) * 7,
}
_FG, _BG = 235, 16

_cache: dict[tuple[str, int], list[bytes]] = {}


def _text_rows(text: str, scale: int) -> list[bytes]:
    key = (text, scale)
    rows = _cache.get(key)
    if rows is None:
        rows = []
        for r in range(7):
            line = bytearray()
            for ch in text:
                for c in _GLYPHS.get(ch, _GLYPHS[" "])[r]:
                    line += bytes([_FG if c == "#" else _BG]) * scale
                line += bytes([_BG]) * scale  # one column gap
            rows.extend([bytes(line)] * scale)
        _cache.clear()  # one text per second: keep only the current one
        _cache[key] = rows
    return rows


def watermark(frame: av.VideoFrame, wall: float) -> None:
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))
    scale = max(1, frame.height // 240)
    rows = _text_rows(text, scale)
    y_plane = frame.planes[0]
    ls, width = y_plane.line_size, frame.width
    mv = memoryview(y_plane)  # type: ignore[arg-type]
    x0 = 2 * scale
    y0 = frame.height - len(rows) - 2 * scale
    if y0 < 0:
        return
    for i, row in enumerate(rows):
        n = min(len(row), width - x0)
        off = (y0 + i) * ls + x0
        mv[off : off + n] = row[:n]


def _fill(plane: av.video.plane.VideoPlane, value: int) -> None:
    plane.update(bytes([value]) * plane.buffer_size)


def apply(frame: av.VideoFrame, controls: Controls, wall: float) -> av.VideoFrame:
    if not controls.on:
        _fill(frame.planes[0], 16)
        _fill(frame.planes[1], 128)
        _fill(frame.planes[2], 128)
        return frame
    if controls.night:
        _fill(frame.planes[1], 128)
        _fill(frame.planes[2], 128)
    if controls.watermark:
        watermark(frame, wall)
    return frame
