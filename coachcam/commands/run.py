"""``coachcam run``: the daemon systemd starts at boot."""

from __future__ import annotations

import argparse
import signal
import threading


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the robot (the daemon systemd starts; the simulated classroom by default)",
    )
    p.add_argument("--calibration", metavar="PATH", help="calibration file (default: [motor])")
    p.add_argument(
        "--seconds", type=float, help="stop after this long (default: run until SIGTERM)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from coachcam.clock import MonotonicClock
    from coachcam.config import load_config
    from coachcam.control import default_socket
    from coachcam.health import HealthReporter
    from coachcam.instance import one_instance
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
    with one_instance("run"), HealthReporter.from_env(clock=clock) as health:
        robot = build_robot(cfg, clock, calibration=args.calibration)
        try:
            sock = default_socket(health.state_file) if health.state_file else None
            run_robot(robot, health, stop, seconds=args.seconds, control_socket=sock)
        finally:
            health.stopping()
            robot.close()
    log.info("stopped cleanly")
    return 0
