"""H.264 encoding with PyAV: libx264 (ultrafast, zerolatency) or the Pi 4's hardware encoder.

Packets go to outputs picamera2-style, ``outputframe(frame, keyframe, timestamp)``, with the
timestamp in µs on the *stream clock*: capture time minus the first frame's capture time.
Every keyframe carries SPS/PPS (x264 repeats them without global headers; for other encoders
the last seen ones are prepended), so any output can start or resume on any keyframe.

On a Pi 4, ``h264_v4l2m2m`` drives the same hardware encoder picamera2's ``H264Encoder``
uses; it is reached through PyAV rather than picamera2 because picamera2's encoder reads the
camera's own buffers, which would bypass the privacy blur applied to our frames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from coachcam.errors import StreamError
from stream.h264 import IDR, PPS, SPS, US, nal_units
from stream.outputs import Output

log = logging.getLogger(__name__)


class Encoder(Protocol):
    def encode(self, image: np.ndarray, t_capture: float) -> None: ...

    def close(self) -> None: ...

    def restart(self) -> None:
        """Drop a failed codec; the next frame opens a fresh one on the same stream clock."""
        ...


def pick_codec(choice: str) -> str:
    """``auto``: the V4L2 hardware encoder when this machine has one, else libx264."""
    if choice != "auto":
        return choice
    if os.path.exists("/dev/video11"):  # the Pi's bcm2835-codec encode node
        import av

        if "h264_v4l2m2m" in av.codecs_available:
            return "h264_v4l2m2m"
    return "libx264"


class LibavEncoder:
    """Encodes BGR frames and hands each packet to every output."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        bitrate_kbps: int = 2500,
        keyframe_interval_s: float = 1.0,
        codec: str = "libx264",
        outputs: Sequence[Output] = (),
        threads: int = 0,
    ) -> None:
        if width % 2 or height % 2:
            raise StreamError(f"H.264 4:2:0 needs an even frame size, not {width}x{height}")
        self.width, self.height, self.fps = width, height, fps
        self.bitrate_kbps = bitrate_kbps
        self.gop = max(1, round(keyframe_interval_s * fps))
        self.codec = codec
        self.outputs = list(outputs)
        self.threads = threads
        self._ctx: Any = None
        self._t0: float | None = None
        self._last_pts = -1
        self._headers = b""
        self.frames_in = 0
        self.packets_out = 0
        self.last_pts_us: int | None = None

    def _open(self) -> Any:
        import av

        try:
            ctx: Any = av.CodecContext.create(self.codec, "w")
        except (av.FFmpegError, ValueError) as exc:
            raise StreamError(f"H.264 encoder {self.codec!r} unavailable: {exc}") from exc
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        ctx.time_base = US
        ctx.framerate = Fraction(self.fps).limit_denominator(1001)
        ctx.bit_rate = self.bitrate_kbps * 1000
        ctx.gop_size = self.gop
        ctx.max_b_frames = 0
        if self.codec == "libx264":
            k = self.bitrate_kbps
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "threads": str(self.threads),
                # fixed 1 s GOP, headers on every keyframe, a 1 s VBV so the rate suits a link
                "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:"
                f"repeat-headers=1:vbv-maxrate={k}:vbv-bufsize={k}",
            }
        try:
            ctx.open()
        except av.FFmpegError as exc:
            raise StreamError(f"cannot open H.264 encoder {self.codec!r}: {exc}") from exc
        return ctx

    def encode(self, image: np.ndarray, t_capture: float) -> None:
        import av
        import cv2

        if self._ctx is None:
            self._ctx = self._open()
        if self._t0 is None:
            self._t0 = t_capture
        if image.shape[:2] != (self.height, self.width):
            raise StreamError(
                f"frame is {image.shape[1]}x{image.shape[0]}, encoder is {self.width}x{self.height}"
            )
        pts = max(round((t_capture - self._t0) * 1e6), self._last_pts + 1)
        self._last_pts = pts
        yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(np.asarray(yuv, dtype=np.uint8), format="yuv420p")
        frame.pts = pts
        frame.time_base = US
        self.frames_in += 1
        try:
            packets = self._codec_encode(frame)
        except av.FFmpegError as exc:
            raise StreamError(f"H.264 encoder {self.codec!r} failed: {exc}") from exc
        self._emit(packets)

    def _codec_encode(self, frame: Any) -> Any:
        return self._ctx.encode(frame)

    def restart(self) -> None:
        # Not flushed: a codec that just threw has nothing trustworthy left to give.
        self._ctx = None

    def _emit(self, packets: Any) -> None:
        for p in packets:
            data = bytes(p)
            key = bool(p.is_keyframe)
            if key:
                data = self._with_headers(data)
            self.packets_out += 1
            self.last_pts_us = int(p.pts)
            for out in self.outputs:
                out.outputframe(data, key, int(p.pts))

    def _with_headers(self, data: bytes) -> bytes:
        nals = nal_units(data)
        types = [n[0] & 0x1F for n in nals]
        if SPS in types and PPS in types:
            self._headers = b"".join(
                b"\x00\x00\x00\x01" + n for n in nals if n[0] & 0x1F in (SPS, PPS)
            )
            return data
        if self._headers and IDR in types:
            return self._headers + data
        return data

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            try:
                self._emit(ctx.encode(None))
            except Exception as exc:  # flushing a broken encoder at shutdown: nothing to save
                log.debug("encoder flush: %s", exc)
