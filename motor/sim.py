"""A simulated hobby servo pair that behaves like the real thing.

Models what makes real servos hard to control: a speed limit (default 60 deg per 0.15 s),
acceleration, a dead band, command quantisation, command latency and noisy position read-back.
It records its true position over time (``history``) so tests can assert on what it did.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from coachcam.clock import Clock
from coachcam.errors import ServosClosed


@dataclass
class _Axis:
    pos: float
    vel: float = 0.0
    target: float = 0.0


@dataclass
class SimServoParams:
    speed_deg_per_s: float = 400.0
    accel_deg_s2: float = 4000.0
    dead_band_deg: float = 0.1
    quantum_deg: float = 0.09
    latency_ms: float = 20.0
    readback_noise_deg: float = 0.1


@dataclass
class SimServos:
    """Simulated pan and tilt servos driven by an injected clock."""

    clock: Clock
    params: SimServoParams = field(default_factory=SimServoParams)
    start: tuple[float, float] = (0.0, 0.0)
    seed: int = 0
    name: str = "sim"
    step_s: float = 0.002
    park_settle_s: float = 0.5  # ``close(park=True)``: time given to reach home

    def __post_init__(self) -> None:
        self._axes = [
            _Axis(self.start[0], target=self.start[0]),
            _Axis(self.start[1], target=self.start[1]),
        ]
        self._pending: deque[tuple[float, float, float]] = deque()  # (t_effective, pan, tilt)
        self._t = self.clock.now()
        self._rng = np.random.default_rng(self.seed)
        self.history: deque[tuple[float, float, float]] = deque([(self._t, *self.start)])
        self.commands: deque[tuple[float, float, float]] = deque()
        self.closed = False

    def keep_last(self, n: int) -> None:
        """Keep only the newest ``n`` records of position and commands (a daemon runs for
        months and reads none; ``coachcam sim``'s report reads them all)."""
        self.history = deque(self.history, maxlen=n)
        self.commands = deque(self.commands, maxlen=n)

    # -- ServoBackend ---------------------------------------------------------------------
    def open(self) -> SimServos:
        if self.closed:
            raise ServosClosed("simulated servos are closed")
        return self

    def write(self, pan_deg: float, tilt_deg: float) -> None:
        if self.closed:
            raise ServosClosed("simulated servos are closed")
        now = self.clock.now()
        self._advance(now)
        q = self.params.quantum_deg
        if q > 0:
            pan_deg, tilt_deg = round(pan_deg / q) * q, round(tilt_deg / q) * q
        self.commands.append((now, pan_deg, tilt_deg))
        self._pending.append((now + self.params.latency_ms / 1000.0, pan_deg, tilt_deg))

    def read(self) -> tuple[float, float] | None:
        self._advance(self.clock.now())
        n = self.params.readback_noise_deg
        noise = self._rng.normal(0.0, n, 2) if n > 0 else (0.0, 0.0)
        return self._axes[0].pos + float(noise[0]), self._axes[1].pos + float(noise[1])

    def release(self) -> None:
        """Go limp: commands not yet acted on are dropped and each axis stops where it is."""
        self._advance(self.clock.now())
        self._pending.clear()
        for ax in self._axes:
            ax.target, ax.vel = ax.pos, 0.0

    def close(self, park: bool = True) -> None:
        """``park``: command ``start`` (home) and give it ``park_settle_s``; safe twice."""
        if self.closed:
            return
        if park and self.commands:
            self.write(*self.start)
            self.clock.wait(self.park_settle_s)
        self._advance(self.clock.now())
        self.closed = True

    # -- truth for tests and reports ------------------------------------------------------
    def true_position(self) -> tuple[float, float]:
        self._advance(self.clock.now())
        return self._axes[0].pos, self._axes[1].pos

    # -- physics --------------------------------------------------------------------------
    def _advance(self, t: float) -> None:
        while self._t < t - 1e-12:
            dt = min(self.step_s, t - self._t)
            self._t += dt
            while self._pending and self._pending[0][0] <= self._t:
                _, p, tl = self._pending.popleft()
                self._axes[0].target, self._axes[1].target = p, tl
            for ax in self._axes:
                self._step_axis(ax, dt)
        self.history.append((self._t, self._axes[0].pos, self._axes[1].pos))

    def _step_axis(self, ax: _Axis, dt: float) -> None:
        p = self.params
        err = ax.target - ax.pos
        if err * ax.vel < 0:
            # Moving away from a new target: a hobby servo's stiff position loop brakes hard, so
            # (as in the real thing) it never swings past where it was commanded.
            ax.vel = 0.0
        if abs(err) <= p.dead_band_deg and abs(ax.vel) < 1e-9:
            return
        # Fastest approach that can still stop in time: v = sqrt(2 a |err|), capped by speed.
        v_want = math.copysign(
            min(p.speed_deg_per_s, math.sqrt(2.0 * p.accel_deg_s2 * abs(err))), err
        )
        dv = max(-p.accel_deg_s2 * dt, min(p.accel_deg_s2 * dt, v_want - ax.vel))
        ax.vel += dv
        step = ax.vel * dt
        if abs(step) >= abs(err) and math.copysign(1.0, step) == math.copysign(1.0, err):
            ax.pos, ax.vel = ax.target, 0.0
        else:
            ax.pos += step
