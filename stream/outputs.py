"""Outputs fed by the encoder, picamera2-style: ``outputframe(frame, keyframe, timestamp)``.

The encoder runs in the capture loop, so an output must never block it. ``ThreadedOutput`` puts
each packet on a bounded queue and a thread of its own writes it to a ``Sink`` (a network
publisher or the segment recorder). A sink that fails is closed, the output marks itself dead,
drops packets while it waits (backoff doubling from ``backoff_min`` to ``backoff_max``) and
resumes on the next keyframe. A full queue also drops until the next keyframe, so a decoder
never sees a P-frame whose reference was lost.

What the endpoint *confirms* (a ``Confirmer``) is recorded per connection ("session"), which is
what backfill works from; a session whose confirmation stops advancing while packets keep
going out is a stalled endpoint, and so is a write that blocks longer than ``stall_timeout``.

``state``/``reason`` say what is really happening (``Streamer.status()``): a connection counts as
*connected* only once the server accepted it (a sink's ``accepted``: for RTMP/RTSP the server's
answer to publish; sinks that cannot tell count as accepted once a write went through) or the
``Confirmer`` confirmed data; a failure is *refused* (``PublishRefused``), *unreachable*
(``EndpointUnreachable``) or *down*, with a short reason (``failure_reason``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from coachcam.clock import Clock, MonotonicClock
from coachcam.errors import StreamError

log = logging.getLogger(__name__)

# A server that refused the publish (a wrong key) will not change its mind in a second, and
# every try starts a publishing process (a Python + PyAV start, costly on a Pi): retry slowly.
REFUSED_RETRY_S = 10.0


class OutputFailure(StreamError):
    """A failure with a few words for ``coachcam status`` (``reason``) beside its message."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class PublishRefused(OutputFailure):
    """The server answered the publish request with no (a wrong stream key, already live...)."""


class EndpointUnreachable(OutputFailure):
    """No connection to the server: connection refused, timed out, unknown host, TLS failed."""


class NoRoom(OutputFailure):
    """The recording has no room; ``paused`` when only the free-space floor stops it."""

    def __init__(self, message: str, reason: str, *, paused: bool) -> None:
        super().__init__(message, reason)
        self.paused = paused


_ERRNO_WORDS = {
    errno.EROFS: "read-only",
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk full",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection lost",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def failure_reason(exc: BaseException) -> str:
    """A few words for ``coachcam status``: the first cause in ``exc``'s chain that has a name."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutputFailure) and seen.reason:
            return seen.reason
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not verified: {seen.verify_message}"
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Packet:
    """One encoded access unit (Annex B); ``timestamp_us`` is capture time on the stream clock."""

    data: bytes
    keyframe: bool
    timestamp_us: int


class Output(Protocol):
    def start(self) -> None: ...

    def outputframe(
        self, frame: bytes, keyframe: bool = True, timestamp: int | None = None
    ) -> None:
        """Take one encoded frame; must return at once."""
        ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where a ``ThreadedOutput`` writes. May block and may raise; the first write is a keyframe."""

    def write(self, packet: Packet) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None:
        """Called from another thread: make a blocked ``write`` fail soon."""
        ...


class Confirmer(Protocol):
    def received_until_us(self) -> int | None:
        """Latest stream timestamp the endpoint confirms receiving; ``None`` = unknown now."""
        ...


@dataclass
class Session:
    """One connection to a sink: what was sent and what the endpoint confirmed."""

    first_us: int
    last_sent_us: int
    confirmed_us: int | None = None
    ended: bool = False
    reason: str = ""
    accepted: bool = False  # the server accepted this connection (see the module docstring)


@dataclass
class OutputStats:
    sent: int = 0
    dropped: int = 0
    failures: int = 0
    connects: int = 0
    stalls: int = 0
    states: list[tuple[float, str]] = field(default_factory=list)


class MemoryOutput:
    """A fake output that records what it was given (tests)."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True

    def outputframe(
        self, frame: bytes, keyframe: bool = True, timestamp: int | None = None
    ) -> None:
        self.packets.append(Packet(bytes(frame), keyframe, int(timestamp or 0)))

    def close(self) -> None:
        self.closed = True


_STOP = object()


class ThreadedOutput:
    """A queue and a thread in front of a ``Sink``; see the module docstring."""

    def __init__(
        self,
        name: str,
        opener: Callable[[], Sink],
        *,
        clock: Clock | None = None,
        queue_packets: int = 150,
        backoff_min: float = 0.25,
        backoff_max: float = 1.0,
        stall_timeout: float = 6.0,
        confirmer: Confirmer | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.name = name
        self._opener = opener
        self._clock = clock or MonotonicClock()
        self._q: queue.Queue[object] = queue.Queue(maxsize=queue_packets)
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._stall_timeout = stall_timeout
        self._confirmer = confirmer
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sink: Sink | None = None
        self._sessions: list[Session] = []
        self._gap = True  # producer side: drop until a keyframe (start, or after an overflow)
        self._write_since: float | None = None
        self._down_since: float | None = None
        self._stall_why = ""
        self._progress_t = 0.0
        self.stats = OutputStats()
        # what is really happening, for status: "connecting" until the first verdict, then
        # "connected" / "refused" / "unreachable" / "down" (+ ``reason``)
        self.state = "connecting"
        self.reason = ""
        self.failed_paused = False  # the last failure was a NoRoom pause (recording)
        self.confirmed_at: float | None = None  # the Confirmer last showed new data

    # -- producer side (the capture loop) ---------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._run, name=f"out-{self.name}", daemon=True)]
        self._threads.append(
            threading.Thread(target=self._monitor, name=f"mon-{self.name}", daemon=True)
        )
        for t in self._threads:
            t.start()

    def outputframe(
        self, frame: bytes, keyframe: bool = True, timestamp: int | None = None
    ) -> None:
        if self._gap and not keyframe:
            self.stats.dropped += 1
            return
        try:
            self._q.put_nowait(Packet(bytes(frame), keyframe, int(timestamp or 0)))
            self._gap = False
        except queue.Full:
            self.stats.dropped += 1
            self._gap = True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout``), then stop. Safe twice."""
        if self._threads:
            writer, monitor = self._threads
            with contextlib.suppress(queue.Full):
                self._q.put(_STOP, timeout=timeout)  # behind the queued packets
            writer.join(timeout)
            self._stop.set()
            if writer.is_alive():
                log.warning("%s: writer stuck for %.1f s; aborting its sink", self.name, timeout)
                sink = self._sink
                if sink is not None:
                    sink.abort()
                writer.join(timeout)
            monitor.join(timeout)
            if writer.is_alive():
                # Closing the sink here would race the write it is stuck in (a recording
                # segment closed under its writer came out empty); the writer closes it itself
                # when that write returns, since ``_stop`` is set.
                log.error("%s: writer still busy; it closes its sink when it returns", self.name)
                self._threads = []
                return
        self._stop.set()
        self._threads = []
        self._close_sink("closed")

    def __enter__(self) -> ThreadedOutput:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what happened ---------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        with self._lock:
            return [Session(**vars(s)) for s in self._sessions]

    def confirmed(self) -> list[tuple[int, int]]:
        """Stream-time spans (µs) the endpoint confirmed receiving, one per session.

        Without a confirmer the endpoint's word is not available; then a span counts only up
        to ``stall_timeout`` before the last packet written (what kernel buffers may still hold
        when a connection dies silently).
        """
        tail = int(self._stall_timeout * 1e6)
        out = []
        with self._lock:
            for s in self._sessions:
                if self._confirmer is not None:
                    end = s.confirmed_us
                else:  # never accepted = nothing reached the server
                    end = s.last_sent_us - tail if s.accepted else None
                if end is not None and end > s.first_us:
                    out.append((s.first_us, end))
        return out

    def status(self) -> dict[str, object]:
        """``state``, ``reason``, seconds since the server last confirmed data (or ``None``)."""
        now = self._clock.now()
        with self._lock:  # one verdict: the writer and monitor threads change them together
            state, reason, paused, conf = (
                self.state, self.reason, self.failed_paused, self.confirmed_at
            )  # fmt: skip
        return {
            "state": state,
            "reason": reason,
            "paused": paused,
            "confirmed_ago_s": None if conf is None else round(max(0.0, now - conf), 1),
        }

    # -- writer thread ---------------------------------------------------------------------
    def _state(self, state: str) -> None:
        self.stats.states.append((self._clock.now(), state))

    def _run(self) -> None:
        backoff = self._backoff_min
        next_try = 0.0
        need_key = True
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _STOP:
                break
            assert isinstance(item, Packet)
            if need_key and not item.keyframe:
                self.stats.dropped += 1
                continue
            if self._sink is None:
                if self._clock.now() < next_try:
                    self.stats.dropped += 1
                    continue
                try:
                    sink = self._opener()
                except Exception as exc:  # any failure to connect: back off, keep the loop alive
                    self._fail(f"connect failed: {exc}", exc)
                    next_try, backoff = (
                        self._clock.now() + backoff,
                        min(2 * backoff, self._backoff_max),
                    )
                    continue
                with self._lock:
                    self._sink = sink
                    self._sessions.append(Session(item.timestamp_us, item.timestamp_us))
                    self._progress_t = self._clock.now()
                log.debug("%s: opened; resuming at %.3f s", self.name, item.timestamp_us / 1e6)
            try:
                self._write_since = self._clock.now()
                self._sink.write(item)
            except Exception as exc:  # a broken output marks itself dead; never raise upward
                self._write_since = None
                self.stats.dropped += 1
                self._close_sink(f"write failed: {exc}")
                self._fail(f"write failed: {exc}", exc)
                need_key = True
                wait = max(backoff, REFUSED_RETRY_S) if self.state == "refused" else backoff
                next_try, backoff = self._clock.now() + wait, min(2 * backoff, self._backoff_max)
                continue
            self._write_since = None
            need_key = False
            backoff = self._backoff_min
            self.stats.sent += 1
            with self._lock:
                self._sessions[-1].last_sent_us = item.timestamp_us
            if getattr(self._sink, "accepted", True):
                self._accepted()
        self._close_sink("stopped")

    def _accepted(self) -> None:
        """The server accepted the current connection (once per connection). Called by the
        writer and the monitor thread: the check and the verdict are one step under the lock,
        so a failure the writer records just after (``_close_sink``, then ``_fail``) is never
        overwritten by a stale "connected"."""
        with self._lock:
            if not self._sessions or self._sessions[-1].accepted or self._sink is None:
                return  # every packet after the first comes here: no more than this check
            now = self._clock.now()
            s = self._sessions[-1]
            s.accepted = True
            self.stats.connects += 1
            self.state, self.reason, self.failed_paused = "connected", "", False
            self._state("connected")
            down_since, self._down_since = self._down_since, None
        if down_since is not None:
            log.warning(
                "%s: back after %.1f s, from %.3f s on the stream clock",
                self.name,
                now - down_since,
                s.first_us / 1e6,
            )

    def _fail(self, why: str, exc: BaseException | None = None) -> None:
        self.stats.failures += 1
        self._state("dead")
        state = "down"
        if isinstance(exc, PublishRefused):
            state = "refused"
        elif isinstance(exc, EndpointUnreachable):
            state = "unreachable"
        reason = failure_reason(exc) if exc is not None else why
        if self._stall_why:
            state, reason, self._stall_why = "down", f"stalled: {self._stall_why}", ""
        with self._lock:  # against the monitor thread's _accepted and status()
            changed = (state, reason) != (self.state, self.reason)
            self.state, self.reason = state, reason
            self.failed_paused = isinstance(exc, NoRoom) and exc.paused
            first = self._down_since is None
            if first:
                self._down_since = self._clock.now()
        if first:  # one warning per outage (and per new reason), not per retry
            log.warning("%s: output dead (%s); reconnecting with backoff", self.name, why)
        elif changed:
            log.warning("%s: still down, now %s (%s)", self.name, state, why)
        else:
            log.debug("%s: still down (%s)", self.name, why)

    def _close_sink(self, reason: str) -> None:
        with self._lock:
            sink, self._sink = self._sink, None
            if sink is not None and self._sessions:
                self._sessions[-1].ended = True
                self._sessions[-1].reason = reason
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:  # closing a broken connection may fail too; it is gone
                log.debug("%s: close: %s", self.name, exc)

    # -- monitor thread: confirmation and stalls -------------------------------------------
    def _monitor(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.poll()

    def poll(self) -> None:
        """Read the endpoint's confirmation and abort a stalled connection (monitor thread)."""
        now = self._clock.now()
        since = self._write_since
        if since is not None and now - since > self._stall_timeout:
            self._stalled(f"a write blocked {now - since:.1f} s")
            return
        if self._confirmer is None or self._sink is None:
            return
        try:
            until = self._confirmer.received_until_us()
        except Exception as exc:  # an unreachable stat page is "nothing confirmed", not a crash
            log.debug("%s: confirmer: %s", self.name, exc)
            until = None
        with self._lock:
            if not self._sessions or self._sink is None:
                return
            s = self._sessions[-1]
            confirmed = until is not None and until >= s.first_us and until > (s.confirmed_us or -1)
            if confirmed:
                s.confirmed_us = until
                self._progress_t = now
                self.confirmed_at = now
            behind = s.last_sent_us > (s.confirmed_us if s.confirmed_us is not None else -1)
            stalled = behind and now - self._progress_t > self._stall_timeout
        if confirmed:
            self._accepted()  # data on the server's stat page: accepted, whatever the sink says
        else:
            sink = self._sink
            if sink is not None and getattr(sink, "accepted", False):
                self._accepted()  # the answer came while no packet was being written
        if stalled:
            self._stalled(f"endpoint confirmed nothing new for {now - self._progress_t:.1f} s")

    def _stalled(self, why: str) -> None:
        sink = self._sink
        if sink is None:
            return
        self.stats.stalls += 1
        self._stall_why = why
        self._state("stalled")
        log.warning("%s: endpoint stalled (%s); dropping the connection", self.name, why)
        self._progress_t = self._clock.now()
        self._write_since = None
        sink.abort()
