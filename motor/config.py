"""The ``[motor]`` config section: driver choice, limits and controller gains."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from coachcam.configbase import Section


class AxisConfig(Section):
    min_deg: float = Field(-90.0, ge=-180.0, le=180.0, description="Calibrated lower limit.")
    max_deg: float = Field(90.0, ge=-180.0, le=180.0, description="Calibrated upper limit.")
    home_deg: float = Field(0.0, ge=-180.0, le=180.0, description="Where the axis parks.")

    @model_validator(mode="after")
    def _ordered(self) -> AxisConfig:
        if not self.min_deg < self.max_deg:
            raise ValueError(f"min_deg ({self.min_deg}) must be below max_deg ({self.max_deg})")
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
    max_speed_deg_s: float = Field(120.0, gt=0.0, le=600.0, description="Velocity limit.")
    max_accel_deg_s2: float = Field(400.0, gt=0.0, le=10000.0, description="Acceleration limit.")
    lead_s: float = Field(
        0.0, ge=0.0, le=2.0, description="Lead room: aim ahead by this many seconds of walking."
    )
    max_lead_deg: float = Field(3.0, ge=0.0, le=20.0, description="Cap on the lead room.")
    velocity_gain: float = Field(
        0.6, ge=0.0, le=1.0, description="Alpha-beta filter beta (bearing velocity gain)."
    )
    position_gain: float = Field(
        0.6, ge=0.0, le=1.0, description="Alpha-beta filter alpha (bearing position gain)."
    )
    actuation_latency_ms: float = Field(
        40.0, ge=0.0, le=1000.0, description="Command-to-motion delay to predict across."
    )
    tilt: bool = Field(True, description="Control tilt as well as pan.")


class MotorConfig(Section):
    driver: Literal["sim", "gpio", "serial"] = Field(
        "sim", description="Servo driver: 'sim' (simulated servos), 'gpio' or 'serial'."
    )
    pan: AxisConfig = AxisConfig(min_deg=-80.0, max_deg=80.0, home_deg=0.0)
    tilt: AxisConfig = AxisConfig(min_deg=-30.0, max_deg=30.0, home_deg=-5.0)
    control: ControlConfig = ControlConfig()  # type: ignore[call-arg]
    park_speed_deg_s: float = Field(
        30.0, gt=0.0, le=600.0, description="Speed of soft start and parking moves."
    )
