"""The V4L2 backend's host-testable parts: ioctl layouts and request numbers, frame conversion, format choice.

The capture itself needs a V4L2 device: the QEMU image streams from `vivid` through it (the health gate
and bench/app/bench_device.py see its frames).
"""

from __future__ import annotations

import dataclasses
import struct

import av
import pytest
from pycam_app.capture import v4l2
from pycam_app.capture.base import CaptureError
from pycam_app.jpeg import JpegEncoder


@pytest.mark.skipif(struct.calcsize("P") != 8, reason="request numbers below are the 64-bit ones")
def test_ioctl_layouts_match_the_kernel() -> None:
    # sizes from linux/videodev2.h on 64-bit Linux, request numbers as the kernel headers define them
    assert (v4l2.CAPABILITY.size, v4l2.FMTDESC.size, v4l2.FORMAT.size) == (104, 64, 208)
    assert (v4l2.REQBUFS.size, v4l2.BUFFER.size, v4l2.STREAMPARM_SIZE) == (20, 88, 204)
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600
    assert v4l2.VIDIOC_S_FMT == 0xC0D05605
    assert v4l2.VIDIOC_REQBUFS == 0xC0145608
    assert (v4l2.VIDIOC_QUERYBUF, v4l2.VIDIOC_QBUF, v4l2.VIDIOC_DQBUF) == (0xC0585609, 0xC058560F, 0xC0585611)
    assert (v4l2.VIDIOC_STREAMON, v4l2.VIDIOC_S_PARM, v4l2.VIDIOC_ENUM_FMT) == (0x40045612, 0xC0CC5616, 0xC0405602)
    # the fields read back from a dequeued buffer: index, bytesused, flags, timestamp, m.offset, length
    values = [0] * 23
    values[0], values[2], values[3], values[5], values[6], values[19], values[20] = 2, 345600, 0x2001, 7, 5, 4096, 9
    raw = v4l2.BUFFER.pack(*values)
    assert struct.unpack_from("@IIII", raw, 0) == (2, 0, 345600, 0x2001)
    assert struct.unpack_from("@qq", raw, 24) == (7, 5)  # struct timeval after 4 bytes of padding
    assert struct.unpack_from("@QII", raw, 64) == (4096, 9, 0)  # union m, length, reserved2


def _planes(frame: av.VideoFrame, row_bytes: list[int]) -> list[bytes]:
    """Each plane's pixel bytes without the row padding PyAV may add."""
    out = []
    for p, n in zip(frame.planes, row_bytes, strict=True):
        data = bytes(p)
        out.append(b"".join(data[r * p.line_size : r * p.line_size + n] for r in range(p.height)))
    return out


def test_yuv420p_with_padded_rows() -> None:
    w, h, stride = 6, 4, 8  # the driver pads luma rows to 8 bytes, chroma rows to 4
    y = [bytes([10 * r + c for c in range(w)]) + b"\xee\xee" for r in range(h)]
    u = [bytes([100 + 10 * r + c for c in range(3)]) + b"\xee" for r in range(2)]
    v = [bytes([200 + 10 * r + c for c in range(3)]) + b"\xee" for r in range(2)]
    frame = v4l2.to_frame(b"".join(y + u + v), "yuv420p", w, h, stride)
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (w, h)
    want = [b"".join(r[:w] for r in y), b"".join(r[:3] for r in u), b"".join(r[:3] for r in v)]
    assert _planes(frame, [w, 3, 3]) == want


def test_nv12_and_yuyv() -> None:
    nv12 = bytes(range(16)) * 4 + bytes(range(100, 132))  # 16x4 luma, 16x2 interleaved chroma
    f = v4l2.to_frame(nv12, "nv12", 16, 4, 16)
    assert _planes(f, [16, 16]) == [nv12[:64], nv12[64:]]
    yuyv = bytes(range(64))  # 16x2 pixels, 32 bytes a row
    f = v4l2.to_frame(yuyv, "yuyv422", 16, 2, 32)
    assert f.format.name == "yuyv422" and _planes(f, [32]) == [yuyv]


def test_short_frame_is_an_error() -> None:
    with pytest.raises(CaptureError, match="short V4L2 frame"):
        v4l2.to_frame(b"\0" * 100, "yuv420p", 16, 16, 16)


def test_mjpeg_frames_are_decoded() -> None:
    src = av.VideoFrame(64, 32, "yuv420p")
    for p in src.planes:
        p.update(bytes([90]) * p.buffer_size)
    jpeg = JpegEncoder().encode(src)
    source = v4l2.V4L2Source("/dev/null", 64, 32, 10)
    source._code, source._size = "MJPG", (64, 32, 0)
    source._decoder = av.CodecContext.create("mjpeg", "r")
    frame = source._convert(memoryview(jpeg))
    assert frame is not None and (frame.width, frame.height) == (64, 32)
    assert source._convert(memoryview(b"not a jpeg")) is None  # a corrupt frame is dropped, not fatal


def test_format_choice() -> None:
    assert v4l2.wanted_formats("")[:3] == ["YU12", "NV12", "YUYV"]
    assert v4l2.wanted_formats("yuyv422") == ["YUYV"]
    assert v4l2.wanted_formats("MJPEG") == ["MJPG"]
    with pytest.raises(CaptureError, match=r"capture\.input_format 'h264' is not readable"):
        v4l2.wanted_formats("h264")


def test_open_names_the_problem(tmp_path: object) -> None:
    with pytest.raises(CaptureError, match="cannot open V4L2 device /nonexistent/video0"):
        v4l2.V4L2Source("/nonexistent/video0", 640, 360, 10).open()
    with pytest.raises(CaptureError, match="VIDIOC_QUERYCAP failed"):
        v4l2.V4L2Source("/dev/null", 640, 360, 10).open()


def test_the_ffmpeg_demuxer_backend_is_selectable_and_names_a_missing_device() -> None:
    from pycam_app.capture import select
    from pycam_app.capture.v4l2_ffmpeg import FFmpegV4L2Source
    from pycam_app.config import load

    cfg = load(None)
    cfg = dataclasses.replace(cfg, capture=dataclasses.replace(cfg.capture, source="v4l2-ffmpeg",
                                                               device="/nonexistent/video0"))
    assert select.choose(cfg) == "v4l2-ffmpeg"
    source = select.open_source(cfg)
    assert isinstance(source, FFmpegV4L2Source)
    with pytest.raises(CaptureError, match="/nonexistent/video0"):
        source.open()
