"""``coachcam bench NAME``: benchmarks (measured, never asserted in unit tests)."""

from __future__ import annotations

import argparse
import importlib

from coachcam.cli import modules_in


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bench", parents=[common], help="run a benchmark and print its table")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name in modules_in("coachcam.benchmarks"):
        mod = importlib.import_module(f"coachcam.benchmarks.{name}")
        mod.register(bsub, common)
