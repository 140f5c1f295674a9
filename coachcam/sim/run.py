"""Wire the robot's loop to the simulated classroom and record a per-frame trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coachcam.clock import Clock, FakeClock
from coachcam.config import Config
from coachcam.daemon import Step
from coachcam.errors import ConfigError
from coachcam.frame import FrameSource
from coachcam.geometry import Intrinsics, angle_between, bearing_of_point, project
from coachcam.sim.camera import SimCamera
from coachcam.sim.oracle import OracleDetector
from coachcam.sim.scenario import Scenario
from coachcam.sim.world import Classroom, Truth
from coachcam.trace import RobotRow, robot_row
from coachcam.wiring import assemble, simulated_head
from tracker.tracker import Tracker
from tracker.types import HEAD_AND_TORSO, PoseDetector

log = logging.getLogger(__name__)

# ``followed_id`` when the followed track's pose matched no projected person: with the real
# model, one skeleton merged from the teacher and a student beside them. Not a wrong person
# (nobody else was chosen), not surely the teacher either: the report counts it on its own.
UNATTRIBUTED = -1


@dataclass(frozen=True, slots=True)
class TraceRow:
    """A trace row of the simulation (``coachcam.trace.TRACE_COLUMNS``, ground truth included)."""

    frame: int
    t: float
    pan_deg: float
    tilt_deg: float
    cmd_pan_deg: float
    cmd_tilt_deg: float
    teacher_pan_deg: float
    teacher_tilt_deg: float
    followed_id: int | None  # ground-truth person the camera follows (None: nobody)
    teacher_id: int  # ground-truth teacher
    track_id: int | None  # the tracker's id of the followed track
    teacher_in_frame: bool
    centred: bool
    pointing_err_deg: float
    mode: str
    teacher_speed: float
    latency_ms: float | None


@dataclass
class SimResult:
    scenario: Scenario
    seed: int
    fps: float
    rows: list[TraceRow] = field(default_factory=list)
    switches: list = field(default_factory=list)


def intrinsics_for(cfg: Config, scenario: Scenario) -> tuple[Intrinsics, float]:
    sc = scenario.camera
    intr = Intrinsics(
        sc.width or cfg.camera.width,
        sc.height or cfg.camera.height,
        sc.hfov_deg or cfg.camera.hfov_deg,
    )
    return intr, sc.height_m or cfg.camera.height_m


def _row(step: Step, truth: Truth, intr: Intrinsics, tracker: Tracker) -> TraceRow:
    teacher = truth.people[truth.teacher_id]
    tp, tt = bearing_of_point(teacher.target)
    uv, front = project(
        teacher.keypoints[list(HEAD_AND_TORSO)], truth.cam_pan, truth.cam_tilt, intr
    )
    in_frame = bool(
        front.all()
        and (uv[:, 0] >= 0).all()
        and (uv[:, 0] < intr.width).all()
        and (uv[:, 1] >= 0).all()
        and (uv[:, 1] < intr.height).all()
    )
    tuv, _ = project(teacher.target[None, :], truth.cam_pan, truth.cam_tilt, intr)
    centred = bool(intr.width / 3 <= tuv[0, 0] < 2 * intr.width / 3)
    err = angle_between(truth.cam_pan, truth.cam_tilt, tp, tt)
    followed = None
    tid = step.track_id
    if tid is not None:
        tr = tracker.tracks.get(tid)
        followed = UNATTRIBUTED if tr is None or tr.truth_id is None else tr.truth_id
    return TraceRow(
        step.frame.index, truth.t, truth.cam_pan, truth.cam_tilt, step.command[0], step.command[1],
        tp, tt, followed, truth.teacher_id, tid, in_frame, centred, err, step.aim.mode,
        teacher.speed, step.latency_ms,
    )  # fmt: skip


def trace_row(step: Step, tracker: Tracker, intr: Intrinsics) -> TraceRow | RobotRow:
    """The trace row of one loop step (a ``coachcam.trace.RowMaker``): with the ground truth
    when the frame comes from the simulated room (``coachcam sim``, or ``coachcam run`` with
    ``camera.source = 'sim'``), else the robot's own row."""
    if isinstance(step.frame.truth, Truth):
        return _row(step, step.frame.truth, intr, tracker)
    return robot_row(step, tracker, intr)


def run_sim(
    cfg: Config,
    scenario: Scenario,
    *,
    seed: int | None = None,
    seconds: float | None = None,
    controller: str | None = None,
    clock: Clock | None = None,
    progress: Callable[[float, float], None] | None = None,
    perception: str = "oracle",
    media_dir: Path | None = None,
) -> SimResult:
    """Run the robot's loop in the simulated classroom; returns the per-frame trace.

    ``perception``: "oracle" (ground truth seen like a pose model) or "model" (rendered
    pictures of real people from ``media_dir`` and the real MediaPipe landmarker, looking at
    crops around the teacher; see ``coachcam.sim.photo``).
    """
    if perception not in ("oracle", "model"):
        raise ConfigError(f"perception {perception!r}: expected 'oracle' or 'model'")
    seed = cfg.sim.seed if seed is None else seed
    clock = clock or FakeClock(0.0)
    intr, cam_h = intrinsics_for(cfg, scenario)
    duration = min(seconds, scenario.duration_s) if seconds else scenario.duration_s
    home = (cfg.motor.pan.home_deg, cfg.motor.tilt.home_deg)
    servos, head = simulated_head(cfg, clock, seed=seed)
    classroom = Classroom(scenario, cam_h, seed)
    camera = SimCamera(classroom, servos, clock, intr.width, intr.height, cfg.camera.fps, duration)
    source: FrameSource = camera
    detector: PoseDetector
    if perception == "model":
        from coachcam.sim.photo import model_perception

        source, detector = model_perception(cfg, classroom, camera, intr, clock, media_dir)
    else:
        detector = OracleDetector(intr, cfg.sim, classroom.occluder_boxes(), cam_h, seed)
    loop = assemble(
        cfg, clock, source=source, detector=detector, head=head, intrinsics=intr,
        camera_height_m=cam_h, latency_s=cfg.sim.inference_ms / 1000.0,
        crops=perception == "model", controller=controller,
    )  # fmt: skip
    tracker = loop.tracker
    result = SimResult(scenario, seed, cfg.camera.fps)
    with head:
        head.command(*home)
        while (step := loop.step()) is not None:
            result.rows.append(_row(step, step.frame.truth, intr, tracker))
            if progress is not None:  # every frame: Progress decides what to print
                progress(step.frame.index / cfg.camera.fps, duration)
        loop.close()
    if progress is not None:
        progress(duration, duration)
    result.switches = list(tracker.switches)
    return result
