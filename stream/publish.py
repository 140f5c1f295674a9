"""Network publishers, chosen by URL scheme (pyserial's ``serial_for_url`` is the model).

- ``rtmp://``, ``rtmps://``, ``rtsp://``: a ``stream.pushproc`` child muxes with PyAV (FLV /
  RTSP) to a local ``TcpRelay``, which forwards to the server (verified TLS for rtmps).
- ``srt://``: PyAV's wheel has no SRT, Debian's ffmpeg has: PyAV muxes MPEG-TS into the stdin
  of an ``ffmpeg`` subprocess that pushes it. An SRT URL carrying a secret is refused: the
  ffmpeg CLI takes its output URL only on the command line, which ``ps`` shows.

``MemoryPublisher`` is the fake (tests): it keeps what it was sent and can be told to break.

Each publisher is a ``Sink`` for ``ThreadedOutput``: it may block and may raise; the first
packet it gets is a keyframe, from which it takes the codec parameters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from coachcam.errors import StreamError
from stream.h264 import mux_packet, template_stream
from stream.outputs import (
    EndpointUnreachable,
    OutputFailure,
    Packet,
    PublishRefused,
    Sink,
    failure_reason,
)
from stream.pushproc import write_packet
from stream.relay import TcpRelay, tls_context

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "rtsp": 554}


def redact_url(url: str) -> str:
    """The URL without user info, query or stream key, for logs."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    path = p.path.rsplit("/", 1)[0] + "/…" if p.path.count("/") > 1 else p.path
    return urlunsplit((p.scheme, host, path, "", ""))


class _MuxingSink:
    """Shared part: mux packets with PyAV into ``self._open_container()``'s container."""

    fmt = ""

    def __init__(self) -> None:
        self._container: Any = None
        self._stream: Any = None
        self._aborted = threading.Event()

    def _open_container(self) -> Any:
        raise NotImplementedError

    def write(self, packet: Packet) -> None:
        if self._aborted.is_set():
            raise StreamError("connection aborted")
        if self._container is None:
            tin, template = template_stream(packet.data)
            try:
                container = self._open_container()
                self._container = container
                self._stream = container.add_stream_from_template(template, opaque=True)
            finally:
                tin.close()
        mux_packet(self._container, self._stream, packet, self.fmt)

    def close(self) -> None:
        c, self._container = self._container, None
        if c is not None:
            try:
                c.close()
            except Exception as exc:  # trailer to a dead server; the connection is gone anyway
                log.debug("close: %s", exc)

    def abort(self) -> None:
        self._aborted.set()


class RelayedPublisher:
    """rtmp://, rtmps://, rtsp://: a ``stream.pushproc`` child muxes (PyAV) to a local relay.

    The child process keeps FFmpeg's blocking, GIL-holding network open out of the robot's
    process (see ``stream.pushproc``); the ``TcpRelay`` here verifies TLS with Python's ``ssl``
    and times out a server that stops reading (see ``stream.relay``). The stream key reaches
    the child on its stdin, never on a command line.
    """

    def __init__(
        self, url: str, *, ca_file: str = "", timeout: float = 6.0, secret: str = ""
    ) -> None:
        p = urlsplit(url)
        if p.scheme not in DEFAULT_PORTS or not p.hostname:
            raise StreamError(f"not an rtmp(s)/rtsp URL: {redact_url(url)}")
        self.url = url
        self.scheme = p.scheme
        self.fmt = "rtsp" if p.scheme == "rtsp" else "flv"
        self._ca_file = ca_file
        self._timeout = timeout
        self._secret = secret
        self._relay: TcpRelay | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._aborted = threading.Event()
        self._reader: threading.Thread | None = None
        self.accepted = False  # the server accepted the publish (the child said so)
        self.refused: str | None = None  # ... or refused it, with its reason

    def _start(self) -> subprocess.Popen[bytes]:
        p = urlsplit(self.url)
        assert p.hostname is not None
        port = p.port or DEFAULT_PORTS[self.scheme]
        tls = tls_context(self._ca_file) if self.scheme == "rtmps" else None
        relay = TcpRelay(p.hostname, port, tls=tls, timeout=self._timeout, name=self.scheme)
        self._relay = relay
        try:
            local = relay.start()
        except OSError as exc:  # connection refused, timeout, unknown host, TLS not verified
            raise EndpointUnreachable(
                f"{redact_url(self.url)}: {exc}", failure_reason(exc)
            ) from exc
        userinfo = p.netloc.rsplit("@", 1)[0] + "@" if "@" in p.netloc else ""
        scheme = "rtsp" if self.scheme == "rtsp" else "rtmp"
        local_url = urlunsplit((scheme, f"{userinfo}127.0.0.1:{local}", p.path, p.query, ""))
        # PyAV opens the protocol without options, so rtmp_tcurl cannot be set: the server
        # sees tcUrl rtmp://127.0.0.1:PORT/APP (nginx-rtmp ignores it; the key is the name).
        options = {"rtsp_transport": "tcp"} if self.fmt == "rtsp" else {}
        spec = {
            "url": local_url,
            "format": self.fmt,
            "options": options,
            "secret": self._secret,
            "timeout": self._timeout,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.pushproc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_events, args=(proc.stdout,), name="pushproc-events", daemon=True
        )
        self._reader.start()
        return proc

    def _read_events(self, f: IO[bytes]) -> None:
        """What the child reports the server said (see ``stream.pushproc``), until it exits."""
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "accepted":
                self.accepted = True
            elif ev.get("event") == "refused":
                self.refused = str(ev.get("reason", "")) or "refused"
                log.debug("%s refused the publish: %s", redact_url(self.url), self.refused)
        f.close()

    def _gone(self, detail: str) -> StreamError:
        """The child is gone: why, as the server or the relay saw it."""
        if self._reader is not None and self._proc is not None and self._proc.poll() is not None:
            self._reader.join(2.0)  # the child has exited: its last words are in the pipe
        if self.refused is not None:
            return PublishRefused(
                f"{redact_url(self.url)} refused the publish: {self.refused}", self.refused
            )
        assert self._relay is not None
        try:
            self._relay.check()
        except StreamError as exc:
            err = self._relay.error
            return OutputFailure(str(exc), failure_reason(err) if err else "connection lost")
        return OutputFailure(f"publisher for {redact_url(self.url)} {detail}", "connection lost")

    def write(self, packet: Packet) -> None:
        if self._aborted.is_set():
            raise StreamError("connection aborted")
        proc = self._proc or self._start()
        assert proc.stdin is not None and self._relay is not None
        try:
            write_packet(proc.stdin, packet.timestamp_us, packet.keyframe, packet.data)
            proc.stdin.flush()
        except (OSError, ValueError) as exc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2.0)
            raise self._gone(f"gone: {exc}") from exc
        if proc.poll() is not None or self._relay.error is not None:
            raise self._gone(f"exited ({proc.returncode})")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # end of input: the child writes the trailer and exits
            try:
                proc.wait(self._timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2.0)
        if self._reader is not None:
            self._reader.join(2.0)
        if self._relay is not None:
            self._relay.abort()
            self._relay.join()

    def abort(self) -> None:
        self._aborted.set()
        if self._relay is not None:
            self._relay.abort()
        if self._proc is not None:
            self._proc.kill()


class FfmpegSrtPublisher(_MuxingSink):
    """srt:// through Debian's ``ffmpeg`` (PyAV's wheel has no SRT); MPEG-TS on its stdin."""

    fmt = "mpegts"

    def __init__(self, url: str, *, ffmpeg: str = "ffmpeg", secret: str = "") -> None:
        super().__init__()
        if secret:
            # The ffmpeg CLI takes an output URL only on its command line, where `ps` shows it.
            raise StreamError(
                "srt:// with a secret (passphrase/streamid) is not supported: ffmpeg would "
                "show it in `ps`; use rtmps:// or an SRT URL without a secret"
            )
        self.url = url
        self._ffmpeg = ffmpeg
        self._proc: subprocess.Popen[bytes] | None = None

    def _open_container(self) -> Any:
        import av

        exe = shutil.which(self._ffmpeg)
        if exe is None:
            raise StreamError("srt:// needs the ffmpeg command (Debian package ffmpeg)")
        sep = "&" if "?" in self.url else "?"
        url = self.url if "mode=" in self.url else f"{self.url}{sep}mode=caller"
        if "linger=" not in url:
            url += "&linger=2"  # live mode drops unsent packets at close without it
        # Start sending at once (no probing delay), so SRT's live pacing sees real time.
        # probe briefly, so sending starts at once (SRT's live mode paces by real time)
        cmd = [exe, "-hide_banner", "-nostats", "-loglevel", "error"]
        cmd += ["-analyzeduration", "200000", "-probesize", "32768"]
        cmd += ["-f", "mpegts", "-i", "pipe:0"]
        cmd += ["-c", "copy", "-f", "mpegts", url]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        stdin = self._proc.stdin
        assert stdin is not None
        # flush each packet to ffmpeg at once: live, not in 32 KiB bursts
        return av.open(
            _PipeWriter(stdin, self._proc),
            "w",
            format="mpegts",
            options={"flush_packets": "1"},
            buffer_size=4096,
        )

    def close(self) -> None:
        super().close()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2.0)

    def abort(self) -> None:
        super().abort()
        if self._proc is not None:
            self._proc.kill()


class _PipeWriter:
    """A write-only file object over the ffmpeg pipe that fails once ffmpeg has exited."""

    def __init__(self, f: IO[bytes], proc: subprocess.Popen[bytes]) -> None:
        self._f, self._proc = f, proc

    def write(self, data: bytes) -> int:
        if self._proc.poll() is not None:
            raise BrokenPipeError(f"ffmpeg exited with {self._proc.returncode}")
        self._f.write(data)
        self._f.flush()
        return len(data)

    def flush(self) -> None:
        self._f.flush()


class MemoryPublisher:
    """A fake endpoint: keeps every packet (tests). ``fail_after`` makes it break."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.packets: list[Packet] = []
        self.fail_after = fail_after
        self.closed = False

    def write(self, packet: Packet) -> None:
        if self.fail_after is not None and len(self.packets) >= self.fail_after:
            raise StreamError("memory publisher: simulated failure")
        self.packets.append(packet)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.fail_after = len(self.packets)


def publisher_for_url(
    url: str, *, ca_file: str = "", timeout: float = 6.0, secret: str = ""
) -> Callable[[], Sink]:
    """A factory of fresh publishers for ``url`` (one per connection), chosen by scheme."""
    scheme = urlsplit(url).scheme
    if scheme in ("rtmp", "rtmps", "rtsp"):
        RelayedPublisher(url)  # validate now, not per connect
        return lambda: RelayedPublisher(url, ca_file=ca_file, timeout=timeout, secret=secret)
    if scheme == "srt":
        needs_secret = bool(secret) and secret in url
        FfmpegSrtPublisher(url, secret=secret if needs_secret else "")
        return lambda: FfmpegSrtPublisher(url, secret=secret if needs_secret else "")
    raise StreamError(
        f"unsupported stream URL scheme {scheme!r} (use rtmp://, rtmps://, rtsp://, srt://)"
    )
