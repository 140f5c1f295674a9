"""``coachcam check``: move each axis a little and verify it, in plain words.

Opens the configured servo driver with the calibration, moves gently to home, then nudges pan and
tilt by a few degrees and back, comparing the controller's read-back with the command where
the driver has read-back (Maestro, simulation). Hobby servos on GPIO report nothing back: the
technician is told what to watch for. Exit status 0 = all good, 3 = a servo problem.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from coachcam.cliargs import finite_float

NUDGE_DEG = finite_float(0.0, 45.0, lo_open=True)  # a nudge, not a sweep


def nudge_fits(cfg: Any, degrees: float) -> None:
    """Raise ``ConfigError`` unless each axis can move ``degrees`` one way or the other from
    home within its (calibrated) limits: ``check`` never drives an axis to a limit."""
    from coachcam.errors import ConfigError

    for name in ("pan", "tilt"):
        ax = getattr(cfg.motor, name)
        if ax.home_deg + degrees > ax.max_deg and ax.home_deg - degrees < ax.min_deg:
            room = max(ax.max_deg - ax.home_deg, ax.home_deg - ax.min_deg)
            raise ConfigError(
                f"--degrees {degrees:g}: the {name} axis moves {ax.min_deg:g}..{ax.max_deg:g} deg "
                f"around home {ax.home_deg:g}; allowed at most {room:g}"
            )


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check", parents=[common], help="move each axis a little and verify it (servo self-test)"
    )
    p.add_argument("--calibration", metavar="PATH", help="calibration file (default: configured)")
    p.add_argument(
        "--degrees",
        type=NUDGE_DEG,
        default=3.0,
        help="how far to nudge each axis (above 0, at most 45 and within the axis's limits)",
    )
    p.add_argument(
        "--tolerance",
        type=finite_float(0.0, 10.0, lo_open=True),
        default=0.75,
        help="largest read-back error accepted (deg)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    from coachcam.commands.calibrate import sigterm_as_interrupt
    from coachcam.instance import one_instance

    with sigterm_as_interrupt(), one_instance("check the servos"):
        return _check(args, say)


def _check(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from coachcam.clock import FakeClock, MonotonicClock
    from coachcam.config import load_config
    from coachcam.errors import CoachcamError
    from motor.calibration import apply_calibration, calibration_path, load_calibration
    from motor.drivers import make_head

    cfg = load_config(getattr(args, "config", None))
    path = calibration_path(cfg.motor, args.calibration)
    cal = load_calibration(path, missing_ok=not args.calibration)  # a typo'd path: an error
    nudge_fits(apply_calibration(cfg, cal), args.degrees)
    sim = cfg.motor.driver == "sim"
    say(f"Servo driver: {_describe(cfg)}")
    todo = ", ".join(cal.uncalibrated()) if cal else ""
    say(f"Calibration: none at {path} (nominal mapping)" if not cal else f"Calibration: {path}"
        + (f" ({todo} not calibrated: nominal mapping)" if todo else ""))  # fmt: skip
    clock: Any = FakeClock() if sim else MonotonicClock()
    try:
        head = make_head(cfg, clock, cal)
    except CoachcamError as exc:
        say(f"FAIL: could not start the servos: {exc}")
        return exc.exit_code
    failures = 0
    try:
        head.soft_start()
        settle = 0.4
        for i, name in enumerate(("pan", "tilt")):
            ax = (head.pan_axis, head.tilt_axis)[i]
            home = [head.pan_axis.home_deg, head.tilt_axis.home_deg]
            d = args.degrees if home[i] + args.degrees <= ax.max_deg else -args.degrees
            way = ("right" if d > 0 else "left") if i == 0 else ("up" if d > 0 else "down")
            for target_deg, label in ((home[i] + d, f"{abs(d):g} deg {way}"), (home[i], "back")):
                target = list(home)
                target[i] = target_deg
                head.move_smoothly(target[0], target[1])
                clock.wait(settle)
                pos = head.read_position()
                if pos is None:
                    say(f"  {name}: moved {label} — no read-back on this driver: check by eye")
                    continue
                err = pos[i] - target_deg
                ok = abs(err) <= args.tolerance
                failures += not ok
                say(
                    f"  {name}: moved {label}: asked {target_deg:+.1f} deg, "
                    f"it reports {pos[i]:+.1f} deg — "
                    + ("OK" if ok else f"OFF BY {err:+.1f} deg (blocked, loose or miscalibrated?)")
                )
        from motor.maestro import MaestroServos, error_names

        if isinstance(head.backend, MaestroServos):  # the one driver with an error register
            bits = head.backend.get_errors()
            say("  controller errors: " + ("none" if not bits else "; ".join(error_names(bits))))
            failures += bool(bits)
    except CoachcamError as exc:
        say(f"FAIL: {exc}")
        return exc.exit_code
    finally:
        head.close()  # parks, also on Ctrl-C or SIGTERM
    say("All good." if not failures else f"{failures} problem(s) found.")
    return 0 if not failures else 3


def _describe(cfg: Any) -> str:
    m = cfg.motor
    if m.driver == "gpio":
        return (
            f"GPIO servos on GPIO{m.gpio.pan_pin} (pan) and GPIO{m.gpio.tilt_pin} (tilt), "
            f"pin factory {m.gpio.pin_factory}"
        )
    if m.driver == "serial":
        return (
            f"Pololu Maestro on {m.serial.port} at {m.serial.baud} baud, channels "
            f"{m.serial.pan_channel} (pan) and {m.serial.tilt_channel} (tilt)"
        )
    return "simulated servos"
