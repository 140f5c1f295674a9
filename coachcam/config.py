"""Typed configuration: one TOML file, loaded once, validated, passed down.

The schema lives here and in each package's ``config.py``; ``config/coachcam.toml`` documents
the defaults (a test keeps the two equal). Any problem becomes a ``ConfigError`` whose message is
one line naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from coachcam.configbase import Section
from coachcam.errors import ConfigError
from motor.config import MotorConfig
from stream.config import StreamConfig
from tracker.config import TrackerConfig


class CameraConfig(Section):
    source: Literal["sim", "picamera2", "v4l2", "file"] = Field("sim", description="Frame source.")
    width: int = Field(1280, ge=160, le=4608, description="Main stream width (px).")
    height: int = Field(720, ge=120, le=2592, description="Main stream height (px).")
    fps: float = Field(30.0, gt=0.0, le=120.0, description="Frame rate.")
    hfov_deg: float = Field(
        66.0,
        gt=10.0,
        lt=170.0,
        description="Horizontal field of view (Camera Module 3: 66, wide: 102).",
    )
    lores_width: int = Field(640, ge=96, le=1920, description="Width of the tracker's lores copy.")
    height_m: float = Field(2.0, gt=0.2, le=6.0, description="Mount height above the floor (m).")
    device: str = Field("/dev/video0", description="V4L2 device (source = 'v4l2').")
    file: str = Field("", description="Video file to play as the camera (source = 'file').")
    loop_file: bool = Field(False, description="Replay the file from the start when it ends.")


class ServoSimConfig(Section):
    speed_deg_per_s: float = Field(
        400.0, gt=0.0, le=5000.0, description="Servo speed (a hobby servo: 60 deg per 0.15 s)."
    )
    accel_deg_s2: float = Field(4000.0, gt=0.0, le=1e6, description="Servo acceleration.")
    dead_band_deg: float = Field(0.1, ge=0.0, le=5.0, description="Servo dead band.")
    quantum_deg: float = Field(
        0.09, ge=0.0, le=5.0, description="Command resolution (1 us of pulse ~ 0.09 deg)."
    )
    latency_ms: float = Field(20.0, ge=0.0, le=1000.0, description="Command-to-motion latency.")
    readback_noise_deg: float = Field(0.1, ge=0.0, le=5.0, description="Position read-back noise.")


class SimFaultsConfig(Section):
    """Faults the simulated camera injects, so tests can run the real daemon through them."""

    camera_gap_s: tuple[float, float] = Field(
        (0.0, 0.0),
        description="The simulated camera fails (CameraError, as if unplugged) from the first to "
        "the second time, in s after its first frame; equal times = no gap.",
    )
    encoder_errors_at_s: list[float] = Field(
        [],
        description="The H.264 encoder throws at each of these times (s on the stream clock); "
        "one throw restarts it, three within a minute stop the daemon (exit 5).",
    )
    hang_at_s: float = Field(
        0.0,
        ge=0.0,
        description="The simulated camera's read blocks for good this many s after its first "
        "frame (a hung frame loop: the watchdog pings stop); 0 = never.",
    )

    @model_validator(mode="after")
    def _gap_ordered(self) -> SimFaultsConfig:
        start, end = self.camera_gap_s
        if not 0.0 <= start <= end:
            raise ValueError(
                f"camera_gap_s [{start}, {end}] must be [start, end] with 0 <= start <= end"
            )
        return self


class SimConfig(Section):
    scenario: str = Field("board-to-desks", description="Built-in scenario name or a TOML file.")
    seed: int = Field(1, ge=0, description="Random seed.")
    inference_ms: float = Field(
        120.0, ge=0.0, le=2000.0, description="Perception latency (capture to result)."
    )
    keypoint_noise_px: float = Field(2.0, ge=0.0, le=50.0, description="Oracle keypoint noise.")
    miss_rate: float = Field(0.03, ge=0.0, le=1.0, description="Chance a visible person is missed.")
    false_rate: float = Field(
        0.01, ge=0.0, le=1.0, description="Chance per frame of a false person detection."
    )
    min_person_px: float = Field(
        60.0, ge=0.0, le=2000.0, description="People shorter than this in the image are missed."
    )
    servo: ServoSimConfig = ServoSimConfig()
    faults: SimFaultsConfig = SimFaultsConfig()


class Config(Section):
    camera: CameraConfig = CameraConfig()
    tracker: TrackerConfig = TrackerConfig()
    motor: MotorConfig = MotorConfig()
    stream: StreamConfig = StreamConfig()
    sim: SimConfig = SimConfig()


def effective_detector(cfg: Config) -> Literal["oracle", "mediapipe"]:
    """The pose detector ``tracker.detector`` names; ``auto`` = the simulated classroom's oracle
    for ``camera.source = 'sim'``, the MediaPipe landmarker for a real camera."""
    d = cfg.tracker.detector
    if d == "auto":
        return "oracle" if cfg.camera.source == "sim" else "mediapipe"
    return d


def _allowed(model: type[Section] | None, loc: tuple[Any, ...]) -> str:
    """The keys allowed at ``loc`` (for an unknown-key message)."""
    cur: Any = model
    for part in loc[:-1]:
        fields = getattr(cur, "model_fields", None)
        if not fields or part not in fields:
            return ""
        cur = fields[part].annotation
    fields = getattr(cur, "model_fields", None)
    return ", ".join(sorted(fields)) if fields else ""


def format_validation_error(
    exc: ValidationError, source: str, model: type[Section] | None = None, data: Any = None
) -> str:
    """One line for the first error: where, which key, which value, what is allowed."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"])
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    key = key or "(top level)"
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed(model, loc)
        tail = f"; allowed keys here: {allowed}" if allowed else ""
        return f"{source}: unknown key '{key}'{tail}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    shown = repr(value) if not isinstance(value, dict) else "(section)"
    return f"{source}: {key} = {shown}: {msg}"


def parse_config(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, Config, data)) from None


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            f"save the {what} file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate; ``None`` means the built-in defaults."""
    data: dict[str, Any] = {} if path is None else read_toml(Path(path))
    for dotted, value in (overrides or {}).items():
        cur = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[leaf] = value
    return parse_config(data, str(path) if path is not None else "config")
