"""``coachcam replay``: a recorded wide video in the robot's loop, through a virtual pan/tilt
window driven by the real pose model, the tracker, the controller and the simulated servos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coachcam.cliargs import check_writable, latency_ms, pan_tilt, seconds


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="follow the people in a recorded video with a virtual pan/tilt camera",
        description="Replay VIDEO as the room: the camera's picture is a window moving over each "
        "frame, pointed by the same tracker, controller and (simulated) servos the robot runs, "
        "with the real pose model. Deterministic: the clock advances one frame period per frame.",
    )
    p.add_argument("video", type=Path, metavar="VIDEO", help="the recorded wide video")
    p.add_argument(
        "--window",
        metavar="WxH",
        help="the virtual camera's picture in source pixels (default: half the source)",
    )
    p.add_argument("--seconds", type=seconds, help="stop after this many seconds of video")
    p.add_argument(
        "--start",
        metavar="PAN,TILT",
        type=pan_tilt,
        default=(0.0, 0.0),
        help="where the window starts, in degrees from the source's centre (default 0,0)",
    )
    p.add_argument(
        "--latency-ms", type=latency_ms, help="perception latency (default: sim.inference_ms)"
    )
    p.add_argument(
        "--no-crops",
        action="store_true",
        help="always detect on the whole window (default: a crop around the followed person)",
    )
    p.add_argument(
        "--pick",
        choices=["centre", "auto"],
        default="centre",
        help="whom to follow: 'auto' = the tracker's own choice only; 'centre' (default) = as "
        "well, an operator picks the person nearest the centre if the tracker chose nobody a "
        "second after someone was confirmed (a speaker behind a lectern shows no legs)",
    )
    p.add_argument("--report", type=Path, metavar="OUT.json", help="write the report as JSON")
    p.add_argument("--trace", type=Path, metavar="OUT.csv", help="write one CSV row per frame")
    p.add_argument(
        "--video", dest="video_out", type=Path, metavar="OUT.mp4", help="write the window's view"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coachcam.config import load_config
    from coachcam.metrics import format_switches, write_report
    from coachcam.progress import Progress
    from coachcam.replay import (
        compute_report,
        format_summary,
        parse_window,
        run_replay,
        write_trace,
    )

    cfg = load_config(args.config)
    for path, what in ((args.report, "report"), (args.trace, "trace"), (args.video_out, "video")):
        check_writable(path, f"--{what}")
    window = parse_window(args.window) if args.window else None
    progress = Progress(f"replaying {args.video.name}", stream=sys.stderr)
    result = run_replay(
        cfg,
        args.video,
        window=window,
        seconds=args.seconds,
        latency_ms=args.latency_ms,
        start=args.start,
        crops=not args.no_crops,
        pick=args.pick,
        video_out=args.video_out,
        progress=progress.update,
    )
    progress.update(1.0, 1.0)
    progress.done()
    report = compute_report(result)
    print(format_summary(report))
    if result.switches:
        print(format_switches(result.switches, result.rows[0].t))
    if args.report:
        write_report(report, args.report)
    if args.trace:
        write_trace(result.rows, args.trace)
    return 0
