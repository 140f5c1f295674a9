"""The servo driver boundary: a small backend interface and the head that enforces limits.

``ServoBackend`` is what each driver implements (sim, gpio, serial). ``PanTiltHead`` wraps one and
is the only way the rest of coachcam moves the camera: every command is clamped to the calibrated
limits here, whatever the controller asks, non-finite commands are ignored, no command moves
further from the last one than the speed limit allows in the time since (so nothing the caller
does after a pause, a park or a fault makes the head jump), and the head parks on close (it is a
context manager; ``close()`` is safe twice).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from typing import Protocol

from coachcam.clock import Clock
from coachcam.errors import DeviceClosed
from motor.config import AxisConfig

log = logging.getLogger(__name__)


class ServoBackend(Protocol):
    """A pan/tilt servo driver (sim, gpio, serial; ``motor.drivers.make_backend`` picks one).
    Receives angles already inside the calibrated limits.

    The constructor does no I/O. ``open()`` takes the hardware (idempotent; the first ``write``
    opens, too). ``release()`` stops driving: the servos go limp where they are, and the next
    ``write`` takes control again. ``close(park=True)`` moves home first, for a driver used on
    its own; behind a ``PanTiltHead`` the head parks and closes with ``park=False``. ``close`` is
    safe twice; a closed driver stays closed (``write``/``open`` raise ``ServosClosed``).
    """

    name: str

    def open(self) -> object: ...

    def write(self, pan_deg: float, tilt_deg: float) -> None: ...

    def read(self) -> tuple[float, float] | None:
        """Measured position, or ``None`` where the hardware has no read-back."""
        ...

    def release(self) -> None: ...

    def close(self, park: bool = True) -> None: ...


def clamp(value: float, axis: AxisConfig) -> float:
    return min(axis.max_deg, max(axis.min_deg, value))


class PanTiltHead:
    """Limits, parking and a pointing history over a ``ServoBackend``."""

    HISTORY_S = 5.0
    # The time since the last command counts for at most this much: after a pause (camera lost,
    # servo fault, park) a new command is the first step of a ramp, not a jump. A frame's worth
    # at 10 fps: 12 deg at 120 deg/s. The loop may run slower (the controller takes frames up to
    # 0.5 s apart, ``controller.MAX_DT_S``); below 10 fps this, not the speed limit, bounds how
    # fast the head turns (12 deg a command) and the controller resyncs to where the head is.
    MAX_SLEW_DT_S = 0.1

    def __init__(
        self,
        backend: ServoBackend,
        pan: AxisConfig,
        tilt: AxisConfig,
        clock: Clock,
        park_speed_deg_s: float = 30.0,
        step_s: float = 0.02,
        max_speed_deg_s: float = 120.0,
    ) -> None:
        self.backend = backend
        self.pan_axis = pan
        self.tilt_axis = tilt
        self.clock = clock
        self.park_speed = park_speed_deg_s
        self.max_speed = max_speed_deg_s
        self.t_commanded: float | None = None  # when ``commanded`` was sent
        self.step_s = step_s
        self.commanded: tuple[float, float] | None = None
        self._hist_t: deque[float] = deque()
        self._hist_pos: deque[tuple[float, float]] = deque()
        self.closed = False

    # -- commands ---------------------------------------------------------------------------
    def command(self, pan_deg: float, tilt_deg: float) -> tuple[float, float]:
        """Send a position command, clamped to the limits and to what the speed limit allows
        since the last command; returns what was sent.

        The first command of a head that has sent none is only clamped: nothing is known of
        where the servos are (``soft_start`` is the gentle way to begin).
        """
        if self.closed:
            raise DeviceClosed("PanTiltHead is closed")
        now = self.clock.now()
        last = self.commanded or (self.pan_axis.home_deg, self.tilt_axis.home_deg)
        pan = clamp(pan_deg, self.pan_axis) if math.isfinite(pan_deg) else last[0]
        tilt = clamp(tilt_deg, self.tilt_axis) if math.isfinite(tilt_deg) else last[1]
        if self.commanded is not None and self.t_commanded is not None:
            dt = min(max(0.0, now - self.t_commanded), self.MAX_SLEW_DT_S)
            step = self.max_speed * dt
            pan = last[0] + min(step, max(-step, pan - last[0]))
            tilt = last[1] + min(step, max(-step, tilt - last[1]))
        self.backend.write(pan, tilt)
        self.commanded = (pan, tilt)
        self.t_commanded = now
        return pan, tilt

    def move_smoothly(
        self, pan_deg: float, tilt_deg: float, speed_deg_s: float | None = None
    ) -> None:
        """Step to a position at a gentle speed (soft start, parking, calibration moves); never
        faster than the speed limit."""
        speed = min(speed_deg_s or self.park_speed, self.max_speed)
        # From the last command (the speed limit counts from there), else where the servos are.
        start = self.commanded or self.read_position()
        if start is None:
            start = (self.pan_axis.home_deg, self.tilt_axis.home_deg)
        if self.t_commanded is not None:  # a full step's time since the last command
            self.clock.wait(max(0.0, self.t_commanded + self.step_s - self.clock.now()))
        target = (clamp(pan_deg, self.pan_axis), clamp(tilt_deg, self.tilt_axis))
        dist = max(abs(target[0] - start[0]), abs(target[1] - start[1]))
        steps = max(1, math.ceil(dist / (speed * self.step_s)))
        for i in range(1, steps + 1):
            f = i / steps
            self.command(
                start[0] + f * (target[0] - start[0]), start[1] + f * (target[1] - start[1])
            )
            self.clock.wait(self.step_s)

    def soft_start(self) -> None:
        self.move_smoothly(self.pan_axis.home_deg, self.tilt_axis.home_deg)

    def park(self) -> None:
        if self.closed:
            return
        log.info(
            "parking servos at pan %.1f, tilt %.1f", self.pan_axis.home_deg, self.tilt_axis.home_deg
        )
        self.move_smoothly(self.pan_axis.home_deg, self.tilt_axis.home_deg)

    # -- read-back and history --------------------------------------------------------------
    def read_position(self) -> tuple[float, float] | None:
        return self.backend.read()

    def sample(self) -> tuple[float, float] | None:
        """Record where the head is now (read-back, else the last command) for ``pointing_at``."""
        pos = self.read_position() or self.commanded
        if pos is not None:
            t = self.clock.now()
            self._hist_t.append(t)
            self._hist_pos.append(pos)
            while self._hist_t and self._hist_t[0] < t - self.HISTORY_S:
                self._hist_t.popleft()
                self._hist_pos.popleft()
        return pos

    def pointing_at(self, t: float) -> tuple[float, float]:
        """Where the camera pointed at time ``t`` (interpolated from the recorded history)."""
        if not self._hist_t:
            return self.commanded or (self.pan_axis.home_deg, self.tilt_axis.home_deg)
        ts = self._hist_t
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return self._hist_pos[0]
        if i >= len(ts):
            return self._hist_pos[-1]
        t0, t1 = ts[i - 1], ts[i]
        p0, p1 = self._hist_pos[i - 1], self._hist_pos[i]
        f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return (p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1]))

    # -- lifecycle --------------------------------------------------------------------------
    def close(self, park: bool = True) -> None:
        """Park, then close the driver; ``park=False``: let go where it is (stopped by a
        person mid-move). Safe twice; a closed head raises ``DeviceClosed`` on a command."""
        if self.closed:
            return
        done = False
        try:
            if park:
                self.park()  # parking has one owner: the head, which knows the speed limit
            else:
                self.backend.release()
            done = True
        except Exception:  # best effort on the way out; the backend still closes
            log.exception("could not %s the servos", "park" if park else "release")
        finally:
            self.closed = True
            # the driver's own park is the fallback when the head's failed (never left mid-move)
            self.backend.close(park=park and not done)

    def __enter__(self) -> PanTiltHead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
