"""``coachcam bench control``: our controller against the hobby-tracker baseline.

Runs every built-in scenario with the room-angle controller and with the naive baseline (PID on
pixel error, no latency compensation, no dead zone) on the same seeds, and prints both side by
side with the targets of issue 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

TARGETS = {
    "in_frame_pct": (">=", 99.5),
    "wrong_person_pct": ("<=", 0.0),
    "unattributed_pct": ("<=", 0.0),  # with the oracle: following one of its false people
    "hunting_reversals": ("<=", 0),
    "pointing_rms_deg": ("<=", 3.0),
}
COLUMNS = (
    ("in_frame_pct", "in-frame %"),
    ("centred_pct", "centred %"),
    ("pointing_rms_deg", "RMS deg"),
    ("pointing_p95_deg", "p95 deg"),
    ("wrong_person_pct", "wrong %"),
    ("lost_events", "lost"),
    ("reversals_per_min", "rev/min"),
    ("teacher_reversals_per_min", "teacher's rev/min"),
    ("hunting_reversals", "hunting"),
    ("latency_p50_ms", "lat p50 ms"),
)


def register(bsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = bsub.add_parser("control", parents=[common], help="our controller vs the naive baseline")
    p.add_argument("--seeds", type=int, default=3, help="seeds per scenario (default 3)")
    p.add_argument("--latency-ms", type=float, default=120.0, help="perception latency (120)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write all results")
    p.set_defaults(func=run)


def _meets(report: dict[str, Any], base: dict[str, Any]) -> list[str]:
    missed = []
    for key, (op, value) in TARGETS.items():
        v = report[key]
        if (op == ">=" and v < value) or (op == "<=" and v > value):
            missed.append(f"{key} {v} (target {op} {value})")
    if report["reversals_per_min"] > 0.5 * base["reversals_per_min"]:
        missed.append(
            f"reversals/min {report['reversals_per_min']} > half the baseline's "
            f"{base['reversals_per_min']}"
        )
    return missed


def _mean(reports: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(reports[0])
    for key in [k for k, _ in COLUMNS] + [k for k in TARGETS if k not in dict(COLUMNS)]:
        vals = [r[key] for r in reports if r[key] is not None]
        out[key] = round(sum(vals) / len(vals), 2) if vals else None
    out["hunting_reversals"] = sum(r["hunting_reversals"] for r in reports)
    return out


def run(args: argparse.Namespace) -> int:
    import sys

    from coachcam.config import load_config
    from coachcam.metrics import write_report
    from coachcam.sim.report import compute_report
    from coachcam.sim.run import run_sim
    from coachcam.sim.scenario import builtin_names, load_scenario

    cfg = load_config(args.config, {"sim.inference_ms": args.latency_ms})
    header = "| scenario | controller | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    everything: dict[str, Any] = {}
    misses: list[str] = []
    for name in builtin_names():
        sc = load_scenario(name)
        per = {}
        for kind in ("room", "naive"):
            print(f"  {name} / {kind} ...", file=sys.stderr)
            reps = [
                compute_report(run_sim(cfg, sc, seed=s, controller=kind))
                for s in range(1, args.seeds + 1)
            ]
            per[kind] = _mean(reps)
            cells = " | ".join(
                "" if per[kind][k] is None else str(per[kind][k]) for k, _ in COLUMNS
            )
            label = "coachcam" if kind == "room" else "naive baseline"
            lines.append(f"| {name} | {label} | {cells} |")
        everything[name] = per
        misses += [f"{name}: {m}" for m in _meets(per["room"], per["naive"])]
    print(
        f"coachcam bench control: {args.seeds} seed(s) per scenario, "
        f"{args.latency_ms:.0f} ms perception latency, default servos (mean over seeds; "
        "hunting = total)"
    )
    print("\n".join(lines))
    if misses:
        print("\ntargets missed:")
        print("\n".join(f"  {m}" for m in misses))
    else:
        print("\nall targets met")
    if args.json:
        write_report(everything, args.json)
    return 0
