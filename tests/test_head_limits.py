"""The driver boundary: whatever the controller asks, nothing leaves the calibrated limits."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import motor_helpers as hw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachcam.clock import FakeClock
from coachcam.config import Config
from coachcam.errors import DeviceClosed, ServoError, ServosClosed
from motor import drivers
from motor.calibration import axis_maps, effective_axis
from motor.config import AxisConfig, SerialConfig
from motor.emulator import MaestroEmulator, PtyMaestro
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


event = st.one_of(
    st.tuples(st.just("cmd"), any_float, any_float, st.floats(0, 0.2)),
    st.tuples(st.just("gap"), st.floats(0, 30), st.just(0.0), st.just(0.0)),
    st.tuples(st.just("park"), st.just(0.0), st.just(0.0), st.just(0.0)),
    st.tuples(st.just("fault"), st.floats(0, 10), st.just(0.0), st.just(0.0)),
)


@given(st.lists(event, min_size=1, max_size=60))
def test_consecutive_commands_never_exceed_the_speed_limit(
    events: list[tuple[str, float, float, float]],
) -> None:
    """Whatever is asked, after whatever pause, park or fault: every command the driver receives
    is within the limits and within speed limit x time since the previous one."""
    clock = FakeClock()
    backend = hw.FlakyServos(clock)
    head = PanTiltHead(backend, PAN, TILT, clock, max_speed_deg_s=90.0)
    head.command(PAN.home_deg, TILT.home_deg)
    for kind, a, b, dt in events:
        if kind == "cmd":
            head.command(a, b)
            clock.advance(dt)
        elif kind == "gap":
            clock.advance(a)
        elif kind == "park":
            head.park()
        else:  # the controller is lost for a while, then back
            backend.gone = True
            with pytest.raises(ServoError):
                head.command(a, a)
            clock.advance(a)
            backend.gone = False
    head.close()
    for (t0, p0, q0), (t1, p1, q1) in itertools.pairwise(backend.writes):
        step = 90.0 * (t1 - t0) + 1e-9
        assert abs(p1 - p0) <= step and abs(q1 - q0) <= step, (t0, p0, q0, t1, p1, q1)
        assert PAN.min_deg <= p1 <= PAN.max_deg and TILT.min_deg <= q1 <= TILT.max_deg


def test_after_park_a_far_command_ramps_from_the_park_position() -> None:
    head, _, clock = make_head()
    head.command(60.0, 10.0)
    clock.advance(3.0)
    head.park()
    clock.advance(5.0)
    first = head.command(-50.0, -20.0)
    limit = head.max_speed * head.MAX_SLEW_DT_S + 1e-9
    assert abs(first[0] - PAN.home_deg) <= limit and abs(first[1] - TILT.home_deg) <= limit


# -- the same property over every servo driver ----------------------------------------------
# What reached the hardware, read back from each driver's recording fake: the simulated servos'
# commands, the gpiozero mock pins' pulse widths, the Maestro emulator's targets (over a pty).
@dataclass
class Rig:
    head: PanTiltHead
    clock: FakeClock
    reached: Callable[[], list[tuple[float, float]]]  # (pan, tilt) degrees; NaN: not this axis
    tolerance_deg: float  # the driver's own quantisation
    clamps: bool  # the driver clamps writes that bypass the head, too


@contextmanager
def rig(driver: str) -> Iterator[Rig]:
    clock = FakeClock()
    if driver == "sim":
        head = drivers.make_head(Config(motor=hw.motor_cfg()), clock, hw.CAL)
        sim = head.backend
        assert isinstance(sim, SimServos)
        yield Rig(head, clock, lambda: [(p, t) for _, p, t in sim.commands], 0.05, clamps=False)
    elif driver == "gpio":
        cfg = Config(motor=hw.motor_cfg(driver="gpio"))
        pan, tilt = axis_maps(cfg.motor, hw.CAL)
        factory = hw.mock_factory()
        head = drivers.make_head(cfg, clock, hw.CAL, pin_factory=factory, watchdog_s=0.0)

        def pins() -> list[tuple[float, float]]:
            pan_us = hw.pulses_us(factory, cfg.motor.gpio.pan_pin)
            tilt_us = hw.pulses_us(factory, cfg.motor.gpio.tilt_pin)
            for us in (u for u in pan_us + tilt_us if u):  # and inside the servos' pulse range
                assert hw.PAN.min_us - 1e-6 <= us <= hw.PAN.max_us + 1e-6, us
            return [(pan.to_deg(us), math.nan) for us in pan_us if us] + [
                (math.nan, tilt.to_deg(us)) for us in tilt_us if us
            ]

        yield Rig(head, clock, pins, 1e-6, clamps=True)
    else:
        with PtyMaestro(MaestroEmulator(clock)) as pty:
            serial = SerialConfig(port=pty.path, reply_timeout_s=0.2, retries=2)
            cfg = Config(motor=hw.motor_cfg(driver="serial", serial=serial))
            pan, tilt = axis_maps(cfg.motor, hw.CAL)
            head = drivers.make_head(cfg, clock, hw.CAL, watchdog_s=0.0)

            def targets() -> list[tuple[float, float]]:
                pty.drain()  # everything sent has reached the emulator
                with pty._lock:  # the emulator's thread appends as bytes arrive
                    cmds = [(ch, v) for _, kind, ch, v in pty.emulator.commands if kind == "target"]
                    assert pty.emulator.errors == 0, "every byte on the wire was a valid command"
                for _, v in cmds:  # and inside the servos' pulse range (quarter-us)
                    assert v == 0 or 4 * hw.PAN.min_us <= v <= 4 * hw.PAN.max_us, v
                return [
                    (pan.to_deg(v / 4), math.nan) if ch == 0 else (math.nan, tilt.to_deg(v / 4))
                    for ch, v in cmds
                    if v  # target 0: pulses off
                ]

            yield Rig(
                head, clock, targets, 0.5 / 4 / min(pan.us_per_deg, tilt.us_per_deg), clamps=True
            )


DRIVERS = ["sim", "gpio", "maestro"]


@pytest.mark.parametrize("driver", DRIVERS)
@settings(max_examples=15, deadline=None)  # x3 drivers; a Maestro example opens a pty
@given(cmds=st.lists(st.tuples(any_float, any_float, st.floats(0, 0.2)), max_size=30))
def test_nothing_outside_the_calibrated_limits_reaches_any_driver(
    driver: str, cmds: list[tuple[float, float, float]]
) -> None:
    """Through the head, or (for a driver that clamps itself) straight to the driver, NaN and
    infinities included, then parked on close: every position that reached the hardware lies
    within the calibrated limits."""
    limits = [effective_axis(hw.PAN, hw.CAL.pan), effective_axis(hw.TILT, hw.CAL.tilt)]
    with rig(driver) as r:
        with r.head as head:
            for i, (pan, tilt, dt) in enumerate(cmds):
                (head.backend.write if r.clamps and i % 2 else head.command)(pan, tilt)
                r.clock.advance(dt)
        reached = r.reached()
    assert reached, "the head parks on close: something reached the hardware"
    tol = r.tolerance_deg
    for position in reached:
        for deg, ax in zip(position, limits, strict=True):
            if not math.isnan(deg):
                assert ax.min_deg - tol <= deg <= ax.max_deg + tol, (driver, position)


@pytest.mark.parametrize("driver", DRIVERS)
def test_closed_head_and_driver_raise_device_closed(driver: str) -> None:
    """Closed stays closed: the head and every driver say so with ``DeviceClosed`` (a
    ``RuntimeError`` too); a closed driver's error is also a ``ServoError``, the frame loop's
    servo-fault path. Closing twice is safe."""
    with rig(driver) as r:
        r.head.command(5.0, 0.0)
        r.head.close()
        r.head.close()
        backend = r.head.backend
        backend.close()
        with pytest.raises(DeviceClosed, match="closed"):
            r.head.command(0.0, 0.0)
        for use in (lambda: backend.write(0.0, 0.0), backend.open):
            with pytest.raises(ServosClosed) as err:
                use()
            assert isinstance(err.value, ServoError) and isinstance(err.value, RuntimeError)


def test_the_head_parks_and_the_driver_only_lets_go() -> None:
    """Parking has one owner: the head parks at its own speed, then closes the driver with
    ``park=False``; ``close(park=False)`` releases where it is, with no move at all."""
    calls: list[object] = []

    class Recording(hw.FlakyServos):
        def release(self) -> None:
            calls.append("release")

        def close(self, park: bool = True) -> None:
            calls.append(("close", park))

    clock = FakeClock()
    servos = Recording(clock)
    with PanTiltHead(servos, PAN, TILT, clock) as head:
        head.command(40.0, 10.0)
    assert servos.writes[-1][1:] == (PAN.home_deg, TILT.home_deg)
    assert calls == [("close", False)]
    calls.clear()
    servos = Recording(clock)
    head = PanTiltHead(servos, PAN, TILT, clock)
    head.command(40.0, 10.0)
    head.close(park=False)
    assert len(servos.writes) == 1 and calls == ["release", ("close", False)]


def test_when_the_heads_park_fails_the_driver_parks_on_close() -> None:
    """The head owns parking, but if its park raised (a write failed mid-way), the driver's own
    park on close is the fallback: servos are never left mid-move on the way out."""
    calls: list[object] = []

    class Recording(hw.FlakyServos):
        def close(self, park: bool = True) -> None:
            calls.append(("close", park))

    clock = FakeClock()
    servos = Recording(clock)
    head = PanTiltHead(servos, PAN, TILT, clock)
    head.command(40.0, 10.0)
    servos.gone = True  # the park's writes fail
    head.close()
    assert calls == [("close", True)]


def test_the_sim_driver_on_its_own_parks_on_close_and_release_stops_it() -> None:
    clock = FakeClock()
    sim = SimServos(clock, start=(0.0, 0.0))
    sim.write(30.0, 0.0)
    clock.advance(0.05)
    sim.release()
    where = sim.true_position()
    clock.advance(0.5)
    assert sim.true_position() == where  # limp: stopped where it was
    sim.close()
    assert sim.commands[-1][1:] == (0.0, 0.0)  # then home, given park_settle_s to get there
    assert max(abs(d) for d in sim.true_position()) < 0.2
