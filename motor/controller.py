"""Pointing control: where the camera should point → a smooth, bounded position command.

``RoomController`` works in room angles with latency compensation (DESIGN.md, "Control"): the
tracker's aim is a bearing stamped with its capture time plus a velocity; the controller
predicts it ahead to when the command will take effect, holds still inside a dead zone (with
hysteresis, so a standing teacher never makes it hunt), adds a little lead room in the walking
direction, and moves with velocity feed-forward plus a PID correction (simple-pid) under
velocity and acceleration limits, like a human operator: smooth, rarely reversing.

``NaiveController`` is the hobby-tracker baseline for benchmarks: PID on the pixel error of the
newest detection, no latency compensation, no dead zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from simple_pid import PID

from coachcam.geometry import Intrinsics
from coachcam.values import Aim
from motor.config import AxisConfig, ControlConfig, MotorConfig

RESETTLE_S = 1.0  # after a stop, the dead zone is doubled for this long
# A longer time between two updates is an interruption (camera lost, servo fault, park), not a
# frame: the controller resumes from where the head is instead of integrating over the gap.
# 0.5 s = a frame at the slowest rate the loop is meant to run at (2 fps).
MAX_DT_S = 0.5
# The head is further than this from where the controller last put it (the head's own speed
# limit held a command back, or something else moved it): carry on from where the head is.
RESYNC_DEG = 1.0


class Controller(Protocol):
    def update(self, now: float, aim: Aim, current: tuple[float, float]) -> tuple[float, float]:
        """The next position command (pan, tilt) in degrees; ``current`` is where the head was
        last commanded."""
        ...

    def reset(self, now: float, current: tuple[float, float]) -> None:
        """Control was interrupted: resume from ``current`` at rest, without a jump."""
        ...


@dataclass
class _AxisState:
    pos: float
    vel: float = 0.0
    moving: bool = False
    pid: PID | None = None
    stopped_at: float = -1e9


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass
class RoomController:
    cfg: ControlConfig
    pan_axis: AxisConfig
    tilt_axis: AxisConfig
    search_speed_deg_s: float = 15.0
    park_speed_deg_s: float = 30.0
    _axes: list[_AxisState] = field(default_factory=list)
    _t: float | None = None

    def reset(self, now: float, current: tuple[float, float]) -> None:
        """Resume bumplessly from ``current``: at rest there, nothing carried over from before
        the interruption (simple-pid's ``set_auto_mode(True, last_output=...)``)."""
        axes_cfg = (self.pan_axis, self.tilt_axis)
        if not self._axes:
            for _ in axes_cfg:
                pid = PID(self.cfg.kp, self.cfg.ki, self.cfg.kd, setpoint=0.0, sample_time=None)
                lim = self.cfg.max_speed_deg_s
                pid.output_limits = (-lim, lim)  # also clamps the integral (anti-windup)
                self._axes.append(_AxisState(pos=0.0, pid=pid))
        for ax, pos, a in zip(self._axes, current, axes_cfg, strict=True):
            ax.pos = _clip(pos, a.min_deg, a.max_deg) if math.isfinite(pos) else a.home_deg
            ax.vel, ax.moving, ax.stopped_at = 0.0, False, -1e9
            assert ax.pid is not None
            # Back to automatic from rest: the correction (a velocity) restarts at 0.
            ax.pid.set_auto_mode(False)
            ax.pid.set_auto_mode(True, last_output=0.0)
        self._t = now

    def update(self, now: float, aim: Aim, current: tuple[float, float]) -> tuple[float, float]:
        if self._t is None or not 0.0 <= now - self._t <= MAX_DT_S:
            self.reset(now, current)  # first call, or an interruption rather than a frame
        assert self._t is not None
        axes_cfg = (self.pan_axis, self.tilt_axis)
        for ax, cur, a in zip(self._axes, current, axes_cfg, strict=True):
            # ax.pos is the last command returned
            if math.isfinite(cur) and abs(cur - ax.pos) > RESYNC_DEG:
                ax.pos = _clip(cur, a.min_deg, a.max_deg)  # the motion itself carries on
        dt = now - self._t
        self._t = now
        c = self.cfg
        t_eff = now + c.actuation_latency_ms / 1000.0
        if aim.mode in ("follow", "coast"):
            horizon = (t_eff - aim.t_ref) * c.predict_fraction
            # A still teacher: no prediction (their velocity is only noise) and no feed-forward.
            vels = [0.0, 0.0] if aim.still else [aim.vel_pan, aim.vel_tilt]
            targets = [aim.pan + vels[0] * horizon, aim.tilt + vels[1] * horizon]
            lead = _clip(vels[0] * c.lead_s, -c.max_lead_deg, c.max_lead_deg)
            targets[0] += lead
            vmax = c.max_speed_deg_s
            dead = c.still_dead_zone_deg if aim.still else c.dead_zone_deg
        elif aim.mode == "search" or (aim.mode == "idle" and aim.pan != self.pan_axis.home_deg):
            targets, vels, vmax, dead = (
                [aim.pan, aim.tilt],
                [0.0, 0.0],
                self.search_speed_deg_s,
                0.0,
            )
        elif aim.mode == "home":
            targets = [self.pan_axis.home_deg, self.tilt_axis.home_deg]
            vels, vmax, dead = [0.0, 0.0], self.park_speed_deg_s, c.dead_zone_deg
        else:  # hold, idle: stop where we are
            targets, vels, vmax, dead = None, [0.0, 0.0], c.max_speed_deg_s, 0.0
        out = []
        for i, ax in enumerate(self._axes):
            if i == 1 and not c.tilt:
                target = axes_cfg[1].home_deg
            else:
                target = ax.pos if targets is None else targets[i]
            target = _clip(target, axes_cfg[i].min_deg, axes_cfg[i].max_deg)
            self._step_axis(ax, target, vels[i], vmax, dead, dt)
            ax.pos = _clip(ax.pos, axes_cfg[i].min_deg, axes_cfg[i].max_deg)
            out.append(ax.pos)
        return out[0], out[1]

    def _step_axis(
        self, ax: _AxisState, target: float, v_ff: float, vmax: float, dead: float, dt: float
    ) -> float:
        c = self.cfg
        err = target - ax.pos
        # Just after stopping, a wider dead zone: the teacher stopping makes the prediction
        # overshoot by a degree or two, and chasing that back would be hunting.
        if self._t is not None and self._t - ax.stopped_at < RESETTLE_S:
            dead *= 2.0
        if not ax.moving and abs(err) > dead:
            ax.moving = True
            assert ax.pid is not None
            ax.pid.reset()
        if ax.moving and (
            (abs(err) < c.settle_deg and abs(v_ff) < 2.0)
            # Like a human operator: a small overshoot is left alone rather than reversed.
            or (abs(err) < dead and err * ax.vel < 0)
        ):
            ax.moving = False
            assert self._t is not None
            ax.stopped_at = self._t
        if ax.moving and ax.pid is not None:
            # simple-pid computes kp*(setpoint - input): feed -err to get kp*err.
            corr = ax.pid(-err, dt=dt) if dt > 0 else 0.0
            v_des = _clip(v_ff + (corr or 0.0), -vmax, vmax)
            # Never overshoot: no faster than what stops us at the target with max deceleration.
            stop_v = math.sqrt(2.0 * c.max_accel_deg_s2 * abs(err)) + abs(v_ff)
            v_des = _clip(v_des, -stop_v, stop_v)
        else:
            v_des = 0.0
        dv = _clip(v_des - ax.vel, -c.max_accel_deg_s2 * dt, c.max_accel_deg_s2 * dt)
        ax.vel += dv
        ax.pos += ax.vel * dt
        return ax.pos


@dataclass
class NaiveController:
    """The baseline hobby trackers use: velocity = PID(pixel error of the newest detection)."""

    intr: Intrinsics
    pan_axis: AxisConfig
    tilt_axis: AxisConfig
    kp_deg_s_per_px: float = 0.2
    ki: float = 0.0
    kd: float = 0.01
    _pos: list[float] = field(default_factory=list)
    _pids: list[PID] = field(default_factory=list)
    _t: float | None = None

    def reset(self, now: float, current: tuple[float, float]) -> None:
        self._t = None  # the next update starts afresh from ``current``

    def update(self, now: float, aim: Aim, current: tuple[float, float]) -> tuple[float, float]:
        if self._t is not None and not 0.0 <= now - self._t <= MAX_DT_S:
            self._t = None  # an interruption, not a frame: do not integrate over it
        if self._t is None:
            self._pos = list(current)
            self._pids = [
                PID(
                    self.kp_deg_s_per_px,
                    self.ki,
                    self.kd,
                    setpoint=0.0,
                    sample_time=None,
                    output_limits=(-200, 200),
                )
                for _ in range(2)
            ]
            self._t = now
        dt = max(0.0, now - self._t)
        self._t = now
        if aim.mode in ("follow", "coast") and aim.pixel is not None:
            # The pixel where the person appeared in the newest frame: the naive loop neither
            # knows that the camera has moved since nor predicts the person's motion.
            errs = [aim.pixel[0] - self.intr.cx, -(aim.pixel[1] - self.intr.cy)]
            for i in range(2):
                rate = self._pids[i](-errs[i], dt=dt) if dt > 0 else 0.0
                self._pos[i] += (rate or 0.0) * dt
        axes = (self.pan_axis, self.tilt_axis)
        self._pos = [_clip(p, a.min_deg, a.max_deg) for p, a in zip(self._pos, axes, strict=True)]
        return self._pos[0], self._pos[1]


def make_controller(
    motor: MotorConfig,
    intr: Intrinsics,
    *,
    search_speed_deg_s: float,
    kind: str | None = None,
) -> Controller:
    """The controller ``[motor.control] kind`` names (``kind`` overrides it: the benchmarks run
    both): ``RoomController`` with the motor section's axes and speeds, or the naive baseline.
    ``search_speed_deg_s`` is the tracker's (``[tracker] search_speed_deg_s``)."""
    if (kind or motor.control.kind) == "naive":
        return NaiveController(intr, motor.pan, motor.tilt)
    return RoomController(
        motor.control, motor.pan, motor.tilt, search_speed_deg_s, motor.park_speed_deg_s
    )
