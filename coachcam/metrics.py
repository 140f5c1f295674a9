"""What the reports of ``coachcam sim`` and ``coachcam replay`` (and the benchmarks) share: the
run metrics (reversals, spans, which aim modes count as following), the identity-decision lines
and the strict-JSON report file.

A leaf: it imports nothing of coachcam's, so either report (and any tool) may import it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

REVERSAL_HYSTERESIS_DEG = 0.3  # a change of direction counts once the head moved back this far
FOLLOWING = ("follow", "coast")  # the aim modes in which a run counts as following someone


def reversal_times(
    t: np.ndarray, pan: np.ndarray, h: float = REVERSAL_HYSTERESIS_DEG
) -> list[float]:
    """Times at which the pan direction changed (with hysteresis against noise)."""
    out: list[float] = []
    if len(pan) == 0:
        return out
    direction = 0
    extreme = float(pan[0])
    for ti, p in zip(t, pan, strict=True):
        p = float(p)
        if direction == 0:
            if abs(p - extreme) > h:
                direction, extreme = (1 if p > extreme else -1), p
        elif (p - extreme) * direction > 0:
            extreme = p
        elif (extreme - p) * direction > h:
            out.append(float(ti))
            direction, extreme = -direction, p
    return out


def spans(flags: list[bool], t: np.ndarray) -> list[tuple[float, float, bool]]:
    """(start, end, closed) runs where flags is True; closed=False if it ran to the end."""
    out = []
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((float(t[start]), float(t[i]), True))
            start = None
    if start is not None:
        out.append((float(t[start]), float(t[-1]), False))
    return out


def format_switches(switches: list[Any], t0: float) -> str:
    """The identity decisions of a run, one line each ("" when there were none)."""
    if not switches:
        return ""
    lines = ["  identity decisions:"]
    lines += [f"    {s.t - t0:6.1f} s  track {s.old} -> {s.new}: {s.reason}" for s in switches]
    return "\n".join(lines)


def _json_safe(v: Any) -> Any:
    """Non-finite floats as ``None`` (JSON has no NaN: a figure that could not be computed,
    e.g. the pointing error of a run that never found the teacher, is ``null``)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return _json_safe(v.item())
    return v


def write_report(report: Any, path: Path) -> None:
    """The report as strict JSON (``allow_nan=False``: a NaN that slips through is an error)."""
    text = json.dumps(_json_safe(report), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
