"""V4L2 cameras (USB webcams, the vivid virtual camera in QEMU): streaming I/O with a few mmap buffers.

FFmpeg's video4linux2 demuxer (PyAV's av.open(..., format="video4linux2")) always asks the driver for 256
capture buffers; drivers grant their maximum (32 in Linux 6.1), every one a full frame mapped into the
process: 10.8 MB for vivid's 640x360 yuv420p, 130 MB for a 1080p YUYV webcam. This backend does the
same streaming I/O with BUFFERS (3) buffers and copies each dequeued frame into a PyAV VideoFrame (yuv420p,
nv12, packed YUV, grey, RGB) or decodes it with PyAV (MJPEG), so the rest of the pipeline is unchanged.

The ioctl structures are laid out with `struct` in native alignment (the kernel's own layout on 64-bit
and 32-bit Linux); their sizes are part of the request numbers, so a wrong layout fails with ENOTTY.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import select
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import av

from .base import Captured, CaptureError, Source

log = logging.getLogger(__name__)

# Each dequeued buffer is copied out and queued again at once, so the driver always has two to fill.
BUFFERS = 3
STALL_S = 10.0  # no frame for this long: the camera is gone or hung

# struct layouts (linux/videodev2.h), native alignment; "0l" pads the end like the C compiler does
CAPABILITY = struct.Struct("@16s32s32s3I3I")  # driver, card, bus_info, version, capabilities, device_caps, res
FMTDESC = struct.Struct("@3I32s2I3I")  # index, type, flags, description, pixelformat, mbus_code, reserved
FORMAT = struct.Struct("@I0l12I152x")  # type, (union, 8-aligned) v4l2_pix_format, rest of the 200-byte union
REQBUFS = struct.Struct("@4I4B")  # count, type, memory, capabilities, flags, reserved[3]
BUFFER = struct.Struct("@5I2l2I8B2IP2Ii0l")  # index .. field, timeval, timecode, sequence, memory, m, length ..
STREAMPARM = struct.Struct("@11I")  # type, capability, capturemode, timeperframe, ext, readbuffers, res[4]
STREAMPARM_SIZE = 204  # type + 200-byte union

BUF_TYPE_VIDEO_CAPTURE, MEMORY_MMAP, FIELD_NONE = 1, 1, 1
CAP_VIDEO_CAPTURE, CAP_STREAMING, CAP_DEVICE_CAPS = 0x1, 0x04000000, 0x80000000
BUF_FLAG_ERROR, BUF_FLAG_TIMESTAMP_MASK, BUF_FLAG_TIMESTAMP_MONOTONIC = 0x40, 0xE000, 0x2000


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


_R, _W, _RW = 2, 1, 3
VIDIOC_QUERYCAP = _ioc(_R, 0, CAPABILITY.size)
VIDIOC_ENUM_FMT = _ioc(_RW, 2, FMTDESC.size)
VIDIOC_S_FMT = _ioc(_RW, 5, FORMAT.size)
VIDIOC_REQBUFS = _ioc(_RW, 8, REQBUFS.size)
VIDIOC_QUERYBUF = _ioc(_RW, 9, BUFFER.size)
VIDIOC_QBUF = _ioc(_RW, 15, BUFFER.size)
VIDIOC_DQBUF = _ioc(_RW, 17, BUFFER.size)
VIDIOC_STREAMON = _ioc(_W, 18, struct.calcsize("i"))
VIDIOC_STREAMOFF = _ioc(_W, 19, struct.calcsize("i"))
VIDIOC_S_PARM = _ioc(_RW, 22, STREAMPARM_SIZE)


def fourcc(code: str) -> int:
    return int.from_bytes(code.encode(), "little")


# V4L2 pixel formats this backend reads, in the order it prefers them when capture.input_format is empty
# (no conversion first, then compact, then what costs a decode), with the PyAV format or decoder and the
# names capture.input_format accepts (FFmpeg's, as before, and the fourcc).
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "YU12": ("yuv420p", ("yuv420p", "yu12")),
    "NV12": ("nv12", ("nv12",)),
    "YUYV": ("yuyv422", ("yuyv422", "yuyv")),
    "UYVY": ("uyvy422", ("uyvy422", "uyvy")),
    "MJPG": ("mjpeg", ("mjpeg", "mjpg")),
    "JPEG": ("mjpeg", ("jpeg",)),
    "GREY": ("gray", ("gray", "grey")),
    "RGB3": ("rgb24", ("rgb24", "rgb3")),
    "BGR3": ("bgr24", ("bgr24", "bgr3")),
}
COMPRESSED = {"MJPG", "JPEG"}


def wanted_formats(input_format: str) -> list[str]:
    """Fourccs to try, best first: the configured one, or all readable ones."""
    if not input_format:
        return list(FORMATS)
    name = input_format.lower()
    for code, (_, names) in FORMATS.items():
        if name in names:
            return [code]
    known = ", ".join(n for _, names in FORMATS.values() for n in names[:1])
    raise CaptureError(f"capture.input_format {input_format!r} is not readable by the V4L2 backend; use one of {known}")


def plane_rows(pix: str, height: int, stride: int) -> list[tuple[int, int]]:
    """(rows, stride) of each plane of an uncompressed V4L2 frame with bytesperline `stride`."""
    if pix == "yuv420p":
        half = (height + 1) // 2
        return [(height, stride), (half, (stride + 1) // 2), (half, (stride + 1) // 2)]
    if pix == "nv12":
        return [(height, stride), ((height + 1) // 2, stride)]
    return [(height, stride)]


def to_frame(data: memoryview | bytes, pix: str, width: int, height: int, stride: int) -> av.VideoFrame:
    """One uncompressed V4L2 frame (planes back to back, `stride` bytes per luma row) as a VideoFrame."""
    frame = av.VideoFrame(width, height, pix)
    src = memoryview(data)
    offset = 0
    for plane, (rows, src_stride) in zip(frame.planes, plane_rows(pix, height, stride), strict=True):
        dst_stride = plane.line_size
        if rows * src_stride > len(src) - offset:
            raise CaptureError(f"short V4L2 frame: {len(src)} bytes for {width}x{height} {pix}")
        if src_stride == dst_stride:
            plane.update(src[offset : offset + rows * src_stride])  # type: ignore[arg-type]  # any buffer; no copy
        else:
            dst = memoryview(plane)  # type: ignore[arg-type]
            n = min(src_stride, dst_stride)
            for r in range(rows):
                dst[r * dst_stride : r * dst_stride + n] = src[offset + r * src_stride : offset + r * src_stride + n]
        offset += rows * src_stride
    return frame


class V4L2Source(Source):
    name = "v4l2"

    def __init__(self, device: str, width: int, height: int, fps: float, input_format: str = "") -> None:
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.input_format = input_format
        self._fd = -1
        self._maps: list[mmap.mmap] = []
        self._lock = threading.Lock()  # frames() (pipeline thread) against close() (any thread)
        self._closed = False
        self._code = ""
        self._size = (0, 0, 0)  # width, height, bytesperline the driver chose
        self._decoder: Any = None

    def describe(self) -> str:
        return f"v4l2:{self.device}"

    def _ioctl(self, request: int, buf: bytearray, what: str) -> bytearray:
        try:
            fcntl.ioctl(self._fd, request, buf)
        except OSError as e:
            raise CaptureError(f"V4L2 device {self.device}: {what} failed: {e.strerror or e}") from e
        return buf

    def open(self) -> None:
        self.close()
        self._closed = False
        try:
            self._fd = os.open(self.device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise CaptureError(f"cannot open V4L2 device {self.device}: {e.strerror or e}") from e
        try:
            self._setup()
        except BaseException:
            self._release()
            raise

    def _setup(self) -> None:
        cap = CAPABILITY.unpack(self._ioctl(VIDIOC_QUERYCAP, bytearray(CAPABILITY.size), "VIDIOC_QUERYCAP"))
        caps = cap[5] if cap[4] & CAP_DEVICE_CAPS else cap[4]
        if not caps & CAP_VIDEO_CAPTURE or not caps & CAP_STREAMING:
            raise CaptureError(f"{self.device} is not a V4L2 capture device with streaming I/O")
        offered = self._enum_formats()
        wanted = wanted_formats(self.input_format)
        code = next((c for c in wanted if c in offered), None)
        if code is None:
            raise CaptureError(
                f"V4L2 device {self.device} offers {', '.join(offered) or 'no formats'}, "
                f"none of which this backend reads ({', '.join(wanted)})"
            )
        fmt = bytearray(FORMAT.size)
        FORMAT.pack_into(fmt, 0, BUF_TYPE_VIDEO_CAPTURE, self.width, self.height, fourcc(code), FIELD_NONE,
                         *([0] * 8))
        got = FORMAT.unpack(self._ioctl(VIDIOC_S_FMT, fmt, "VIDIOC_S_FMT"))
        width, height, pixfmt, stride = got[1], got[2], got[3], got[5]
        self._code = pixfmt.to_bytes(4, "little").decode(errors="replace")
        if self._code not in FORMATS:
            raise CaptureError(f"V4L2 device {self.device} switched to pixel format {self._code!r}")
        self._size = (width, height, stride or width)
        self._set_fps()
        self._decoder = av.CodecContext.create("mjpeg", "r") if self._code in COMPRESSED else None
        req = bytearray(REQBUFS.size)
        REQBUFS.pack_into(req, 0, BUFFERS, BUF_TYPE_VIDEO_CAPTURE, MEMORY_MMAP, 0, 0, 0, 0, 0)
        count = REQBUFS.unpack(self._ioctl(VIDIOC_REQBUFS, req, "VIDIOC_REQBUFS"))[0]
        if count < 2:
            raise CaptureError(f"V4L2 device {self.device} granted {count} buffer(s); at least 2 are needed")
        for index in range(count):
            buf = self._buffer(index)
            info = BUFFER.unpack(self._ioctl(VIDIOC_QUERYBUF, buf, "VIDIOC_QUERYBUF"))
            offset, length = info[19] & 0xFFFFFFFF, info[20]  # m.offset: the union's low 32 bits
            self._maps.append(mmap.mmap(self._fd, length, mmap.MAP_SHARED, mmap.PROT_READ, offset=offset))
            self._ioctl(VIDIOC_QBUF, self._buffer(index), "VIDIOC_QBUF")
        self._ioctl(VIDIOC_STREAMON, bytearray(struct.pack("i", BUF_TYPE_VIDEO_CAPTURE)), "VIDIOC_STREAMON")
        log.info("v4l2 %s streaming: %dx%d %s, %d buffers (asked %dx%d@%g)", self.device, width, height,
                 self._code, count, self.width, self.height, self.fps)

    def _enum_formats(self) -> list[str]:
        codes = []
        for index in range(64):
            desc = bytearray(FMTDESC.size)
            FMTDESC.pack_into(desc, 0, index, BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0, 0, 0, 0)
            try:
                fcntl.ioctl(self._fd, VIDIOC_ENUM_FMT, desc)
            except OSError:
                break  # EINVAL ends the list
            codes.append(FMTDESC.unpack(desc)[4].to_bytes(4, "little").decode(errors="replace"))
        return codes

    def _set_fps(self) -> None:
        # Drivers that cannot change the rate say so; the pipeline then decimates what arrives.
        num, den = 1000, max(1, round(self.fps * 1000))
        parm = bytearray(STREAMPARM_SIZE)
        STREAMPARM.pack_into(parm, 0, BUF_TYPE_VIDEO_CAPTURE, 0, 0, num, den, 0, 0, 0, 0, 0, 0)
        try:
            fcntl.ioctl(self._fd, VIDIOC_S_PARM, parm)
        except OSError as e:
            log.info("v4l2 %s: frame rate %g not settable (%s)", self.device, self.fps, e.strerror)

    @staticmethod
    def _buffer(index: int) -> bytearray:
        values = [0] * 23
        values[0], values[1], values[18] = index, BUF_TYPE_VIDEO_CAPTURE, MEMORY_MMAP  # index, type, memory
        return bytearray(BUFFER.pack(*values))

    def frames(self) -> Iterator[Captured]:
        if self._fd < 0:
            raise CaptureError("V4L2 source not opened")
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLPRI)
        last = time.monotonic()
        while not self._closed:
            ready = poller.poll(1000)
            if self._closed:
                return
            if not ready:
                if time.monotonic() - last > STALL_S:
                    raise CaptureError(f"V4L2 device {self.device} delivered no frame for {STALL_S:.0f} s")
                continue
            with self._lock:
                if self._closed:
                    return
                captured = self._dequeue()
            if captured is not None:
                last = captured.mono
                yield captured
                captured = None  # not held here while waiting for the next frame

    def _dequeue(self) -> Captured | None:
        buf = self._buffer(0)
        try:
            fcntl.ioctl(self._fd, VIDIOC_DQBUF, buf)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return None
            raise CaptureError(f"V4L2 device {self.device} failed: {e.strerror or e}") from e
        info = BUFFER.unpack(buf)
        index, used, flags, sec, usec = info[0], info[2], info[3], info[5], info[6]
        now_m, now_w = time.monotonic(), time.time()
        try:
            if flags & BUF_FLAG_ERROR:
                return None
            data = memoryview(self._maps[index])[: used or None]
            try:
                frame = self._convert(data)
            finally:
                data.release()
        finally:
            self._ioctl(VIDIOC_QBUF, buf, "VIDIOC_QBUF")
        if frame is None:
            return None
        mono = now_m
        if flags & BUF_FLAG_TIMESTAMP_MASK == BUF_FLAG_TIMESTAMP_MONOTONIC and (sec or usec):
            mono = min(now_m, sec + usec / 1e6)  # when the driver finished the frame, not when we read it
        return Captured(frame, mono, now_w - (now_m - mono))

    def _convert(self, data: memoryview) -> av.VideoFrame | None:
        width, height, stride = self._size
        if self._decoder is None:
            return to_frame(data, FORMATS[self._code][0], width, height, stride)
        try:
            decoded = self._decoder.decode(av.Packet(bytes(data)))
        except av.error.FFmpegError as e:
            log.debug("v4l2 %s: undecodable frame dropped: %s", self.device, e)
            return None
        return decoded[-1] if decoded else None

    def close(self) -> None:
        self._closed = True
        with self._lock:
            self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                fcntl.ioctl(fd, VIDIOC_STREAMOFF, struct.pack("i", BUF_TYPE_VIDEO_CAPTURE))
            except OSError:  # a vanished device must not mask the original error
                log.debug("VIDIOC_STREAMOFF on %s failed", self.device, exc_info=True)
        for m in self._maps:
            m.close()
        self._maps = []
        if fd >= 0:
            os.close(fd)
        self._decoder = None
