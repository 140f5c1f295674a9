"""GPIO driver: the pulse widths that reach the (mock) pins."""

from __future__ import annotations

import math

import pytest
from motor_helpers import PAN, TILT, gpio_servos, maps, pulses_us

from coachcam.errors import ServoError
from motor.gpio import choose_pin_factory
from motor.servo import PanTiltHead


def test_constructor_touches_no_pin() -> None:
    servos, factory, _ = gpio_servos()
    assert factory.pins == {}
    servos.open()
    # initial_value=None: the pins exist but no pulse has been sent yet
    assert set(pulses_us(factory, 12)) == {0.0}


def test_degrees_become_calibrated_pulses() -> None:
    servos, factory, _ = gpio_servos()
    with servos:
        servos.write(10.0, 5.0)
        # pan: reversed, 1512 us centre, 10 us/deg; tilt: 1480 us centre, 11 us/deg
        assert pulses_us(factory, 12)[-1] == pytest.approx(1512.0 - 100.0)
        assert pulses_us(factory, 13)[-1] == pytest.approx(1480.0 + 55.0)
        servos.write(0.0, 0.0)
        assert pulses_us(factory, 12)[-1] == pytest.approx(1512.0)
        assert servos.read() is None


def test_clamped_in_degrees_then_in_pulse_width() -> None:
    servos, factory, _ = gpio_servos()
    with servos:
        servos.write(-500.0, 500.0)
        # pan limit is the calibrated -70 deg -> 1512 + 700 = 2212 us
        assert pulses_us(factory, 12)[-1] == pytest.approx(2212.0)
        # tilt: config max 30, calibrated max 25 -> 25 deg -> 1755 us
        assert pulses_us(factory, 13)[-1] == pytest.approx(1755.0)
    pan, _ = maps()
    wide = type(pan)(**{**pan.__dict__, "min_deg": -200.0, "max_deg": 200.0})
    assert wide.to_us(200.0) == PAN.min_us  # then the pulse-width clamp


def test_non_finite_commands_hold_the_last_pulse() -> None:
    servos, factory, _ = gpio_servos()
    with servos:
        servos.write(3.0, 1.0)
        before = pulses_us(factory, 12)[-1]
        servos.write(math.nan, math.inf)
        assert pulses_us(factory, 12)[-1] == before
        assert servos.last_us is not None and servos.last_us[0] == before


def test_close_parks_at_home_then_stops_pulses_and_is_idempotent() -> None:
    servos, factory, clock = gpio_servos(park_settle_s=0.5)
    servos.open()
    servos.write(40.0, 20.0)
    servos.close()
    servos.close()
    pan = pulses_us(factory, 12)
    tilt = pulses_us(factory, 13)
    assert pan[-2] == pytest.approx(1512.0)  # home pan 0 deg
    assert tilt[-2] == pytest.approx(1480.0 - 55.0)  # home tilt -5 deg
    assert pan[-1] == 0.0 and tilt[-1] == 0.0  # then released
    assert clock.now() == pytest.approx(0.5)
    with pytest.raises(ServoError):
        servos.write(0.0, 0.0)


def test_parks_on_exception_inside_the_head() -> None:
    servos, factory, clock = gpio_servos()
    pan_map, _ = maps()
    with pytest.raises(RuntimeError), PanTiltHead(servos, PAN, TILT, clock) as head:
        head.command(60.0, 20.0)
        raise RuntimeError("tracker crashed")
    nonzero = [p for p in pulses_us(factory, 12) if p]
    assert nonzero[-1] == pytest.approx(pan_map.to_us(pan_map.home_deg))
    assert pulses_us(factory, 12)[-1] == 0.0


def test_watchdog_releases_when_commands_stop_and_next_command_resumes() -> None:
    servos, factory, clock = gpio_servos(watchdog_s=0.5)
    with servos:
        servos.write(5.0, 0.0)
        clock.advance(0.4)
        assert not servos.watchdog.check()
        clock.advance(0.2)
        assert servos.watchdog.check()
        assert pulses_us(factory, 12)[-1] == 0.0
        assert not servos.watchdog.check()  # fires once
        servos.write(5.0, 0.0)
        assert pulses_us(factory, 12)[-1] == pytest.approx(1462.0)


def test_watchdog_thread_fires_on_its_own() -> None:
    import threading

    from coachcam.clock import MonotonicClock
    from motor.watchdog import Watchdog

    fired = threading.Event()
    dog = Watchdog(0.02, fired.set, MonotonicClock())
    dog.kick()
    dog.start()
    try:
        assert fired.wait(5.0)
    finally:
        dog.stop()


def test_pin_factory_choice() -> None:
    assert choose_pin_factory("auto", "Raspberry Pi 5 Model B Rev 1.0", True) == "lgpio"
    assert choose_pin_factory("auto", "Raspberry Pi 4 Model B Rev 1.4", True) == "pigpio"
    assert choose_pin_factory("auto", "Raspberry Pi 4 Model B Rev 1.4", False) == "lgpio"
    assert choose_pin_factory("pigpio", "Raspberry Pi 5", False) == "pigpio"


def test_missing_pin_factory_is_a_clear_error() -> None:
    from motor.gpio import make_pin_factory

    with pytest.raises(ServoError, match="pin factory 'lgpio'"):
        make_pin_factory("lgpio")  # lgpio is not installed on the build machine


# The limits property over every driver (this one included): test_head_limits.py.


def test_close_without_parking_stops_where_it_is() -> None:
    servos, factory, _ = gpio_servos()
    servos.open()
    servos.write(40.0, 20.0)
    before = pulses_us(factory, 12)[-1]
    servos.release()
    servos.close(park=False)
    nonzero = [p for p in pulses_us(factory, 12) if p]
    assert nonzero[-1] == before  # no move home after the stop
