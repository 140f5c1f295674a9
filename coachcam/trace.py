"""The per-frame trace of ``coachcam sim --trace`` and ``coachcam run --trace``: one CSV format,
one writer.

The robot's own rows (``robot_row``: what the loop knows of a frame) leave the ground-truth
columns empty; the simulator's rows (``coachcam.sim.run.TraceRow``, made by
``coachcam.sim.run.trace_row``) fill them. Which row a frame gets is chosen with the frame source
(``coachcam.robot``), so this module knows nothing of the simulation.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from coachcam.daemon import Step
from coachcam.geometry import Intrinsics
from tracker.tracker import Tracker

TRACE_COLUMNS = (
    "frame", "t", "pan_deg", "tilt_deg", "cmd_pan_deg", "cmd_tilt_deg", "teacher_pan_deg",
    "teacher_tilt_deg", "followed_id", "teacher_id", "track_id", "teacher_in_frame", "centred",
    "pointing_err_deg", "mode", "teacher_speed", "latency_ms",
)  # fmt: skip

# A trace row of one loop step: any object with (some of) ``TRACE_COLUMNS`` as attributes.
RowMaker = Callable[[Step, Tracker, Intrinsics], object]


@dataclass(frozen=True, slots=True)
class RobotRow:
    """A trace row of the robot outside the simulation: what the loop knows of a frame. The
    columns of ``TRACE_COLUMNS`` only the simulated room knows (ground truth) stay empty."""

    frame: int
    t: float
    pan_deg: float  # read back from the servos, else the last command
    tilt_deg: float
    cmd_pan_deg: float
    cmd_tilt_deg: float
    track_id: int | None
    mode: str
    latency_ms: float | None


def robot_row(step: Step, tracker: Tracker, intr: Intrinsics) -> RobotRow:
    """The trace row of one loop step from what the loop knows (a ``RowMaker``)."""
    pan, tilt = step.position or step.command
    return RobotRow(
        step.frame.index, step.t, pan, tilt, step.command[0], step.command[1], step.track_id,
        step.aim.mode, step.latency_ms,
    )  # fmt: skip


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


class TraceWriter:
    """The per-frame trace as CSV (``TRACE_COLUMNS``), one line per row as it comes: the one
    writer of ``coachcam sim --trace`` and ``coachcam run --trace`` (a daemon's trace grows for
    hours, so rows are not kept; each line is flushed, so a killed daemon leaves whole rows).
    Columns a row does not have (the robot's: no ground truth) are empty. Opening the file
    first means an unwritable path fails before the run, not after it."""

    def __init__(self, path: Path) -> None:
        self._f = path.open("w", newline="", encoding="utf-8", buffering=1)
        self._w = csv.writer(self._f)
        self._w.writerow(TRACE_COLUMNS)

    def write(self, row: object) -> None:
        self._w.writerow([_cell(getattr(row, c, None)) for c in TRACE_COLUMNS])

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_trace(rows: Iterable[object], path: Path) -> None:
    with TraceWriter(path) as w:
        for r in rows:
            w.write(r)
