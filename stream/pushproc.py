"""The publishing child process: ``python -m stream.pushproc``, fed on stdin.

Why a process: PyAV opens a network output (``avio_open``: TCP connect and the RTMP handshake)
while holding the GIL, so in the robot's process every thread, the capture and control loop
included, would freeze for a handshake round trip (seconds if the server is stalled), and a
Python relay in the same process would deadlock against it. Here FFmpeg may block all it
likes; the parent only writes to a pipe.

Protocol: one JSON line ``{"url", "format", "options", "secret", "timeout"}``, then packets
``>QBI`` (pts µs, keyframe, length) + Annex B bytes. The secret comes only this way (never
argv, which ``ps`` shows) and is registered for log redaction. Exit status 0 on end of input.
"""

from __future__ import annotations

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

    from stream.h264 import template_stream

    us = 1_000_000
    container: Any = None
    stream: Any = None
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
            container.mux(p)
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
