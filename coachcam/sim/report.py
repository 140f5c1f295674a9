"""The tracking report: the numbers defined in DESIGN.md ("Words we use in reports")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.metrics import FOLLOWING, reversal_times, spans
from coachcam.sim.run import UNATTRIBUTED, SimResult, TraceRow

STILL_FOR_S = 0.5  # the teacher "stands still" after this long at zero speed


def is_wrong(row: TraceRow) -> bool:
    """Following a person other than the teacher."""
    return row.followed_id is not None and row.followed_id not in (row.teacher_id, UNATTRIBUTED)


def compute_report(result: SimResult) -> dict[str, Any]:
    rows = result.rows
    n = len(rows)
    if n == 0:
        raise ValueError("no frames were simulated")
    t = np.array([r.t for r in rows]) - rows[0].t
    pan = np.array([r.pan_deg for r in rows])
    following = [r.mode in FOLLOWING for r in rows]
    first = next((i for i, f in enumerate(following) if f), n)
    # Pointing error counts from the first lock on; how long finding the teacher took is
    # reported on its own (acquire_s).
    err = np.array([r.pointing_err_deg for r in rows[first:]] or [math.nan])
    lost = [(not f) and i > first for i, f in enumerate(following)]
    lost_spans = spans(lost, t)
    wrong = [is_wrong(r) for r in rows]
    unattributed = [r.followed_id == UNATTRIBUTED for r in rows]
    revs = reversal_times(t, pan)
    still_since = None
    still = np.zeros(n, dtype=bool)
    for i, r in enumerate(rows):
        if r.teacher_speed <= 1e-6:
            still_since = t[i] if still_since is None else still_since
            still[i] = t[i] - still_since >= STILL_FOR_S
        else:
            still_since = None
    hunting = sum(1 for rt in revs if still[int(np.searchsorted(t, rt))])
    # The teacher's own changes of direction: no follower can reverse less often than this.
    own = reversal_times(t, np.array([r.teacher_pan_deg for r in rows]))
    lat = np.array([r.latency_ms for r in rows if r.latency_ms is not None])
    duration_min = max(float(t[-1] - t[0]), 1e-9) / 60.0
    re = [e - s for s, e, closed in lost_spans if closed]
    return {
        "scenario": result.scenario.name,
        "seed": result.seed,
        "frames": n,
        "duration_s": round(float(t[-1]), 3),
        "in_frame_pct": round(100.0 * float(np.mean([r.teacher_in_frame for r in rows])), 2),
        "centred_pct": round(100.0 * float(np.mean([r.centred for r in rows])), 2),
        "pointing_rms_deg": round(float(np.sqrt(np.mean(err**2))), 3),
        "pointing_p95_deg": round(float(np.percentile(err, 95)), 3),
        "wrong_person_pct": round(100.0 * float(np.mean(wrong)), 2),
        "unattributed_pct": round(100.0 * float(np.mean(unattributed)), 2),
        "lost_events": len(lost_spans),
        "lost_s": round(sum(e - s for s, e, _ in lost_spans), 3),
        "reacquire_s_mean": round(float(np.mean(re)), 3) if re else 0.0,
        "acquire_s": round(float(t[first]) if first < n else math.inf, 3),
        "reversals_per_min": round(len(revs) / duration_min, 2),
        "hunting_reversals": hunting,
        "teacher_reversals_per_min": round(len(own) / duration_min, 2),
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
        "identity_switches": len(result.switches),
    }


SUMMARY_KEYS = (
    ("in_frame_pct", "in-frame %"),
    ("centred_pct", "centred %"),
    ("pointing_rms_deg", "pointing error RMS (deg)"),
    ("pointing_p95_deg", "pointing error p95 (deg)"),
    ("wrong_person_pct", "wrong-person %"),
    ("unattributed_pct", "unattributed %"),
    ("lost_events", "lost events"),
    ("lost_s", "lost s"),
    ("reacquire_s_mean", "re-acquire s (mean)"),
    ("reversals_per_min", "reversals/min"),
    ("hunting_reversals", "hunting reversals"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("latency_p95_ms", "latency p95 (ms)"),
    ("frames", "frames"),
)


def format_summary(report: dict[str, Any]) -> str:
    width = max(len(label) for _, label in SUMMARY_KEYS)
    lines = [f"scenario {report['scenario']} (seed {report['seed']}, {report['duration_s']:.1f} s)"]
    lines += [f"  {label:<{width}}  {report[key]}" for key, label in SUMMARY_KEYS]
    return "\n".join(lines)


def plot_run(result: SimResult, path: Path, title: str | None = None) -> None:
    """Teacher bearing against camera pointing over time, with lost and wrong-person spans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows
    t = np.array([r.t for r in rows]) - rows[0].t
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[3, 1])
    for ax, cam, who, label in (
        (axes[0], "pan_deg", "teacher_pan_deg", "pan"),
        (axes[1], "tilt_deg", "teacher_tilt_deg", "tilt"),
    ):
        ax.plot(t, [getattr(r, who) for r in rows], color="tab:green", lw=1.5, label="teacher")
        ax.plot(t, [getattr(r, cam) for r in rows], color="tab:blue", lw=1.2, label="camera")
        ax.set_ylabel(f"{label} (deg)")
        following = [r.mode in FOLLOWING for r in rows]
        first = next((i for i, f in enumerate(following) if f), len(rows))
        for s, e, _ in spans([(not f) and i > first for i, f in enumerate(following)], t):
            ax.axvspan(s, e, color="tab:red", alpha=0.2, lw=0)
        for s, e, _ in spans([is_wrong(r) for r in rows], t):
            ax.axvspan(s, e, color="tab:orange", alpha=0.35, lw=0)
        for s, e, _ in spans([r.followed_id == UNATTRIBUTED for r in rows], t):
            ax.axvspan(s, e, color="tab:grey", alpha=0.3, lw=0)
        ax.grid(alpha=0.3)
    from matplotlib.patches import Patch

    handles, _ = axes[0].get_legend_handles_labels()
    handles += [
        Patch(color="tab:red", alpha=0.2, label="teacher lost"),
        Patch(color="tab:orange", alpha=0.35, label="wrong person"),
        Patch(color="tab:grey", alpha=0.3, label="followed pose matches nobody"),
    ]
    axes[0].legend(handles=handles, loc="upper right", fontsize=8)
    axes[1].set_xlabel("time (s)")
    axes[0].set_title(title or f"coachcam sim: {result.scenario.name} (seed {result.seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
