"""``coachcam calibrate``: servo trims and limits, camera field of view, controller gains.

Guided (``axis --guided`` asks questions and moves the head in small, slow steps; ``s``
releases the servos at once, Ctrl-C or the end of input parks the head; neither saves) or
scripted with flags. Everything is written to the
calibration file (``--calibration PATH``, else ``[motor] calibration_file``, else
``~/.config/coachcam/calibration.toml``) atomically, keeping the previous one as ``.bak``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from coachcam.cliargs import finite_float
from coachcam.instance import SERVICE_USER

if TYPE_CHECKING:
    from coachcam.clock import Clock
    from coachcam.config import Config
    from motor.calibration import Calibration
    from motor.servo import PanTiltHead

log = logging.getLogger(__name__)


def _floats(text: str) -> tuple[float, ...]:
    deg = finite_float(-45.0, 45.0)
    try:
        return tuple(deg(x) for x in text.split(",") if x.strip())
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated degrees, got {text!r} ({exc})"
        ) from None


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "calibrate",
        parents=[common],
        help="calibrate servos (trim, direction, limits), camera field of view, control gains",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    shared.add_argument("--calibration", metavar="PATH", help="calibration file to read and write")
    shared.add_argument(
        "--dry-run", action="store_true", help="print the new calibration instead of writing it"
    )
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")

    what.add_parser("show", parents=[shared], help="print the current calibration")

    ax = what.add_parser(
        "axis",
        parents=[shared],
        help="centre trim, direction, pulse width per degree and limits of one axis",
    )
    ax.add_argument("--axis", choices=["pan", "tilt"], required=True)
    ax.add_argument("--guided", action="store_true", help="ask questions and move the head")
    ax.add_argument(
        "--steps",
        default="centre,direction,scale,limits",
        help="guided steps to run, in order (default: all four)",
    )
    ax.add_argument(
        "--centre-us",
        type=finite_float(400.0, 2600.0),
        help="pulse width (us) that points straight ahead",
    )
    ax.add_argument(
        "--trim-us",
        type=finite_float(-500.0, 500.0),
        help="add this to the centre pulse width (us)",
    )
    ax.add_argument(
        "--us-per-deg",
        type=finite_float(1.0, 50.0, lo_open=True),
        help="pulse width change per degree",
    )
    ax.add_argument("--direction", choices=["1", "-1", "flip"], help="servo direction")
    ax.add_argument(
        "--min-deg", type=finite_float(-180.0, 180.0), help="lower mechanical limit (deg)"
    )
    ax.add_argument(
        "--max-deg", type=finite_float(-180.0, 180.0), help="upper mechanical limit (deg)"
    )

    fov = what.add_parser(
        "fov", parents=[shared], help="measure pixels per degree by moving an axis known angles"
    )
    fov.add_argument("--axis", choices=["pan", "tilt", "both"], default="both")
    fov.add_argument(
        "--angles", type=_floats, default=(-6.0, -3.0, 3.0, 6.0), help="degrees, e.g. -6,-3,3,6"
    )
    fov.add_argument(
        "--source",
        choices=["sim", "camera"],
        help="'sim' = simulated camera on simulated servos (default when [camera] source = "
        "'sim'); 'camera' = the configured camera on the configured servos",
    )
    fov.add_argument(
        "--settle-s", type=finite_float(0.0, 10.0), default=0.5, help="wait after each move"
    )

    at = what.add_parser(
        "autotune", parents=[shared], help="step-response auto-tune of [motor.control] gains"
    )
    at.add_argument("--axis", choices=["pan", "tilt"], default="pan")
    at.add_argument(
        "--plant",
        choices=["sim", "hardware"],
        help="where to measure the step response: the simulated servos ([sim.servo]) or the "
        "configured driver (needs read-back: the Maestro). Default: sim when driver = 'sim'",
    )
    at.add_argument(
        "--step-deg", type=finite_float(5.0, 180.0), default=60.0, help="identification step size"
    )
    at.add_argument(
        "--settle-target-s",
        type=finite_float(0.1, 10.0),
        default=1.2,
        help="a 30 deg step must settle this fast",
    )
    p.set_defaults(func=run)


# -- shared plumbing ---------------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> tuple[Config, Calibration, Any]:
    from coachcam.config import load_config
    from motor.calibration import Calibration, calibration_path, load_calibration

    cfg = load_config(getattr(args, "config", None))
    path = calibration_path(cfg.motor, getattr(args, "calibration", None))
    cal = load_calibration(path, missing_ok=True) or Calibration()
    return cfg, cal, path


def _save(args: argparse.Namespace, cal: Calibration, path: Any) -> None:
    from motor.calibration import (
        describe_access,
        readable_by,
        render_calibration,
        save_calibration,
    )

    if args.dry_run:
        print(render_calibration(cal), end="")
        print(f"(dry run: {path} not written)")
        return
    backup = save_calibration(cal, path)
    print(f"calibration written to {path}" + (f" (previous kept as {backup})" if backup else ""))
    if readable_by(path, SERVICE_USER) is False:
        print(
            f"warning: the service's user {SERVICE_USER} cannot read {path} "
            f"({describe_access(path)}): `sudo coachcam install` gives /etc/coachcam the group "
            f"{SERVICE_USER}, or `sudo chgrp {SERVICE_USER} {path} && sudo chmod 0640 {path}`",
            file=sys.stderr,
        )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt here, so the head still parks or releases on its way out."""

    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. under a test runner's thread): leave it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _clock(sim: bool) -> Clock:
    """Simulated hardware needs no real time; real hardware does."""
    from coachcam.clock import FakeClock, MonotonicClock

    return FakeClock() if sim else MonotonicClock()


def run(args: argparse.Namespace) -> int:
    from coachcam.instance import one_instance

    # `show` only reads a file; every other step may move the servos: one instance per robot.
    alone = one_instance("calibrate") if args.what != "show" else contextlib.nullcontext()
    with sigterm_as_interrupt(), alone:
        steps = {"show": _show, "axis": _axis, "fov": _fov, "autotune": _autotune}
        return int(steps[args.what](args))


# -- show --------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from motor.calibration import render_calibration

    _cfg, cal, path = _setup(args)
    todo = cal.uncalibrated()
    print(f"# {path}" + ("" if path.exists() else " (not written yet)"))
    if todo:
        print(f"# not calibrated: {', '.join(todo)} (`coachcam calibrate axis --axis {todo[0]}`)")
    print(render_calibration(cal), end="")
    return 0


# -- axis --------------------------------------------------------------------------------------


def _axis(args: argparse.Namespace) -> int:
    from coachcam.errors import CalibrationError
    from motor.calibration import effective_axis

    cfg, cal, path = _setup(args)
    a = cal.axis(args.axis)
    changes: dict[str, Any] = {}
    if args.centre_us is not None:
        changes["centre_us"] = args.centre_us
    if args.trim_us is not None:
        changes["centre_us"] = changes.get("centre_us", a.centre_us) + args.trim_us
    if args.us_per_deg is not None:
        changes["us_per_deg"] = args.us_per_deg
    if args.direction is not None:
        changes["direction"] = -a.direction if args.direction == "flip" else int(args.direction)
    if args.min_deg is not None:
        changes["min_deg"] = args.min_deg
    if args.max_deg is not None:
        changes["max_deg"] = args.max_deg
    if changes:
        cal = cal.with_axis(args.axis, **changes)
        effective_axis(getattr(cfg.motor, args.axis), cal.axis(args.axis))  # overlap check
        if args.min_deg is not None or args.max_deg is not None:
            from motor.guided import limits_problem

            a = cal.axis(args.axis)
            home = getattr(cfg.motor, args.axis).home_deg
            problem = limits_problem(args.axis, a.min_deg, a.max_deg, home)
            if problem:
                raise CalibrationError(
                    f"{args.axis} limits {a.min_deg:g}..{a.max_deg:g}: {problem}"
                )
    if args.guided:
        cal = _guided(args, cfg, cal)
    elif not changes:
        raise CalibrationError(
            "nothing to do: give --guided, or values (--trim-us, --centre-us, --us-per-deg, "
            "--direction, --min-deg, --max-deg)"
        )
    _save(args, cal, path)
    return 0


def _guided(args: argparse.Namespace, cfg: Config, cal: Calibration) -> Calibration:
    from coachcam.errors import CalibrationError
    from motor.calibration import apply_calibration
    from motor.drivers import make_head
    from motor.guided import EndOfInput, GuidedSession, Stop

    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    bad = [s for s in steps if s not in ("centre", "direction", "scale", "limits")]
    if bad:
        raise CalibrationError(f"unknown guided step(s) {', '.join(bad)}")
    clock = _clock(cfg.motor.driver == "sim")
    head = make_head(cfg, clock, cal, watchdog_s=0.0)  # holds still while a person answers
    eff = apply_calibration(cfg, cal).motor
    i = 0 if args.axis == "pan" else 1
    print(
        f"Calibrating {args.axis} on the {cfg.motor.driver} driver. The head moves slowly; "
        "type s at any prompt to stop and release the servos at once, or press Ctrl-C to park."
    )
    session = GuidedSession(
        head.backend,
        cfg.motor,
        cal,
        clock,
        ask=lambda q: input(q),
        pos=[eff.pan.home_deg, eff.tilt.home_deg],
    )
    # `s` releases the servos at once (something is caught); Ctrl-C, SIGTERM and the end of
    # input park the head slowly from wherever it is (a second Ctrl-C while parking releases).
    try:
        head.soft_start()
        session.pos = list(head.commanded or session.pos)
        result = session.run(i, steps)
        _park(head, session)
    except Stop:
        _release(head)
        raise CalibrationError("stopped: servos released, nothing saved") from None
    except KeyboardInterrupt:
        _park(head, session)
        print("\ncoachcam: interrupted: head parked, nothing saved", file=sys.stderr)
        raise
    except EndOfInput:
        _park(head, session)
        raise CalibrationError(
            "end of input at a prompt (guided calibration needs a terminal): head parked, "
            "nothing saved"
        ) from None
    except BaseException:
        _park(head, session)
        raise
    finally:
        head.close()  # the head is home already (a no-op after a release)
    return result


def _park(head: Any, session: Any) -> None:
    """Park through the session (it knows where it left the head and the map it uses); the
    head then knows it is home. Interrupted while parking: release at once."""
    if head.closed:
        return
    try:
        session.park()
    except BaseException:
        _release(head)
        raise
    head.commanded = (session.pos[0], session.pos[1])


def _release(head: PanTiltHead) -> None:
    head.close(park=False)  # released: no parking move on the way out


# -- fov ---------------------------------------------------------------------------------------


def _fov(args: argparse.Namespace) -> int:
    from coachcam.errors import CalibrationError
    from coachcam.geometry import Intrinsics
    from motor.calibration import apply_calibration
    from motor.fov import measure_fov
    from motor.servo import PanTiltHead

    cfg, cal, path = _setup(args)
    source = args.source or ("sim" if cfg.camera.source == "sim" else "camera")
    eff = apply_calibration(cfg, cal)
    closers: list[Any] = []
    if source == "camera":
        if cfg.camera.source == "sim":
            raise CalibrationError(
                "[camera] source = 'sim': use --source sim, or configure a camera"
            )
        from coachcam.clock import MonotonicClock
        from motor.drivers import make_head
        from stream.sources import open_source

        clock: Clock = MonotonicClock()
        frames = open_source(cfg.camera, clock=clock)
        frames.start()
        closers.append(frames)
        head = make_head(cfg, clock, cal, watchdog_s=0.0)

        def grab() -> Any:
            # The source may hold frames captured before the move settled: skip those.
            asked = clock.now()
            for _ in range(round(cfg.camera.fps * 3) + 1):
                f = frames.read()
                if f is None:
                    break
                if f.t_capture >= asked:
                    return f.lores if f.lores is not None else f.image
            raise CalibrationError("the camera delivered no fresh frame within 3 s")

    else:
        from motor.drivers import make_backend
        from motor.panorama import PanoramaCamera
        from motor.sim import SimServos

        clock = _clock(True)
        servos = make_backend(cfg, clock, cal, driver="sim")
        assert isinstance(servos, SimServos)  # the panorama looks where they truly point
        # The tracker's lores stream is what it measures on, at the configured lens.
        lores_h = round(cfg.camera.height * cfg.camera.lores_width / cfg.camera.width)
        intr = Intrinsics(cfg.camera.width, cfg.camera.height, cfg.camera.hfov_deg).scaled(
            cfg.camera.lores_width, lores_h
        )
        grab = PanoramaCamera(servos.true_position, intr, seed=cfg.sim.seed).render
        head = PanTiltHead(servos, eff.motor.pan, eff.motor.tilt, clock)
    axes = ("pan", "tilt") if args.axis == "both" else (args.axis,)
    camera = cal.camera.model_dump()
    try:
        head.soft_start()
        for axis in axes:
            r = measure_fov(head, grab, clock, axis, args.angles, args.settle_s)
            scale = cfg.camera.width / r.width  # report at the main stream's width
            print(
                f"{axis}: {r.px_per_deg * scale:.2f} px/deg at {cfg.camera.width} px wide "
                f"(fx {r.fx * scale:.1f} px, residual {r.residual_deg:.3f} deg, "
                f"{sum(s.inliers for s in r.samples)} matched features"
                + (f"; phase correlation fx {r.phase_fx * scale:.1f} px" if r.phase_fx else "")
                + ")"
            )
            if axis == "pan":
                camera.update(
                    px_per_deg=round(r.px_per_deg * scale, 3),
                    hfov_deg=round(r.hfov_deg, 2),
                    width=cfg.camera.width,
                )
                print(f"  horizontal field of view {r.hfov_deg:.2f} deg")
            else:
                camera.update(tilt_px_per_deg=round(r.px_per_deg * scale, 3))
                print(f"  vertical field of view {r.vfov_deg:.2f} deg")
    finally:
        head.close()
        for c in closers:
            c.close()
    from motor.calibration import parse_calibration

    data = cal.model_dump()
    data["camera"] = camera
    _save(args, parse_calibration(data, "measured"), path)
    return 0


# -- autotune ----------------------------------------------------------------------------------


def _autotune(args: argparse.Namespace) -> int:
    from motor.autotune import Targets, identify, step_response, tune
    from motor.calibration import apply_calibration

    cfg, cal, path = _setup(args)
    plant = args.plant or ("sim" if cfg.motor.driver == "sim" else "hardware")
    eff = apply_calibration(cfg, cal).motor
    i = 0 if args.axis == "pan" else 1
    ax = eff.pan if i == 0 else eff.tilt
    step = min(args.step_deg, 0.9 * (ax.max_deg - ax.min_deg))
    start = [eff.pan.home_deg, eff.tilt.home_deg]
    start[i] = max(
        ax.min_deg, min(ax.max_deg - step, ax.min_deg + 0.05 * (ax.max_deg - ax.min_deg))
    )
    if plant == "sim":
        from motor.drivers import make_backend

        clock = _clock(True)
        backend: Any = make_backend(cfg, clock, driver="sim", seed=0, start=(start[0], start[1]))
    else:
        from motor.drivers import make_head

        clock = _clock(cfg.motor.driver == "sim")
        head = make_head(cfg, clock, cal)
        head.move_smoothly(start[0], start[1])
        backend = head.backend
    try:
        resp = step_response(backend, clock, i, (start[0], start[1]), step)
    finally:
        if plant != "sim":
            head.close()
    model = identify(resp)
    print(
        f"{args.axis} step response ({plant}, {step:.0f} deg): dead time "
        f"{model.dead_time_s * 1000:.0f} ms, top speed {model.speed_deg_s:.0f} deg/s, "
        f"acceleration {model.accel_deg_s2:.0f} deg/s2"
    )
    targets = Targets(target_settle_s=args.settle_target_s, settle_deg=cfg.motor.control.settle_deg)
    result = tune(model, targets, fps=cfg.camera.fps)
    m = result.metrics
    print(
        f"gains: kp {result.kp:g} (deg/s)/deg, max speed {result.max_speed_deg_s:.0f} deg/s, "
        f"max acceleration {result.max_accel_deg_s2:.0f} deg/s2 — a {targets.step_deg:g} deg step "
        f"settles in {m.settle_s:.2f} s, overshoot {m.overshoot_deg:.2f} deg, "
        f"{m.reversals} reversals, lag <= {m.max_lag_deg:.2f} deg ({result.tried} candidates)"
    )
    data = cal.model_dump()
    data["control"] = result.control().model_dump()
    from motor.calibration import parse_calibration

    _save(args, parse_calibration(data, "tuned"), path)
    return 0
