"""The publishing child process: ``python -m stream.pushproc``, fed on stdin.

Why a process: PyAV opens a network output (``avio_open``: TCP connect and the RTMP handshake)
while holding the GIL, so in the robot's process every thread, the capture and control loop
included, would freeze for a handshake round trip (seconds if the server is stalled), and a
Python relay in the same process would deadlock against it. Here FFmpeg may block all it
likes; the parent only writes to a pipe.

Protocol: one JSON line ``{"url", "format", "options", "secret", "timeout"}``, then packets
``>QBI`` (pts µs, keyframe, length) + Annex B bytes. The secret comes only this way (never
argv, which ``ps`` shows) and is registered for log redaction. Exit status 0 on end of input.

The child tells the parent what the *server* said, one JSON line each on stdout:
``{"event": "accepted"}`` once the first packet went out (FFmpeg opens an RTMP output only after
the server answered publish with NetStream.Publish.Start, an RTSP one after RECORD), or
``{"event": "refused", "reason": ...}`` when that opening failed: the server's own words where
it gives them (FFmpeg logs "Server error: Already publishing"), else nginx-rtmp's way of
refusing a key (``on_publish`` answered 4xx), which is to close the connection.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import struct
import sys
from fractions import Fraction
from typing import IO, Any, BinaryIO

HEADER = struct.Struct(">QBI")

log = logging.getLogger("stream.pushproc")


def write_packet(f: IO[bytes], pts_us: int, keyframe: bool, data: bytes) -> None:
    f.write(HEADER.pack(pts_us, 1 if keyframe else 0, len(data)))
    f.write(data)


CLOSED_AT_PUBLISH = "the server closed the connection when asked to publish: wrong stream key?"


def _event(**kw: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()


def _server_words(exc: BaseException) -> str:
    """What the server said, from the FFmpeg log line PyAV attaches to its error."""
    entry = getattr(exc, "log", None)
    if entry and len(entry) == 3 and entry[2]:
        return str(entry[2]).strip().removeprefix("Server error: ")
    return ""


def _read_exact(f: BinaryIO, n: int) -> bytes | None:
    buf = f.read(n)
    if not buf or len(buf) < n:
        return None
    return buf


def main() -> int:
    from coachcam.logs import configure, register_secret

    configure("warning")
    stdin = sys.stdin.buffer
    spec = json.loads(stdin.readline() or "{}")
    register_secret(spec.get("secret", ""))
    import av
    import av.logging

    from stream.h264 import template_stream

    # FFmpeg's error lines reach the exception (``exc.log``): the server's reason for a refusal.
    # Not also to the journal: the parent logs the refusal once per outage, not every retry.
    av.logging.set_level(av.logging.ERROR)
    logging.getLogger("libav").setLevel(logging.CRITICAL)

    us = 1_000_000
    container: Any = None
    stream: Any = None
    accepted = False
    try:
        while True:  # ends at end of input (the parent closed the pipe) or on an error
            head = _read_exact(stdin, HEADER.size)
            if head is None:
                break
            pts, key, n = HEADER.unpack(head)
            data = _read_exact(stdin, n)
            if data is None:
                break
            if container is None:
                tin, template = template_stream(data)
                container = av.open(
                    spec["url"],
                    "w",
                    format=spec["format"],
                    options=spec.get("options", {}),
                    timeout=(float(spec.get("timeout", 6.0)), None),
                )
                stream = container.add_stream_from_template(template, opaque=True)
                tin.close()
            p = av.Packet(data)
            p.stream = stream
            p.time_base = Fraction(1, us)
            p.pts = p.dts = pts
            p.is_keyframe = bool(key)
            try:
                container.mux(p)  # the first opens the connection: handshake and publish
            except (av.FFmpegError, OSError) as exc:
                words = _server_words(exc)
                if not accepted and (words or getattr(exc, "errno", None) == errno.EIO):
                    _event(event="refused", reason=words or CLOSED_AT_PUBLISH)
                raise
            if not accepted:
                accepted = True
                _event(event="accepted")
    except (av.FFmpegError, OSError, ValueError) as exc:
        log.warning("publisher: %s", exc)
        return 3
    finally:
        if container is not None:
            try:
                container.close()
            except (av.FFmpegError, OSError) as exc:
                log.info("publisher: close: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
