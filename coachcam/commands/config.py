"""``coachcam config``: check a config file, or print the documented defaults."""

from __future__ import annotations

import argparse

from coachcam.config import load_config
from coachcam.configdoc import render_defaults


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", parents=[common], help="validate a config, or print the defaults")
    p.add_argument(
        "--defaults", action="store_true", help="print the documented default config (TOML)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.defaults:
        print(render_defaults(), end="")
        return 0
    load_config(args.config)
    print(f"{args.config or 'built-in defaults'}: OK")
    return 0
