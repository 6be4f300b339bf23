"""Synthetic stamp, H.264 helpers, fragmented MP4 writing, scanning and repair."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycam_app import config, fmp4, h264, stamp
from pycam_app.capture.synthetic import BARS, SyntheticSource
from pycam_app.encoder import H264Encoder

Packets = list[tuple[bytes, int, bool]]


def encode(n: int, w: int = 320, h: int = 180, fps: float = 10, gop_s: float = 0.5) -> Packets:
    sc = config.StreamConfig(width=w, height=h, fps=fps, bitrate=300_000, keyframe_interval=gop_s)
    enc = H264Encoder(sc, dataclasses.replace(config.EncoderConfig(), name="libx264"))
    src = SyntheticSource(w, h, fps)
    src.open()
    out = []
    for i in range(n):
        out += enc.encode(src.make_frame(i + 1, 1_700_000_000 + i / fps), round(i * 90000 / fps))
    return out


def fmp4_bytes(packets: list[tuple[bytes, int, bool]], w: int = 320, h: int = 180) -> bytes:
    sps, pps = h264.parameter_sets(packets[0][0])
    assert sps and pps
    mux = fmp4.LiveMuxer(10)
    return fmp4.init_segment(w, h, sps, pps) + b"".join(mux.fragment(*p) for p in packets)


def decode_all(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), format="mp4") as c:
        return list(c.decode(video=0))


@pytest.mark.parametrize("size", [(320, 180), (640, 360), (1296, 972), (160, 90)])
def test_stamp_roundtrip_raw(size: tuple[int, int]) -> None:
    w, h = size
    src = SyntheticSource(w, h, 10)
    src.open()
    f = src.make_frame(123456, 1_700_000_000.25)
    p = f.planes[0]
    assert stamp.decode_plane(bytes(p), p.line_size, w, h) == (123456, 1_700_000_000_250 % stamp.MS_MODULUS)


def test_stamp_survives_h264_and_scaling() -> None:
    frames = decode_all(fmp4_bytes(encode(12)))
    assert len(frames) == 12
    counters = []
    for f in frames:
        small = f.reformat(width=160, height=90)
        r = stamp.decode_plane(bytes(small.planes[0]), small.planes[0].line_size, 160, 90)
        assert r is not None
        counters.append(r[0])
    assert counters == list(range(1, 13))


def test_synthetic_picture_shows_colour_bars() -> None:
    src = SyntheticSource(320, 180, 10)
    src.open()
    rgb = src.make_frame(1, 0).reformat(format="rgb24")
    row = bytes(rgb.planes[0])[120 * rgb.planes[0].line_size :]
    # white bar on the left, blue-ish bar second from the right (75% bars)
    assert all(v > 150 for v in row[20 * 3 : 20 * 3 + 3])
    assert BARS[6][1] > 200  # blue has high U
    b = row[(320 * 13 // 16) * 3 : (320 * 13 // 16) * 3 + 3]
    assert b[2] > b[0] and b[2] > b[1]


def test_annexb_split_and_avcc() -> None:
    key = encode(1)[0][0]
    nals = h264.split_annexb(key)
    types = [h264.nal_type(n) for n in nals]
    assert h264.NAL_SPS in types and h264.NAL_PPS in types and 5 in types
    avcc = h264.to_avcc(key)
    n = int.from_bytes(avcc[:4], "big")
    assert h264.nal_type(avcc[4:5]) not in (h264.NAL_SPS, h264.NAL_PPS)
    assert 4 + n <= len(avcc)


def test_fmp4_scan_counts_samples_and_keyframes(tmp_path: Path) -> None:
    pk = encode(20)
    path = tmp_path / "a.mp4"
    path.write_bytes(fmp4_bytes(pk))
    s = fmp4.scan(path)
    assert s.has_init and s.samples == 20 and s.fragments == 20
    assert s.keyframes == [0, 45000, 90000, 135000]
    assert s.duration_s == pytest.approx(2.0)
    assert s.valid_length == path.stat().st_size


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_repair_keeps_a_playable_prefix_at_any_cut(tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    data = _CLIP
    cut = cut % (len(data) + 1)
    path = tmp_path_factory.mktemp("cut") / "c.mp4"
    path.write_bytes(data[:cut] + b"\0" * (cut % 7))  # a power cut can leave zeroed blocks after the data
    s = fmp4.repair(path)
    assert path.stat().st_size == s.valid_length
    if s.samples:
        frames = decode_all(path.read_bytes())
        assert len(frames) == s.samples


_CLIP = fmp4_bytes(encode(15))
