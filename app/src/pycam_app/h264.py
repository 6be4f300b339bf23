"""Just enough H.264 bitstream handling: split Annex B, find parameter sets, convert to length-prefixed."""

from __future__ import annotations

NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream, start codes removed."""
    nals = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        # A 4-byte start code leaves a zero byte in front of the next one.
        nal = data[start:end]
        if j >= 0 and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")
        if nal:
            nals.append(nal)
        i = j
    return nals


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def parameter_sets(data: bytes) -> tuple[bytes | None, bytes | None]:
    sps = pps = None
    for nal in split_annexb(data):
        t = nal_type(nal)
        if t == NAL_SPS and sps is None:
            sps = nal
        elif t == NAL_PPS and pps is None:
            pps = nal
    return sps, pps


def to_avcc(data: bytes) -> bytes:
    """4-byte length-prefixed NAL units for MP4 samples; parameter sets and AUDs live in avcC instead."""
    out = bytearray()
    for nal in split_annexb(data):
        if nal_type(nal) in (NAL_SPS, NAL_PPS, NAL_AUD):
            continue
        out += len(nal).to_bytes(4, "big")
        out += nal
    return bytes(out)


def avcc_record(sps: bytes, pps: bytes) -> bytes:
    """AVCDecoderConfigurationRecord (ISO 14496-15) for the avcC box."""
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )
