"""make_backend: the one place choosing sim | gpio | serial, and it never falls back to sim."""

from __future__ import annotations

from pathlib import Path

import pytest
from motor_helpers import CAL, mock_factory, pulses_us

from coachcam.clock import FakeClock
from coachcam.config import load_config
from coachcam.errors import ServoError
from motor.drivers import make_backend, make_head
from motor.emulator import MaestroEmulator, PtyMaestro
from motor.gpio import GpioServos
from motor.maestro import MaestroServos
from motor.sim import SimServos


def test_sim_starts_at_home() -> None:
    backend = make_backend(load_config(), FakeClock())
    assert isinstance(backend, SimServos)
    assert backend.true_position() == (0.0, -5.0)


def test_gpio_uses_the_configured_pins_and_calibration() -> None:
    cfg = load_config(overrides={"motor.driver": "gpio", "motor.gpio.pan_pin": 18})
    factory = mock_factory()
    backend = make_backend(cfg, FakeClock(), CAL, pin_factory=factory)
    assert isinstance(backend, GpioServos)
    backend.write(0.0, 0.0)
    assert pulses_us(factory, 18)[-1] == pytest.approx(CAL.pan.centre_us)
    backend.close()


def test_gpio_without_a_pin_library_fails_loudly() -> None:
    cfg = load_config(overrides={"motor.driver": "gpio", "motor.gpio.pin_factory": "lgpio"})
    with pytest.raises(ServoError, match="lgpio"):
        make_backend(cfg, FakeClock())


def test_serial_without_a_controller_fails_loudly_naming_the_port() -> None:
    cfg = load_config(overrides={"motor.driver": "serial", "motor.serial.port": "/dev/ttyNOPE"})
    with pytest.raises(ServoError, match="/dev/ttyNOPE"):
        make_backend(cfg, FakeClock())


def test_serial_head_with_calibrated_limits() -> None:
    clock = FakeClock()
    with PtyMaestro(MaestroEmulator(clock)) as pty:
        cfg = load_config(overrides={"motor.driver": "serial", "motor.serial.port": pty.path})
        with make_head(cfg, clock, CAL) as head:
            assert isinstance(head.backend, MaestroServos)
            assert (head.pan_axis.min_deg, head.pan_axis.max_deg) == (-70.0, 75.0)
            assert head.command(-100.0, 0.0) == (-70.0, 0.0)
            head.backend.read()  # round trip: the emulator has the target
            assert pty.emulator.channels[0].target == round((1512.0 + 700.0) * 4)


def test_calibrated_applies_the_file(tmp_path: Path) -> None:
    from motor.calibration import ControlCalibration, save_calibration
    from motor.drivers import calibrated

    path = tmp_path / "cal.toml"
    tuned = ControlCalibration(
        kp=2.0, max_speed_deg_s=80.0, max_accel_deg_s2=400.0, actuation_latency_ms=15.0
    )  # all four, as autotune writes them
    save_calibration(CAL.model_copy(update={"control": tuned}), path)
    cfg, cal = calibrated(load_config(), str(path))
    assert cal is not None and cfg.motor.control.kp == 2.0
    assert (cfg.motor.pan.min_deg, cfg.motor.pan.max_deg) == (-70.0, 75.0)
    # the head built from the calibrated config and the backend agree on the limits
    head = make_head(cfg, FakeClock(), cal)
    assert head.pan_axis.min_deg == -70.0
