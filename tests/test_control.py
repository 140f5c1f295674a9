"""The controller in closed loop with the simulated servos and a latent measurement."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from coachcam.clock import FakeClock
from motor.config import AxisConfig, ControlConfig, MotorConfig
from motor.controller import RoomController
from motor.servo import PanTiltHead
from motor.sim import SimServoParams, SimServos
from tracker.tracker import Aim

M = MotorConfig()


def closed_loop(target_pan: float, latency_s: float, seconds: float = 4.0) -> list[float]:
    """Errors |camera - target| per frame when the aim is measured ``latency_s`` late."""
    clock = FakeClock()
    servos = SimServos(clock, SimServoParams(readback_noise_deg=0.0), start=(0.0, 0.0))
    head = PanTiltHead(servos, M.pan, M.tilt, clock)
    ctrl = RoomController(ControlConfig(), M.pan, M.tilt)  # type: ignore[call-arg]
    errors = []
    for _ in range(int(seconds * 30)):
        clock.advance(1 / 30)
        now = clock.now()
        head.sample()
        t_cap = max(0.0, now - latency_s)
        aim = Aim("follow", target_pan, 0.0, 0.0, 0.0, t_ref=t_cap, track_id=1, t_capture=t_cap)
        head.command(*ctrl.update(now, aim, head.commanded or (0.0, 0.0)))
        errors.append(abs(servos.true_position()[0] - target_pan))
    return errors


@settings(max_examples=40)
@given(st.floats(-70, 70).filter(lambda x: abs(x) > 3), st.floats(0.0, 0.25))
def test_error_decays_for_latencies_up_to_250ms(target: float, latency: float) -> None:
    errors = closed_loop(target, latency)
    assert errors[-1] <= ControlConfig().dead_zone_deg + 0.2  # type: ignore[call-arg]
    # It gets there without swinging back and forth: once within 1 deg it stays within 2.
    first = next(i for i, e in enumerate(errors) if e < 1.0)
    assert max(errors[first:]) < 2.0


@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(-1e4, 1e4)),
        min_size=1,
        max_size=40,
    )
)
def test_controller_output_stays_within_limits(aims: list[tuple[float, float, float]]) -> None:
    ctrl = RoomController(ControlConfig(), M.pan, M.tilt)  # type: ignore[call-arg]
    t = 0.0
    for pan, tilt, vel in aims:
        t += 1 / 30
        p, q = ctrl.update(t, Aim("follow", pan, tilt, vel, vel, t_ref=t - 0.1), (0.0, 0.0))
        assert math.isfinite(p) and M.pan.min_deg <= p <= M.pan.max_deg
        assert math.isfinite(q) and M.tilt.min_deg <= q <= M.tilt.max_deg


def test_controller_holds_still_inside_the_dead_zone() -> None:
    ctrl = RoomController(ControlConfig(), AxisConfig(), AxisConfig())  # type: ignore[call-arg]
    out = [
        ctrl.update(i / 30, Aim("follow", 1.0, -1.0, t_ref=i / 30), (0.0, 0.0)) for i in range(60)
    ]
    assert all(o == (0.0, 0.0) for o in out)
