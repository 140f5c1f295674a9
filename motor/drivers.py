"""The one place that chooses (and builds) the servo driver: ``[motor] driver`` = sim | gpio |
serial.

The robot never falls back to simulation: a failing GPIO or serial driver raises
``ServoError`` (the daemon reports it), and only ``driver = "sim"`` gives simulated servos.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from coachcam.clock import Clock
from coachcam.errors import CalibrationError, ConfigError
from motor.calibration import (
    Calibration,
    apply_calibration,
    axis_maps,
    calibration_path,
    load_calibration,
)
from motor.servo import PanTiltHead, ServoBackend

if TYPE_CHECKING:
    from coachcam.config import Config

log = logging.getLogger(__name__)


def calibrated(cfg: Config, override: str | None = None) -> tuple[Config, Calibration | None]:
    """The config with this robot's calibration applied (limits, gains, FOV), and the calibration.

    What the daemon wants: ``cfg, cal = calibrated(cfg)``, then ``make_head(cfg, clock, cal)``
    and the controller from ``cfg.motor.control``. An axis never calibrated: the simulator runs
    it on the nominal mapping and logs that; real servos refuse to run (its direction and limits
    are unknown, and a reversed servo would drive the head away from the teacher).

    The file named by ``--calibration`` (``override``) must exist: a typo is an error; missing
    at ``[motor] calibration_file`` or the default place means not calibrated yet.
    """
    path = calibration_path(cfg.motor, override)
    cal = load_calibration(path, missing_ok=not override)
    missing = ["pan", "tilt"] if cal is None else cal.uncalibrated()
    if missing:
        first = missing[0]
        what = (
            f"not calibrated yet (no file at {path})"
            if cal is None
            else f"{path}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "not calibrated"
        )
        if cfg.motor.driver != "sim":
            raise CalibrationError(
                f"{what}: the {cfg.motor.driver} servos run only calibrated; run "
                f"`sudo coachcam calibrate axis --axis {first} --guided --config ...` "
                "for each axis"
            )
        log.warning("%s: the simulated servos use the nominal mapping there", what)
    if cal is not None:
        done = [a for a in ("pan", "tilt") if a not in missing]
        log.info("calibration %s: %s calibrated", path, " and ".join(done) or "no axis")
    return apply_calibration(cfg, cal), cal


def make_backend(
    cfg: Config,
    clock: Clock,
    calibration: Calibration | None = None,
    *,
    open_now: bool = True,
    pin_factory: Any = None,
    watchdog_s: float | None = None,
    driver: str | None = None,
    seed: int | None = None,
    start: tuple[float, float] | None = None,
) -> ServoBackend:
    """Build (and by default open) the configured driver. Raises, never silently simulates.

    ``watchdog_s`` overrides ``[motor] watchdog_s`` (0 for interactive calibration, where the
    head must hold still while a person answers a question). ``driver`` overrides ``[motor]
    driver``: ``coachcam sim``, ``replay`` and the simulated calibration plants always simulate.
    The simulated servos (``[sim.servo]``) begin at ``start`` (default: home) with ``seed``
    (default: ``[sim] seed``) for their read-back noise.
    """
    m = cfg.motor
    kind = driver or m.driver
    dog = m.watchdog_s if watchdog_s is None else watchdog_s
    if kind == "sim":
        from motor.sim import SimServoParams, SimServos

        eff = apply_calibration(cfg, calibration).motor
        return SimServos(
            clock,
            params=SimServoParams(**cfg.sim.servo.model_dump()),
            start=start or (eff.pan.home_deg, eff.tilt.home_deg),
            seed=cfg.sim.seed if seed is None else seed,
        )
    pan, tilt = axis_maps(m, calibration)
    backend: Any
    if kind == "gpio":
        from motor.gpio import GpioServos

        backend = GpioServos(pan, tilt, m.gpio, clock, pin_factory=pin_factory, watchdog_s=dog)
    elif kind == "serial":
        from motor.maestro import MaestroServos

        backend = MaestroServos(pan, tilt, m.serial, clock, watchdog_s=dog)
    else:  # the config's Literal makes this unreachable; kept for a clear message
        raise ConfigError(f"motor.driver = {kind!r}: expected 'sim', 'gpio' or 'serial'")
    todo = ["pan", "tilt"] if calibration is None else calibration.uncalibrated()
    if todo:
        log.warning(
            "servo driver %s: %s not calibrated (nominal pulse mapping)", kind, "/".join(todo)
        )
    if open_now:
        backend.open()
    return backend


def make_head(
    cfg: Config, clock: Clock, calibration: Calibration | None = None, **kw: Any
) -> PanTiltHead:
    """A ``PanTiltHead`` over the configured driver, with the calibrated limits."""
    eff = apply_calibration(cfg, calibration).motor
    backend = make_backend(cfg, clock, calibration, **kw)
    return PanTiltHead(
        backend, eff.pan, eff.tilt, clock, park_speed_deg_s=eff.park_speed_deg_s,
        max_speed_deg_s=eff.control.max_speed_deg_s,
    )  # fmt: skip
