"""The driver boundary: whatever the controller asks, nothing leaves the calibrated limits."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coachcam.clock import FakeClock
from motor.config import AxisConfig
from motor.servo import PanTiltHead
from motor.sim import SimServoParams, SimServos

PAN = AxisConfig(min_deg=-50.0, max_deg=70.0, home_deg=10.0)
TILT = AxisConfig(min_deg=-20.0, max_deg=15.0, home_deg=-5.0)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


def make_head() -> tuple[PanTiltHead, SimServos, FakeClock]:
    clock = FakeClock()
    servos = SimServos(clock, SimServoParams(readback_noise_deg=0.0), start=(10.0, -5.0))
    return PanTiltHead(servos, PAN, TILT, clock), servos, clock


@given(st.lists(st.tuples(any_float, any_float, st.floats(0, 0.2)), min_size=1, max_size=60))
def test_no_command_ever_leaves_the_limits(cmds: list[tuple[float, float, float]]) -> None:
    head, servos, clock = make_head()
    with head:
        for pan, tilt, dt in cmds:
            head.command(pan, tilt)
            clock.advance(dt)
    for _, p, t in servos.commands:
        assert PAN.min_deg - 0.05 <= p <= PAN.max_deg + 0.05  # +- half a quantisation step
        assert TILT.min_deg - 0.05 <= t <= TILT.max_deg + 0.05
    for _, p, t in servos.history:
        assert math.isfinite(p) and PAN.min_deg - 0.05 <= p <= PAN.max_deg + 0.05
        assert math.isfinite(t) and TILT.min_deg - 0.05 <= t <= TILT.max_deg + 0.05


def test_head_parks_on_close_and_close_is_safe_twice() -> None:
    head, servos, clock = make_head()
    head.command(60.0, 10.0)
    clock.advance(1.0)
    head.close()
    head.close()
    clock.advance(1.0)
    pan, tilt = servos.true_position()
    assert abs(pan - PAN.home_deg) < 0.1 and abs(tilt - TILT.home_deg) < 0.1
    with pytest.raises(RuntimeError):
        head.command(0.0, 0.0)


def test_head_parks_when_the_loop_raises() -> None:
    head, servos, clock = make_head()
    with pytest.raises(ZeroDivisionError), head:
        head.command(-40.0, 12.0)
        clock.advance(1.0)
        _ = 1 / 0
    clock.advance(1.0)
    assert abs(servos.true_position()[0] - PAN.home_deg) < 0.1


def test_parking_is_gentle() -> None:
    head, servos, clock = make_head()
    head.command(60.0, 10.0)
    clock.advance(1.0)
    head.park()
    cmds = [c for c in servos.commands if c[0] >= 1.0]
    steps = [abs(b[1] - a[1]) for a, b in itertools.pairwise(cmds)]
    # each step at most park speed x step time, plus one quantisation step of the servo
    assert max(steps) <= head.park_speed * head.step_s + servos.params.quantum_deg + 1e-9


def test_sim_servo_respects_its_speed_limit() -> None:
    clock = FakeClock()
    servos = SimServos(clock, SimServoParams(readback_noise_deg=0.0, latency_ms=0.0))
    servos.write(60.0, 0.0)
    clock.advance(0.075)
    pan, _ = servos.true_position()
    assert 0.0 < pan < 60.0 * 0.5 + 0.5  # 60 deg takes >= 0.15 s at 400 deg/s
    clock.advance(1.0)
    assert abs(servos.true_position()[0] - 60.0) < 0.1


def test_sim_servo_has_command_latency() -> None:
    clock = FakeClock()
    servos = SimServos(clock, SimServoParams(readback_noise_deg=0.0, latency_ms=50.0))
    servos.write(30.0, 0.0)
    clock.advance(0.04)
    assert servos.true_position()[0] == 0.0
    clock.advance(0.5)
    assert servos.true_position()[0] > 29.0
