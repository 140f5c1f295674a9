"""``coachcam config``: check a config file as ``coachcam run`` would, or print the defaults.

The check is ``coachcam.preflight``, the same one ``run`` makes before it opens any hardware:
a config this command calls OK does not fail ``run`` for a key, a combination or a missing file.
"""

from __future__ import annotations

import argparse

from coachcam.config import effective_detector, load_config
from coachcam.configdoc import render_defaults


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "config",
        parents=[common],
        help="check a config as `run` would (files, model, combinations), or print the defaults",
    )
    p.add_argument(
        "--defaults", action="store_true", help="print the documented default config (TOML)"
    )
    p.add_argument(
        "--calibration",
        metavar="PATH",
        help="calibration file `run` would be given (default: [motor])",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coachcam.preflight import preflight

    if args.defaults:
        print(render_defaults(), end="")
        return 0
    cfg, _cal = preflight(load_config(args.config), args.calibration)
    where = args.config or "built-in defaults"
    print(
        f"{where}: OK (camera {cfg.camera.source}, detector {effective_detector(cfg)}, "
        f"servos {cfg.motor.driver}, streaming {'on' if cfg.stream.enabled else 'off'})"
    )
    return 0
