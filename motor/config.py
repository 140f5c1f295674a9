"""The ``[motor]`` config section: driver choice, limits and controller gains."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from coachcam.configbase import Section


class AxisConfig(Section):
    min_deg: float = Field(-90.0, ge=-180.0, le=180.0, description="Calibrated lower limit.")
    max_deg: float = Field(90.0, ge=-180.0, le=180.0, description="Calibrated upper limit.")
    home_deg: float = Field(0.0, ge=-180.0, le=180.0, description="Where the axis parks.")
    min_us: float = Field(
        500.0,
        ge=100.0,
        le=3000.0,
        description="Shortest pulse (us) ever sent to this servo: its datasheet's range, a hard "
        "limit applied after the calibration.",
    )
    max_us: float = Field(
        2500.0, ge=100.0, le=3000.0, description="Longest pulse (us) ever sent to this servo."
    )

    @model_validator(mode="after")
    def _ordered(self) -> AxisConfig:
        if not self.min_deg < self.max_deg:
            raise ValueError(f"min_deg ({self.min_deg}) must be below max_deg ({self.max_deg})")
        if not self.min_us < self.max_us:
            raise ValueError(f"min_us ({self.min_us}) must be below max_us ({self.max_us})")
        if not self.min_deg <= self.home_deg <= self.max_deg:
            raise ValueError(
                f"home_deg ({self.home_deg}) must lie within [{self.min_deg}, {self.max_deg}]"
            )
        return self


class ControlConfig(Section):
    kind: Literal["room", "naive"] = Field(
        "room",
        description="'room' = latency-compensated control in room angles; 'naive' = PID on pixel "
        "error, the hobby-tracker baseline (for benchmarks).",
    )
    kp: float = Field(3.0, ge=0.0, le=50.0, description="Proportional gain, (deg/s) per deg.")
    ki: float = Field(0.0, ge=0.0, le=50.0, description="Integral gain.")
    kd: float = Field(0.0, ge=0.0, le=5.0, description="Derivative gain.")
    dead_zone_deg: float = Field(
        1.5, ge=0.0, le=30.0, description="Hold still while the aim error is below this."
    )
    settle_deg: float = Field(
        0.4, ge=0.0, le=10.0, description="Once moving, stop when the error is below this."
    )
    predict_fraction: float = Field(
        1.0,
        ge=0.0,
        le=1.5,
        description="How far ahead to predict the teacher, as a fraction of the loop's latency "
        "(1 = all of it; less trades lag while walking for overshoot when they stop).",
    )
    still_dead_zone_deg: float = Field(
        2.5,
        ge=0.0,
        le=30.0,
        description="Dead zone while the teacher stands still (a stop leaves a small overshoot "
        "that is not worth a reversal).",
    )
    max_speed_deg_s: float = Field(120.0, gt=0.0, le=600.0, description="Velocity limit.")
    max_accel_deg_s2: float = Field(400.0, gt=0.0, le=10000.0, description="Acceleration limit.")
    lead_s: float = Field(
        0.0, ge=0.0, le=2.0, description="Lead room: aim ahead by this many seconds of walking."
    )
    max_lead_deg: float = Field(3.0, ge=0.0, le=20.0, description="Cap on the lead room.")
    actuation_latency_ms: float = Field(
        40.0, ge=0.0, le=1000.0, description="Command-to-motion delay to predict across."
    )
    tilt: bool = Field(True, description="Control tilt as well as pan.")


class GpioConfig(Section):
    """Servos driven straight from the Pi's GPIO (gpiozero)."""

    pan_pin: int = Field(
        12, ge=0, le=27, description="BCM GPIO number of the pan servo's signal (12 = PWM0)."
    )
    tilt_pin: int = Field(
        13, ge=0, le=27, description="BCM GPIO number of the tilt servo's signal (13 = PWM1)."
    )
    pin_factory: Literal["auto", "lgpio", "pigpio", "rpigpio", "native"] = Field(
        "auto",
        description="gpiozero pin factory. 'auto' = lgpio on a Pi 5, pigpio (hardware-timed "
        "pulses, needs pigpiod running) where present, else lgpio.",
    )
    frame_ms: float = Field(20.0, ge=5.0, le=40.0, description="Servo pulse period (ms).")


class SerialConfig(Section):
    """A Pololu Maestro servo controller on a serial port (compact or Pololu protocol)."""

    port: str = Field(
        "/dev/ttyACM0",
        description="pyserial URL: '/dev/ttyACM0' (Maestro USB command port), '/dev/serial0' "
        "(Pi UART), or 'spy:///dev/ttyACM0?file=/tmp/maestro.txt' to hex-dump the traffic.",
    )
    baud: int = Field(
        9600,
        ge=1200,
        le=200000,
        description="Baud rate. Ignored over USB; on the UART it must match the Maestro's "
        "'fixed baud rate' setting.",
    )
    pan_channel: int = Field(0, ge=0, le=23, description="Maestro channel of the pan servo.")
    tilt_channel: int = Field(1, ge=0, le=23, description="Maestro channel of the tilt servo.")
    device_number: int = Field(
        -1,
        ge=-1,
        le=127,
        description="-1 = compact protocol; 0-127 = Pololu protocol addressed to this device "
        "number (daisy-chained controllers; the Maestro's default is 12).",
    )
    reply_timeout_s: float = Field(
        0.05, gt=0.0, le=2.0, description="How long to wait for each reply."
    )
    retries: int = Field(
        2, ge=0, le=10, description="Retries after a missing or garbled reply before giving up."
    )
    speed_limit_deg_s: float = Field(
        180.0,
        ge=0.0,
        le=2000.0,
        description="Maestro speed limit per channel (its own ramp; 0 = none). Also makes the "
        "first move after power-up gentle.",
    )
    accel_limit_deg_s2: float = Field(
        0.0, ge=0.0, le=100000.0, description="Maestro acceleration limit per channel (0 = none)."
    )


class MotorConfig(Section):
    driver: Literal["sim", "gpio", "serial"] = Field(
        "sim", description="Servo driver: 'sim' (simulated servos), 'gpio' or 'serial'."
    )
    pan: AxisConfig = AxisConfig(min_deg=-80.0, max_deg=80.0, home_deg=0.0)
    tilt: AxisConfig = AxisConfig(min_deg=-30.0, max_deg=30.0, home_deg=-5.0)
    control: ControlConfig = ControlConfig()
    park_speed_deg_s: float = Field(
        30.0, gt=0.0, le=600.0, description="Speed of soft start and parking moves."
    )
    calibration_file: str = Field(
        "",
        description="Calibration file written by `coachcam calibrate`. Empty = "
        "~/.config/coachcam/calibration.toml of the user running coachcam. Its limits, trims and "
        "gains override this section's.",
    )
    watchdog_s: float = Field(
        1.0,
        ge=0.0,
        le=60.0,
        description="Release the servos when no command arrived for this long (a hung loop); "
        "0 = off. Also set the Maestro's own serial time-out (see hardware.md).",
    )
    gpio: GpioConfig = GpioConfig()
    serial: SerialConfig = SerialConfig()
