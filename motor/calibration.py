"""The calibration file: what ``coachcam calibrate`` measured on this particular robot.

It is separate from the config (which describes the *kind* of robot): centre trim, pulse width
per degree, direction and mechanical limits per axis, the camera's measured pixels per degree,
and auto-tuned controller gains. It is written atomically and the previous file is kept as
``<name>.bak``.

Limits: the config's ``[motor.pan]``/``[motor.tilt]`` limits and the calibration's limits are
*both* enforced (their intersection), and every pulse is finally clamped to the config's
``min_us``/``max_us``. A technician can narrow the range in the config but never widen it past
what was measured on the mechanism.
"""

from __future__ import annotations

import logging
import math
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator

from coachcam.atomic import write_atomic
from coachcam.configbase import Section
from coachcam.errors import CalibrationError
from motor.config import AxisConfig, MotorConfig

if TYPE_CHECKING:
    from coachcam.config import Config

log = logging.getLogger(__name__)

# A typical hobby servo: 500..2500 us over 180 degrees.
NOMINAL_US_PER_DEG = 2000.0 / 180.0
US_PER_DEG_RANGE = (1.0, 50.0)  # above the first, up to the second


class AxisCalibration(Section):
    centre_us: float = Field(
        1500.0,
        ge=400.0,
        le=2600.0,
        description="Pulse width (us) that points the axis straight ahead (centre trim included).",
    )
    us_per_deg: float = Field(
        NOMINAL_US_PER_DEG,
        gt=US_PER_DEG_RANGE[0],
        le=US_PER_DEG_RANGE[1],
        description="Pulse width change per degree.",
    )
    direction: Literal[1, -1] = Field(
        1, description="+1 if a longer pulse turns right/up, -1 if the servo is mounted reversed."
    )
    min_deg: float = Field(-90.0, ge=-180.0, le=180.0, description="Measured mechanical limit.")
    max_deg: float = Field(90.0, ge=-180.0, le=180.0, description="Measured mechanical limit.")

    @model_validator(mode="after")
    def _ordered(self) -> AxisCalibration:
        if not self.min_deg < self.max_deg:
            raise ValueError(f"min_deg ({self.min_deg}) must be below max_deg ({self.max_deg})")
        return self


class CameraCalibration(Section):
    px_per_deg: float | None = Field(
        None, gt=0.0, le=1000.0, description="Image shift per degree of pan at the centre."
    )
    tilt_px_per_deg: float | None = Field(
        None, gt=0.0, le=1000.0, description="Image shift per degree of tilt at the centre."
    )
    hfov_deg: float | None = Field(None, gt=10.0, lt=170.0, description="Measured horizontal FOV.")
    width: int | None = Field(None, ge=16, le=10000, description="Frame width it was measured at.")


class ControlCalibration(Section):
    """Auto-tuned gains, in ``[motor.control]``'s terms. ``calibrate autotune`` writes all four
    (a file with some of them is cut off: an error); no section keeps the config's values."""

    kp: float | None = Field(None, ge=0.0, le=50.0)
    max_speed_deg_s: float | None = Field(None, gt=0.0, le=600.0)
    max_accel_deg_s2: float | None = Field(None, gt=0.0, le=10000.0)
    actuation_latency_ms: float | None = Field(None, ge=0.0, le=1000.0)


class Calibration(Section):
    """One robot's calibration. An axis that is ``None`` was never calibrated: the simulator runs
    it on the nominal mapping (and says so), real servos refuse to run (``motor.drivers``)."""

    version: int = Field(1, ge=1, le=1)
    pan: AxisCalibration | None = None
    tilt: AxisCalibration | None = None
    camera: CameraCalibration = CameraCalibration()
    control: ControlCalibration = ControlCalibration()

    def axis(self, name: str) -> AxisCalibration:
        """The axis's calibration, or the nominal one to start calibrating from."""
        cal = self.pan if name == "pan" else self.tilt
        return cal if cal is not None else AxisCalibration()

    def uncalibrated(self) -> list[str]:
        return [name for name in ("pan", "tilt") if getattr(self, name) is None]

    def with_axis(self, name: str, **changes: Any) -> Calibration:
        """A copy with some of one axis's fields changed (validated); an uncalibrated axis
        starts from the nominal values."""
        data = self.model_dump()
        data[name] = {**self.axis(name).model_dump(), **changes}
        return parse_calibration(data, "calibration")


# -- mapping degrees to pulses ------------------------------------------------------------------


@dataclass(frozen=True)
class AxisMap:
    """Degrees → pulse width for one axis, with both clamps. Built by ``axis_map``."""

    min_deg: float
    max_deg: float
    home_deg: float
    centre_us: float
    us_per_deg: float
    direction: int
    min_us: float
    max_us: float

    def clamp_deg(self, deg: float) -> float:
        return min(self.max_deg, max(self.min_deg, deg))

    def to_us(self, deg: float) -> float:
        """The pulse for ``deg``: clamped in degrees, mapped, then clamped in pulse width."""
        us = self.centre_us + self.direction * self.us_per_deg * self.clamp_deg(deg)
        return min(self.max_us, max(self.min_us, us))

    def to_deg(self, us: float) -> float:
        return (us - self.centre_us) / (self.direction * self.us_per_deg)


def effective_axis(axis: AxisConfig, cal: AxisCalibration | None) -> AxisConfig:
    """The config's axis narrowed to the calibrated limits (home clamped into them)."""
    if cal is None:
        return axis
    lo, hi = max(axis.min_deg, cal.min_deg), min(axis.max_deg, cal.max_deg)
    if not lo < hi:
        raise CalibrationError(
            f"the config's limits [{axis.min_deg}, {axis.max_deg}] and the calibrated limits "
            f"[{cal.min_deg}, {cal.max_deg}] do not overlap"
        )
    home = min(hi, max(lo, axis.home_deg))
    return axis.model_copy(update={"min_deg": lo, "max_deg": hi, "home_deg": home})


def axis_map(axis: AxisConfig, cal: AxisCalibration | None) -> AxisMap:
    c = cal or AxisCalibration()
    eff = effective_axis(axis, cal)
    return AxisMap(
        min_deg=eff.min_deg,
        max_deg=eff.max_deg,
        home_deg=eff.home_deg,
        centre_us=c.centre_us,
        us_per_deg=c.us_per_deg,
        direction=c.direction,
        min_us=axis.min_us,
        max_us=axis.max_us,
    )


def axis_maps(motor: MotorConfig, cal: Calibration | None) -> tuple[AxisMap, AxisMap]:
    return (
        axis_map(motor.pan, cal.pan if cal else None),
        axis_map(motor.tilt, cal.tilt if cal else None),
    )


def apply_calibration(cfg: Config, cal: Calibration | None) -> Config:
    """The config with the calibration applied: narrowed limits, tuned gains, measured FOV."""
    if cal is None:
        return cfg
    control = cfg.motor.control.model_copy(
        update={k: v for k, v in cal.control.model_dump().items() if v is not None}
    )
    motor = cfg.motor.model_copy(
        update={
            "pan": effective_axis(cfg.motor.pan, cal.pan),
            "tilt": effective_axis(cfg.motor.tilt, cal.tilt),
            "control": control,
        }
    )
    camera = cfg.camera
    if cal.camera.hfov_deg is not None:
        camera = camera.model_copy(update={"hfov_deg": cal.camera.hfov_deg})
    return cfg.model_copy(update={"motor": motor, "camera": camera})


# -- the file -----------------------------------------------------------------------------------


def default_calibration_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("coachcam") / "calibration.toml"


def calibration_path(motor: MotorConfig, override: str | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    if motor.calibration_file:
        return Path(motor.calibration_file).expanduser()
    return default_calibration_path()


# Every key `coachcam calibrate` writes is required when the section is there at all, so a
# cut-off file is an error and never a nominal value (a direction of -1 must not become +1).
_AXIS_KEYS = tuple(AxisCalibration.model_fields)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "pan": _AXIS_KEYS,
    "tilt": _AXIS_KEYS,
    "control": tuple(ControlCalibration.model_fields),  # autotune writes all four
    "camera": ("px_per_deg", "hfov_deg", "width"),  # fov of pan; tilt_px_per_deg is its own
}
_RERUN = {
    "pan": "coachcam calibrate axis --axis pan",
    "tilt": "coachcam calibrate axis --axis tilt",
    "control": "coachcam calibrate autotune",
    "camera": "coachcam calibrate fov",
}
# Sections that may be written empty (files from before they were optional have `[camera]`).
_MAY_BE_EMPTY = ("control", "camera")


def _missing_key(data: dict[str, Any]) -> tuple[str, str] | None:
    """The first key a complete file would have and this one lacks, and what re-writes it."""
    if "version" not in data:
        return "version", "coachcam calibrate axis|fov|autotune"
    for section, keys in _REQUIRED.items():
        part = data.get(section)
        if not isinstance(part, dict):
            continue  # absent (not calibrated) or not a table: the model says what is wrong
        present = [k for k in keys if part.get(k) is not None]
        if section in _MAY_BE_EMPTY and not present:
            continue
        for k in keys:
            if part.get(k) is None:
                return f"{section}.{k}", _RERUN[section]
    return None


def parse_calibration(data: dict[str, Any], source: str) -> Calibration:
    """Validate (a wrong value or an unknown key first), then insist the file is complete."""
    try:
        cal = Calibration.model_validate(data)
    except ValidationError as exc:
        from coachcam.config import format_validation_error

        raise CalibrationError(format_validation_error(exc, source, Calibration, data)) from None
    missing = _missing_key(data)
    if missing is not None:
        key, rerun = missing
        raise CalibrationError(
            f"{source}: {key} is missing (every key the calibration writes is required; an "
            f"empty or cut-off file?): re-run `{rerun} --config ...`"
        )
    return cal


def load_calibration(path: Path, missing_ok: bool = True) -> Calibration | None:
    """Read and validate; a missing file is ``None`` (uncalibrated) when ``missing_ok``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None  # not calibrated yet: the caller says what that means for it
        raise CalibrationError(
            f"calibration file not found: {path} (check the path, or write it with "
            "`coachcam calibrate`)"
        ) from None
    except PermissionError:
        raise CalibrationError(
            f"cannot read calibration file {path} ({describe_access(path)}): permission denied; "
            f"the service's user reads it through its group: "
            f"`sudo chgrp coachcam {path} && sudo chmod 0640 {path}`"
        ) from None
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CalibrationError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "write it again with `coachcam calibrate`"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"{path}: not valid TOML: {exc}") from None
    return parse_calibration(data, str(path))


def _toml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise CalibrationError(f"refusing to write a non-finite value ({v})")
        return repr(v)
    raise TypeError(f"cannot write {v!r}")


def render_calibration(cal: Calibration) -> str:
    # Written by hand: tomli-w is only a dev dependency and this file is flat tables of numbers.
    out = [
        "# coachcam calibration, written by `coachcam calibrate` (the previous one: .bak)",
        f"version = {cal.version}",
    ]
    for section in ("pan", "tilt", "camera", "control"):
        model = getattr(cal, section)
        if model is None or all(v is None for v in model.model_dump().values()):
            continue  # not calibrated / not measured: no section, never nominal values
        out.append(f"\n[{section}]")
        for key, value in model.model_dump().items():
            if value is None:
                continue
            desc = type(model).model_fields[key].description
            if desc:
                out.append(f"# {desc}")
            out.append(f"{key} = {_toml_scalar(value)}")
    return "\n".join(out) + "\n"


NEW_FILE_MODE = 0o640


def describe_access(path: Path) -> str:
    """``0640 root:coachcam``, for messages."""
    import grp
    import pwd

    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.S_IMODE(st.st_mode):04o} {owner}:{group}"


def readable_by(path: Path, user: str) -> bool | None:
    """Whether ``user`` may read ``path`` by its permission bits (None: no such user)."""
    import grp
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None
    if pw.pw_uid == 0:
        return True
    gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}

    def may(p: Path, bits: tuple[int, int, int]) -> bool:
        st = p.stat()
        if st.st_uid == pw.pw_uid:
            return bool(st.st_mode & bits[0])
        if st.st_gid in gids:
            return bool(st.st_mode & bits[1])
        return bool(st.st_mode & bits[2])

    dirs = [path.parent, *path.parent.parents]
    return all(may(d, (0o100, 0o010, 0o001)) for d in dirs) and may(path, (0o400, 0o040, 0o004))


def save_calibration(cal: Calibration, path: Path) -> Path | None:
    """Write atomically and durably, keeping the previous file as ``.bak``; returns the
    backup's path. Who may read it: an existing file keeps its mode, owner and group; a new one
    is 0640 with its directory's group (``coachcam install`` makes /etc/coachcam
    root:coachcam, so the ``User=coachcam`` service reads what ``sudo coachcam calibrate``
    writes)."""
    text = render_calibration(cal)
    parse_calibration(tomllib.loads(text), "rendered calibration")  # never write what won't load
    path = Path(path)
    try:
        backup = write_atomic(
            path, text, mode=NEW_FILE_MODE, keep_access=True, dir_group=True, backup=True
        )
    except OSError as exc:
        raise CalibrationError(
            f"cannot write calibration file {path}: {exc.strerror or exc}"
        ) from None
    log.info("calibration written to %s", path)
    return backup
