"""``coachcam run``: the daemon systemd starts at boot."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from coachcam.cliargs import check_writable, seconds

if TYPE_CHECKING:
    from coachcam.trace import TraceWriter


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the robot (the daemon systemd starts; the simulated classroom by default)",
    )
    p.add_argument("--calibration", metavar="PATH", help="calibration file (default: [motor])")
    p.add_argument(
        "--seconds", type=seconds, help="stop after this long (default: run until SIGTERM)"
    )
    p.add_argument(
        "--trace",
        type=Path,
        metavar="OUT.csv",
        help="write one CSV row per frame, the columns of `coachcam sim --trace` (the ground "
        "truth ones empty unless the camera is simulated)",
    )
    p.set_defaults(func=run)


def open_trace(path: Path) -> TraceWriter:
    """The ``--trace`` file, opened before anything starts: an unwritable path is an error now,
    not after the run, told as ``sim --trace`` tells it (``check_writable``)."""
    from coachcam.errors import ConfigError
    from coachcam.trace import TraceWriter

    check_writable(path, "--trace")
    try:
        return TraceWriter(path)
    except OSError as exc:
        raise ConfigError(f"--trace {path}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    import logging

    from coachcam.clock import MonotonicClock
    from coachcam.config import load_config
    from coachcam.health import HealthReporter
    from coachcam.instance import one_instance, own_runtime_dir
    from coachcam.robot import build_robot, run_robot

    log = logging.getLogger("coachcam.run")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.warning("%s: parking the servos and stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    cfg = load_config(args.config)
    clock = MonotonicClock()
    # One daemon per robot: the lock is taken before the servos or the control socket are.
    with contextlib.ExitStack() as stack:
        stack.enter_context(one_instance("run"))
        # before anything starts (not truncating a running daemon's trace)
        trace = stack.enter_context(open_trace(args.trace)) if args.trace else None
        health = stack.enter_context(HealthReporter.from_env(clock=clock))
        robot = build_robot(cfg, clock, calibration=args.calibration)
        try:
            sock = own_runtime_dir().socket  # beside the state file, where clients look
            run_robot(robot, health, stop, seconds=args.seconds, control_socket=sock, trace=trace)
        finally:
            health.stopping()
            robot.close()
    log.info("stopped cleanly")
    return 0
