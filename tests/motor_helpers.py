"""Shared fixtures for the motor and calibration tests (kept out of conftest.py on purpose)."""

from __future__ import annotations

from typing import Any

from coachcam.clock import FakeClock
from coachcam.errors import ServoError
from motor.calibration import AxisCalibration, AxisMap, Calibration, axis_map
from motor.config import AxisConfig, GpioConfig, MotorConfig

PAN = AxisConfig(min_deg=-80.0, max_deg=80.0, home_deg=0.0, min_us=600.0, max_us=2400.0)
TILT = AxisConfig(min_deg=-30.0, max_deg=30.0, home_deg=-5.0, min_us=600.0, max_us=2400.0)
CAL = Calibration(
    pan=AxisCalibration(centre_us=1512.0, us_per_deg=10.0, direction=-1, min_deg=-70, max_deg=75),
    tilt=AxisCalibration(centre_us=1480.0, us_per_deg=11.0, direction=1, min_deg=-40, max_deg=25),
)


def maps(cal: Calibration | None = CAL) -> tuple[AxisMap, AxisMap]:
    return axis_map(PAN, cal.pan if cal else None), axis_map(TILT, cal.tilt if cal else None)


def motor_cfg(**kw: Any) -> MotorConfig:
    return MotorConfig(pan=PAN, tilt=TILT, **kw)


def mock_factory() -> Any:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    return MockFactory(pin_class=MockPWMPin)


def pulses_us(factory: Any, pin: int, frame_ms: float = 20.0) -> list[float]:
    """Every pulse width (us) the mock pin was driven with, in order (0 = no pulses)."""
    return [round(s.state * frame_ms * 1000.0, 6) for s in factory.pin(pin).states]


def gpio_servos(clock: FakeClock | None = None, **kw: Any) -> tuple[Any, Any, FakeClock]:
    from motor.gpio import GpioServos

    clock = clock or FakeClock()
    factory = mock_factory()
    pan, tilt = maps()
    servos = GpioServos(pan, tilt, GpioConfig(), clock, pin_factory=factory, **kw)
    return servos, factory, clock


class FlakyServos:
    """A servo driver that records every write with its time, ``(t, pan, tilt)``; while
    ``gone``, writes and reads raise like a controller lost or unplugged."""

    name = "flaky"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.writes: list[tuple[float, float, float]] = []
        self.gone = False

    def write(self, pan_deg: float, tilt_deg: float) -> None:
        if self.gone:
            raise ServoError("servo controller gone")
        self.writes.append((self.clock.now(), pan_deg, tilt_deg))

    def read(self) -> tuple[float, float] | None:
        if self.gone:
            raise ServoError("servo controller gone")
        return None

    def open(self) -> FlakyServos:
        return self

    def release(self) -> None:
        pass

    def close(self, park: bool = True) -> None:
        pass
