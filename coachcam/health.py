"""Health: the systemd notify protocol, the watchdog, and the state file ``coachcam status`` reads.

The notify protocol is written directly on an ``AF_UNIX`` datagram socket: it is ~20 lines
(``KEY=value`` lines in one datagram to ``$NOTIFY_SOCKET``), so it is not worth a dependency on
python-systemd/libsystemd (which would also need a compiler or an apt package on the robot).
Abstract-namespace sockets (``@name``) are supported. Without ``NOTIFY_SOCKET`` (a laptop, a
test, ``coachcam sim``) every call is a no-op.

``HealthReporter`` is what the daemon's frame loop talks to, once per frame: it pings
``WATCHDOG=1`` only while frames *and* control are really flowing, sends ``STATUS=`` at most once
a second, and writes the state atomically as JSON for ``coachcam status``::

    with HealthReporter.from_env(clock=clock) as health:  # no I/O yet
        ...  # open camera, load model, home servos
        health.ready()  # READY=1
        for frame in frames:  # (a loop that waits on frames, not on sleep)
            ...
            health.frame_done()  # times in ``clock``'s time base; default: now
            health.control_done()  # a servo command went out, or the controller held
            health.update(lambda: Health("following teacher", fps, streaming, pending, servo_ok))
        health.stopping()  # on SIGTERM, before parking and closing
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coachcam.atomic import write_atomic
from coachcam.clock import Clock, MonotonicClock
from coachcam.instance import own_runtime_dir

log = logging.getLogger(__name__)

STATE_VERSION = 2  # 2: people are fields (Person), not text; an optional ``stream`` dict


def _socket_address(value: str) -> str | None:
    """``NOTIFY_SOCKET`` as an ``AF_UNIX`` address: a path, or ``@name`` (abstract namespace)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


class Notifier:
    """Sends ``sd_notify`` datagrams to one socket. No I/O until the first ``send``."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._failed: set[str] = set()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        if not raw:
            return cls(None)
        address = _socket_address(raw)
        if address is None:
            # vsock: and other forms systemd may add are not supported; say so once, carry on.
            log.warning("NOTIFY_SOCKET=%s is not a path or @abstract name; not notifying", raw)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines in one datagram. False (and one warning) if it failed."""
        if self.address is None:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
        except OSError as exc:
            # Never raise into the frame loop: if WATCHDOG=1 cannot be delivered systemd will
            # restart us anyway, which is the right outcome.
            reason = exc.strerror or type(exc).__name__
            if reason not in self._failed:
                self._failed.add(reason)
                log.warning("systemd notify failed: %s", reason)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog timeout in seconds, or None if the watchdog is off or meant for another
    process (``sd_watchdog_enabled`` semantics: ``WATCHDOG_PID``, when set, must be ours)."""
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    wpid = env.get("WATCHDOG_PID", "")
    if wpid:
        try:
            if int(wpid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())


def default_state_file(env: Mapping[str, str] | None = None) -> Path:
    """Where the daemon writes its state: in its runtime directory (``coachcam.instance``:
    ``$RUNTIME_DIRECTORY`` on the robot, tmpfs, so rewriting it every second wears no SD card)."""
    return own_runtime_dir(env).state_file


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` so a reader sees the old or the new file, never half of one.

    0640: ``coachcam status`` by root or a member of the service's group (not by everyone: the
    people in view are no one else's business)."""
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    # No fsync: rewritten every second, on tmpfs on the robot (where fsync does nothing) and
    # worthless after a power cut anyway; elsewhere an fsync a second would only wear the disk.
    write_atomic(path, text, mode=0o640, durable=False)


@dataclass(frozen=True)
class Person:
    """One tracked person, as ``coachcam status`` shows them and ``retarget`` names them."""

    id: int
    teacher: bool  # the one being followed
    pan_deg: float  # bearing from straight ahead
    tilt_deg: float
    posture: str  # "standing", "seated" or "unknown"
    seen_s_ago: float  # >= 0

    @classmethod
    def at(
        cls, id: int, teacher: bool, pan: float, tilt: float, posture: str, seen: float
    ) -> Person:
        """Rounded for the state file; ``seen`` clamped at 0 (a capture timestamp a little
        after the loop's clock reading is not the future) and never -0.0."""
        return cls(
            id, teacher, round(pan, 2), round(tilt, 2), posture, round(max(seen, 0.0), 2) + 0.0
        )


@dataclass(frozen=True)
class Health:
    """What the frame loop knows about itself, as STATUS= and the state file say it."""

    state: str = "starting"  # e.g. "following teacher", "searching", "camera lost"
    fps: float = 0.0
    streaming: bool = False
    segments_pending: int = 0
    servo_ok: bool = True
    people: tuple[Person, ...] = ()  # for `coachcam status` and `coachcam retarget`
    # The stream's own report (stream/ fills it: connected / refused / unreachable / recording
    # failing, seconds since the server confirmed data...); `coachcam status` shows every key.
    stream: Mapping[str, Any] | None = None

    def line(self) -> str:
        """One line for ``STATUS=`` and ``coachcam status``."""
        stream = self.stream  # the stream's own words (stream.pipeline.status_report)
        parts = [
            self.state,
            f"{self.fps:.1f} fps",
            ", ".join(f"{k} {v}" for k, v in stream.items())
            if stream
            else ("streaming" if self.streaming else "not streaming"),
        ]
        n = self.segments_pending
        parts.append(f"{n} segment{'' if n == 1 else 's'} pending")
        if not self.servo_ok:
            parts.append("servo fault")
        return _one_line(", ".join(parts))


class HealthReporter:
    """Turns per-frame facts into systemd notifications and the state file.

    The loop calls ``frame_done(t)`` when a frame was captured and processed, ``control_done(t)``
    when a servo command went out (or the controller decided to hold), and ``update(health)``
    once per frame. ``WATCHDOG=1`` is sent only if both happened within ``max_gap_s``: a loop that
    spins without frames, or with frames but no control, stops feeding the watchdog and systemd
    restarts the service; a hung loop calls nothing and so pings nothing.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        state_file: Path | None = None,
        watchdog_s: float | None = None,
        max_gap_s: float | None = None,
        status_every_s: float = 1.0,
        wall: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        """``watchdog_s`` is systemd's timeout (``watchdog_interval()``; None = no watchdog).
        Pings go out every quarter of it; ``max_gap_s`` defaults to half of it (2 s without
        a watchdog, which then only decides the ``flowing`` flag in the state file)."""
        self.clock = clock if clock is not None else MonotonicClock()
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.state_file = state_file
        self.watchdog_s = watchdog_s
        if max_gap_s is None:
            max_gap_s = watchdog_s / 2 if watchdog_s else 2.0
        self.max_gap_s = max_gap_s
        self.ping_every_s = watchdog_s / 4 if watchdog_s else None
        self.status_every_s = status_every_s
        self.wall = wall
        self.pid = pid
        self.health = Health()
        self.is_ready = False
        self.ready_at: float | None = None
        self.is_stopping = False
        self.started_wall: float | None = None
        self.last_frame: float | None = None
        self.last_control: float | None = None
        self.last_ping: float | None = None
        self.last_status: float | None = None
        self.last_status_text: str | None = None
        self._write_failed = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> HealthReporter:
        """Notifier, watchdog timeout and state file from systemd's environment."""
        env = os.environ if env is None else env
        kwargs.setdefault("notifier", Notifier.from_env(env))
        kwargs.setdefault("watchdog_s", watchdog_interval(env))
        kwargs.setdefault("state_file", default_state_file(env))
        return cls(**kwargs)

    # -- facts from the loop -------------------------------------------------------------
    def frame_done(self, t: float | None = None) -> None:
        self.last_frame = self.clock.now() if t is None else t

    def control_done(self, t: float | None = None) -> None:
        self.last_control = self.clock.now() if t is None else t

    def flowing(self, now: float | None = None) -> bool:
        """Frames and control both happened within ``max_gap_s``."""
        now = self.clock.now() if now is None else now
        return all(
            last is not None and now - last <= self.max_gap_s
            for last in (self.last_frame, self.last_control)
        )

    def stalled(self, now: float | None = None) -> bool:
        """Ready, not stopping, and frames or control not flowing — except in the first
        ``max_gap_s`` after READY before anything flowed: that is still starting (status
        right after ``systemctl start`` said STALLED while systemd said starting)."""
        now = self.clock.now() if now is None else now
        if not self.is_ready or self.is_stopping or self.flowing(now):
            return False
        never = self.last_frame is None or self.last_control is None
        return not (never and self.ready_at is not None and now - self.ready_at <= self.max_gap_s)

    def update(self, health: Health | Callable[[], Health] | None = None) -> None:
        """Once per frame: maybe ping the watchdog, maybe send STATUS= and write the state.

        ``health`` may be a function that makes it: it is called only when STATUS= and the
        state file are due (every ``status_every_s``), so the loop does not build every frame
        what is published once a second."""
        if isinstance(health, Health):
            self.health = health
        now = self.clock.now()
        if (
            self.ping_every_s is not None
            and self.is_ready
            and not self.is_stopping
            and self.flowing(now)
            and (self.last_ping is None or now - self.last_ping >= self.ping_every_s)
        ):
            self.notifier.send(WATCHDOG=1)
            self.last_ping = now
        if self.last_status is None or now - self.last_status >= self.status_every_s:
            if callable(health):
                self.health = health()
            self._publish(now)

    # -- life cycle ------------------------------------------------------------------------
    def ready(self, health: Health | None = None) -> None:
        """After the camera, model and servos are up: ``READY=1`` with a first STATUS=."""
        if health is not None:
            self.health = health
        self.is_ready = True
        if self.started_wall is None:
            self.started_wall = self.wall()
        now = self.clock.now()
        if self.ready_at is None:
            self.ready_at = now
        self.notifier.send(READY=1, STATUS=self.health.line())
        self.last_status_text = self.health.line()
        self.last_status = now
        self._write(now)

    def stopping(self, reason: str = "stopping") -> None:
        """On SIGTERM/SIGINT: ``STOPPING=1``; the state file says so at once."""
        self.is_stopping = True
        self.health = Health(
            state=reason,
            fps=0.0,
            streaming=False,
            segments_pending=self.health.segments_pending,
            servo_ok=self.health.servo_ok,
        )
        now = self.clock.now()
        self.notifier.send(STOPPING=1, STATUS=self.health.line())
        self.last_status = now
        self._write(now)

    def close(self) -> None:
        self.notifier.close()

    def __enter__(self) -> HealthReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output ----------------------------------------------------------------------------
    def _publish(self, now: float) -> None:
        line = self.health.line()
        if self.stalled(now):
            line = f"{line} (stalled)"
        if line != self.last_status_text:
            self.notifier.send(STATUS=line)
            self.last_status_text = line
        self.last_status = now
        self._write(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The state file's content."""
        now = self.clock.now() if now is None else now

        def age(last: float | None) -> float | None:
            return None if last is None else round(now - last, 3)

        return {
            "version": STATE_VERSION,
            "pid": os.getpid() if self.pid is None else self.pid,
            **asdict(self.health),
            "status": self.health.line(),
            "ready": self.is_ready,
            "stopping": self.is_stopping,
            "flowing": self.flowing(now),
            "stalled": self.stalled(now),
            "last_frame_age_s": age(self.last_frame),
            "last_control_age_s": age(self.last_control),
            "watchdog_s": self.watchdog_s,
            "write_every_s": self.status_every_s,
            "started": self.started_wall,
            "updated": self.wall(),
        }

    def _write(self, now: float) -> None:
        if self.state_file is None:
            return
        try:
            write_json_atomic(self.state_file, self.snapshot(now))
        except OSError as exc:
            if not self._write_failed:  # once: a read-only disk must not flood the journal
                self._write_failed = True
                log.warning("cannot write state file %s: %s", self.state_file, exc.strerror)
            return
        self._write_failed = False
