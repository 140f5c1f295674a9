"""Step-response auto-tune of ``[motor.control]``: identify the axis, then pick gains on a model.

1. **Identify.** Command a step on one axis and sample the position read-back: the dead time
   (command to first motion), the top speed and the acceleration of the servo. This runs on the
   real axis where the driver has read-back (Maestro) or on the simulated servos.
2. **Tune.** Simulate the pointing loop — a velocity-limited, acceleration-limited proportional
   approach in room angles, the semantics of ``ControlConfig`` (kp in (deg/s)/deg,
   ``max_speed_deg_s``, ``max_accel_deg_s2``), run at the camera's frame rate — driving a
   ``SimServos`` with the identified speed, acceleration and dead time. Candidates are tried from
   the gentlest up; the first that meets the targets wins: a step of ``step_deg`` settles within
   ``settle_deg`` in ``target_settle_s``, overshoots by at most ``max_overshoot_deg``, never
   reverses, and the servo never trails the command by more than ``max_lag_deg`` (so the
   controller's idea of where the camera points stays true). Gentlest first because a camera
   that whips about makes unwatchable video.

The measured dead time becomes ``actuation_latency_ms`` (what the controller predicts across).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from coachcam.clock import Clock, FakeClock
from coachcam.errors import CalibrationError
from motor.calibration import ControlCalibration
from motor.servo import ServoBackend
from motor.sim import SimServoParams, SimServos

log = logging.getLogger(__name__)

KP_CANDIDATES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
SPEED_FRACTIONS = (0.2, 0.3, 0.45, 0.6, 0.8)
ACCEL_FRACTIONS = (0.05, 0.1, 0.2, 0.35, 0.5)


@dataclass(frozen=True)
class StepResponse:
    t: np.ndarray  # seconds since the step was commanded
    pos: np.ndarray  # read-back of the stepped axis (deg)
    start: float
    target: float
    noise_deg: float


@dataclass(frozen=True)
class PlantModel:
    dead_time_s: float
    speed_deg_s: float
    accel_deg_s2: float
    noise_deg: float


@dataclass(frozen=True)
class StepMetrics:
    settle_s: float  # inf if it never settled
    overshoot_deg: float
    reversals: int
    max_lag_deg: float


@dataclass(frozen=True)
class Targets:
    step_deg: float = 30.0
    target_settle_s: float = 1.2
    settle_deg: float = 0.4
    max_overshoot_deg: float = 0.5
    max_lag_deg: float = 2.0

    def met(self, m: StepMetrics) -> bool:
        return (
            m.settle_s <= self.target_settle_s
            and m.overshoot_deg <= self.max_overshoot_deg
            and m.reversals == 0
            and m.max_lag_deg <= self.max_lag_deg
        )


@dataclass
class TuneResult:
    model: PlantModel
    kp: float
    max_speed_deg_s: float
    max_accel_deg_s2: float
    metrics: StepMetrics
    tried: int
    table: list[tuple[float, float, float, StepMetrics]] = field(default_factory=list)

    def control(self) -> ControlCalibration:
        return ControlCalibration(
            kp=round(self.kp, 3),
            max_speed_deg_s=round(self.max_speed_deg_s, 1),
            max_accel_deg_s2=round(self.max_accel_deg_s2, 1),
            actuation_latency_ms=round(self.model.dead_time_s * 1000.0, 1),
        )


# -- 1. identification ----------------------------------------------------------------------------


def step_response(
    backend: ServoBackend,
    clock: Clock,
    axis: int,
    start: tuple[float, float],
    step_deg: float,
    *,
    dt: float = 0.002,
    duration_s: float = 1.0,
    settle_s: float = 0.5,
) -> StepResponse:
    """Hold ``start``, then step axis ``axis`` by ``step_deg``; sample the read-back."""
    backend.write(*start)
    clock.wait(settle_s)
    quiet = []
    for _ in range(20):
        pos = backend.read()
        if pos is None:
            raise CalibrationError(
                f"the {backend.name} servo driver has no position read-back: auto-tune needs it "
                "(use the Maestro, or --plant sim to tune on the simulated servo model)"
            )
        quiet.append(pos[axis])
        clock.wait(dt)
    base = float(np.median(quiet))
    target = list(start)
    target[axis] += step_deg
    t0 = clock.now()
    backend.write(target[0], target[1])
    ts, ps = [], []
    while clock.now() - t0 < duration_s:
        clock.wait(dt)
        pos = backend.read()
        assert pos is not None
        ts.append(clock.now() - t0)
        ps.append(pos[axis])
    return StepResponse(
        np.array(ts), np.array(ps), base, base + step_deg, float(np.std(quiet)) or 1e-3
    )


def _crossing(t: np.ndarray, x: np.ndarray, level: float) -> float:
    """First time after which x stays above ``level`` (linear interpolation)."""
    above = x >= level
    if not above.any() or not above[-1]:
        raise CalibrationError(f"the axis never moved {level:.2f} deg: is the servo connected?")
    below = np.nonzero(~above)[0]
    i = int(below[-1]) + 1 if below.size else 0
    if i == 0:
        return float(t[0])
    f = (level - x[i - 1]) / (x[i] - x[i - 1])
    return float(t[i - 1] + f * (t[i] - t[i - 1]))


def identify(resp: StepResponse) -> PlantModel:
    """Dead time, top speed and acceleration from one step response."""
    sign = 1.0 if resp.target >= resp.start else -1.0
    x = (resp.pos - resp.start) * sign  # progress toward the target, deg
    amp = abs(resp.target - resp.start)
    if x.max() < 0.9 * amp:
        raise CalibrationError(
            f"the axis reached only {x.max():.1f} of {amp:.1f} deg in {resp.t[-1]:.1f} s: "
            "blocked, too weak, or the limits are too tight for this step"
        )
    floor = max(4.0 * resp.noise_deg, 0.3)
    # While accelerating from rest x = a/2 (t - L)^2, so sqrt(x) is a line in t: fit it over
    # the early move (many samples average out the read-back noise), then a and L follow.
    early = (x > floor) & (x < max(3.0 * floor, 0.2 * amp))
    early &= np.cumsum(~early & (x >= 0.2 * amp)) == 0  # only before the first pass of 20 %
    if np.count_nonzero(early) < 4:
        raise CalibrationError(
            "too few samples of the start of the move to measure it: sample faster (--dt)"
        )
    slope, icpt = np.polyfit(resp.t[early], np.sqrt(x[early]), 1)
    if slope <= 0:
        raise CalibrationError("could not measure the acceleration: the read-back is too noisy")
    accel = 2.0 * slope**2
    dead = max(0.0, -icpt / slope)
    # Top speed: the steepest least-squares slope over short windows of the middle of the move.
    lo, hi = _crossing(resp.t, x, 0.1 * amp), _crossing(resp.t, x, 0.9 * amp)
    sel = (resp.t >= lo) & (resp.t <= hi)
    tt, xx = resp.t[sel], x[sel]
    speed = 0.0
    w = max(3, len(tt) // 5)
    for i in range(0, max(1, len(tt) - w + 1)):
        if len(tt[i : i + w]) >= 2:
            speed = max(speed, float(np.polyfit(tt[i : i + w], xx[i : i + w], 1)[0]))
    if speed <= 0:
        speed = 0.8 * amp / max(hi - lo, 1e-3)
    # A short step may never reach top speed; the acceleration phase then bounds it from below.
    accel = max(accel, speed / max(hi - dead, 1e-3))
    return PlantModel(float(dead), float(speed), float(accel), float(resp.noise_deg))


# -- 2. tuning on the model ------------------------------------------------------------------------


def simulate_step(
    model: PlantModel,
    kp: float,
    vmax: float,
    amax: float,
    targets: Targets,
    fps: float = 30.0,
    duration_s: float = 3.0,
    quantum_deg: float = 0.0,
    dead_band_deg: float = 0.0,
) -> StepMetrics:
    """One closed-loop step of ``targets.step_deg`` on a simulated servo like the model."""
    clock = FakeClock()
    # the identified plant, not a driver the config chooses (so not ``motor.drivers``)
    servo = SimServos(
        clock,
        params=SimServoParams(
            speed_deg_per_s=model.speed_deg_s,
            accel_deg_s2=model.accel_deg_s2,
            dead_band_deg=dead_band_deg,
            quantum_deg=quantum_deg,
            latency_ms=model.dead_time_s * 1000.0,
            readback_noise_deg=0.0,
        ),
        step_s=0.002,
    )
    dt = 1.0 / fps
    goal = targets.step_deg
    pos = vel = 0.0
    moving = True
    cmds: list[tuple[float, float]] = []
    truth: list[tuple[float, float]] = []
    n = round(duration_s * fps)
    for _ in range(n):
        # The controller's step, as ControlConfig describes it.
        err = goal - pos
        if moving and abs(err) < targets.settle_deg:
            moving = False
        if moving:
            v_des = max(-vmax, min(vmax, kp * err))
            stop_v = math.sqrt(2.0 * amax * abs(err))
            v_des = max(-stop_v, min(stop_v, v_des))
        else:
            v_des = 0.0
        vel += max(-amax * dt, min(amax * dt, v_des - vel))
        pos += vel * dt
        servo.write(pos, 0.0)
        cmds.append((clock.now(), pos))
        clock.wait(dt)
        truth.append((clock.now(), servo.true_position()[0]))
    tt = np.array([t for t, _, _ in servo.history])
    xx = np.array([p for _, p, _ in servo.history])
    overshoot = max(0.0, float(xx.max()) - goal)
    outside = np.nonzero(np.abs(xx - goal) > targets.settle_deg)[0]
    settle = float(tt[outside[-1] + 1]) if outside.size and outside[-1] + 1 < len(tt) else math.inf
    if not outside.size:
        settle = 0.0
    steps = np.diff(xx)
    steps = steps[np.abs(steps) > 1e-6]
    reversals = int(np.count_nonzero(np.diff(np.sign(steps)) != 0)) if steps.size else 0
    # Lag: how far the servo is from the last command when the next one is computed, i.e. how
    # wrong the controller's idea of where the camera points is.
    lag = max(abs(c - x) for (_, c), (_, x) in zip(cmds, truth, strict=True))
    return StepMetrics(settle, overshoot, reversals, float(lag))


def tune(
    model: PlantModel,
    targets: Targets | None = None,
    fps: float = 30.0,
    kps: tuple[float, ...] = KP_CANDIDATES,
    speed_fractions: tuple[float, ...] = SPEED_FRACTIONS,
    accel_fractions: tuple[float, ...] = ACCEL_FRACTIONS,
) -> TuneResult:
    """The gentlest gains that meet ``targets`` on the model; ``CalibrationError`` if none do."""
    targets = targets or Targets()
    table: list[tuple[float, float, float, StepMetrics]] = []
    for fa in accel_fractions:
        amax = min(10000.0, fa * model.accel_deg_s2)
        for fv in speed_fractions:
            vmax = min(600.0, fv * model.speed_deg_s)
            for kp in kps:
                m = simulate_step(model, kp, vmax, amax, targets, fps)
                table.append((kp, vmax, amax, m))
                if targets.met(m):
                    log.info("auto-tune: kp %.2f, %.0f deg/s, %.0f deg/s2: %s", kp, vmax, amax, m)
                    return TuneResult(model, kp, vmax, amax, m, len(table), table)
    best = min(table, key=lambda r: r[3].settle_s)
    raise CalibrationError(
        f"no gains met the targets (settle a {targets.step_deg:g} deg step within "
        f"{targets.settle_deg:g} deg in {targets.target_settle_s:g} s, overshoot <= "
        f"{targets.max_overshoot_deg:g} deg, no reversal); fastest tried: kp {best[0]:g}, "
        f"{best[1]:.0f} deg/s, {best[2]:.0f} deg/s2 settled in {best[3].settle_s:.2f} s. "
        "Is the servo too slow for these targets?"
    )
