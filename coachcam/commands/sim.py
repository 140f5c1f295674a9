"""``coachcam sim``: the robot's loop against the simulated classroom, with its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coachcam.cliargs import check_writable, latency_ms, non_negative_int, seconds


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sim",
        parents=[common],
        help="run the robot in the simulated classroom and print its tracking report",
        description="Run the same loop the robot runs, with the simulated camera, perception and "
        "servos, faster than real time unless --realtime.",
    )
    p.add_argument("--scenario", help="built-in scenario name or a scenario TOML file")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default: sim.seed)")
    p.add_argument("--seconds", type=seconds, help="stop after this many simulated seconds")
    p.add_argument(
        "--latency-ms", type=latency_ms, help="perception latency (default: sim.inference_ms)"
    )
    p.add_argument("--controller", choices=["room", "naive"], help="controller (default: room)")
    p.add_argument(
        "--perception",
        choices=["oracle", "model"],
        default="oracle",
        help="oracle: ground truth seen like a pose model (default); model: rendered pictures "
        "of real people (see --media) and the real pose model",
    )
    p.add_argument(
        "--media",
        type=Path,
        metavar="DIR",
        help="the shared media folder --perception model cuts people out of (default: "
        "$COACHCAM_MEDIA_DIR, else shared/data/media beside the source tree)",
    )
    p.add_argument("--report", type=Path, metavar="OUT.json", help="write the report as JSON")
    p.add_argument("--trace", type=Path, metavar="OUT.csv", help="write one CSV row per frame")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="plot bearing vs pointing")
    p.add_argument("--realtime", action="store_true", help="run at the speed of the real robot")
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coachcam.clock import MonotonicClock
    from coachcam.config import load_config
    from coachcam.metrics import format_switches, write_report
    from coachcam.progress import Progress
    from coachcam.sim.report import compute_report, format_summary, plot_run
    from coachcam.sim.run import run_sim
    from coachcam.sim.scenario import builtin_names, load_scenario
    from coachcam.trace import write_trace

    if args.list:
        for name in builtin_names():
            sc = load_scenario(name)
            print(f"{name:16} {sc.duration_s:5.0f} s  {sc.description}")
        return 0
    overrides = {}
    if args.latency_ms is not None:
        overrides["sim.inference_ms"] = args.latency_ms
    cfg = load_config(args.config, overrides)
    for path, what in ((args.report, "report"), (args.trace, "trace"), (args.plot, "plot")):
        check_writable(path, f"--{what}")
    scenario = load_scenario(args.scenario or cfg.sim.scenario)
    media = None
    if args.perception == "model":  # before the run: say now where the media are not
        from coachcam.sim.cutouts import find_media_dir

        media = find_media_dir(args.media)
    progress = Progress(f"simulating {scenario.name}", stream=sys.stderr)
    result = run_sim(
        cfg,
        scenario,
        seed=args.seed,
        seconds=args.seconds,
        controller=args.controller,
        clock=MonotonicClock() if args.realtime else None,
        progress=progress.update,
        perception=args.perception,
        media_dir=media,
    )
    progress.done()
    report = compute_report(result)
    print(format_summary(report))
    if result.switches:
        print(format_switches(result.switches, result.rows[0].t))
    if args.report:
        write_report(report, args.report)
    if args.trace:
        write_trace(result.rows, args.trace)
    if args.plot:
        plot_run(result, args.plot)
    return 0
