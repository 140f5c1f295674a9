"""Small H.264 Annex B helpers shared by the encoder, the muxers and the tests."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

START = b"\x00\x00\x01"
SPS, PPS, IDR = 7, 8, 5
US = Fraction(1, 1_000_000)  # packet timestamps are in microseconds


def nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte string into NAL units (start codes removed).

    Hand-written because PyAV exposes no bitstream splitter for raw bytes; Annex B is just
    start codes, and the encoder never emits emulation-prevented start codes inside a NAL.
    """
    out: list[bytes] = []
    starts: list[int] = []
    i = data.find(START)
    while i >= 0:
        starts.append(i + 3)
        i = data.find(START, i + 3)
    for j, s in enumerate(starts):
        e = starts[j + 1] - 3 if j + 1 < len(starts) else len(data)
        nal = data[s:e]
        if j + 1 < len(starts) and nal.endswith(b"\x00"):
            nal = nal[:-1]  # the leading zero of a 4-byte start code
        if nal:
            out.append(nal)
    return out


def nal_types(data: bytes) -> list[int]:
    return [n[0] & 0x1F for n in nal_units(data)]


def has_parameter_sets(data: bytes) -> bool:
    t = nal_types(data)
    return SPS in t and PPS in t


def template_stream(keyframe: bytes) -> tuple[Any, Any]:
    """A PyAV input stream describing the codec of ``keyframe`` (with SPS/PPS).

    Muxers (FLV needs codec extradata) copy their stream parameters from it with
    ``add_stream_from_template(..., opaque=True)``, which opens no encoder. Returns
    ``(container, stream)``; close the container after use.
    """
    import av

    if not has_parameter_sets(keyframe):
        raise ValueError("a stream must start on a keyframe carrying SPS and PPS")
    container = av.open(io.BytesIO(keyframe), format="h264")
    return container, container.streams.video[0]


def mux_packet(container: Any, stream: Any, packet: Any, what: str) -> None:
    """Write one encoded ``stream.outputs.Packet`` (microsecond timestamps) to a PyAV muxer."""
    import av

    from coachcam.errors import StreamError

    p = av.Packet(packet.data)
    p.stream = stream
    p.time_base = US
    p.pts = p.dts = packet.timestamp_us
    p.is_keyframe = packet.keyframe
    try:
        container.mux(p)
    except (av.FFmpegError, OSError) as exc:
        raise StreamError(f"{what} write failed: {exc}") from exc
