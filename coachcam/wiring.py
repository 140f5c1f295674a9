"""The one wiring of the frame loop, used by ``coachcam run``, ``coachcam sim`` and ``coachcam
replay`` alike.

``assemble`` builds what is the same in all three — the inference beside the loop, the tracker,
the controller, the crop policy and the ``FrameLoop`` — from the config. Each caller passes only
what differs:

- ``run`` (``coachcam/robot.py``): the source ``[camera] source`` names, the MediaPipe landmarker
  on a worker thread (the oracle on the simulated classroom), the head over ``[motor] driver``,
  the stream as a sink;
- ``sim`` (``coachcam/sim/run.py``): the simulated classroom, the oracle (or MediaPipe on
  rendered people), simulated servos, no sink;
- ``replay`` (``coachcam/replay.py``): a window moving over a video, MediaPipe, simulated servos,
  the overlay video as a sink.

A new sensor is a new source (or detector), a new output a new sink: neither changes this.
"""

from __future__ import annotations

from collections.abc import Sequence

from coachcam.clock import Clock
from coachcam.config import Config
from coachcam.daemon import (
    FrameLoop,
    FrameSink,
    Inference,
    ScheduledInference,
    ThreadedInference,
)
from coachcam.frame import FrameSource
from coachcam.geometry import Intrinsics
from motor.controller import make_controller
from motor.drivers import make_head
from motor.servo import PanTiltHead
from motor.sim import SimServos
from tracker.rois import teacher_rois
from tracker.tracker import Tracker
from tracker.types import PoseDetector


def simulated_head(cfg: Config, clock: Clock, *, seed: int) -> tuple[SimServos, PanTiltHead]:
    """Simulated servos (``[sim.servo]``) starting at ``[motor]``'s home, behind a head with
    ``[motor]``'s limits: the servos of ``coachcam sim`` and ``coachcam replay``."""
    head = make_head(cfg, clock, driver="sim", seed=seed)  # the one servo factory
    assert isinstance(head.backend, SimServos)
    return head.backend, head


def assemble(
    cfg: Config,
    clock: Clock,
    *,
    source: FrameSource,
    detector: PoseDetector,
    head: PanTiltHead,
    intrinsics: Intrinsics,
    camera_height_m: float | None,
    latency_s: float | None = None,
    sinks: Sequence[FrameSink] = (),
    crops: bool = False,
    controller: str | None = None,
) -> FrameLoop:
    """The robot's frame loop over the given parts (``loop.tracker``, ``loop.inference``: the
    ones built here).

    ``intrinsics``: the picture the tracker sees (the camera's, a scenario's, a replay window's);
    ``camera_height_m``: the mount height (``None``: unknown, no posture from shoulder height).
    ``latency_s``: ``None`` runs the detector on a worker thread (a real camera); a number
    makes its result appear that long after capture on ``clock`` (simulation, replay).
    ``crops``: the detector looks at a crop around the teacher (``tracker.rois``), for the
    MediaPipe landmarker. ``controller`` overrides ``[motor.control] kind``. The tracker's home
    and the controller's axes are ``[motor]``'s (give ``cfg`` the axes the head has).
    """
    m = cfg.motor
    inference: Inference
    if latency_s is None:
        inference = ThreadedInference(detector, clock)
    else:
        inference = ScheduledInference(detector, latency_s, clock)
    home = (m.pan.home_deg, m.tilt.home_deg)
    tracker = Tracker(cfg.tracker, intrinsics, home=home, camera_height_m=camera_height_m)
    ctrl = make_controller(
        m, intrinsics, search_speed_deg_s=cfg.tracker.search_speed_deg_s, kind=controller
    )
    rois = teacher_rois(head.pointing_at, intrinsics, cfg.tracker.min_visibility) if crops else None
    return FrameLoop(source, inference, tracker, ctrl, head, clock, sinks, rois)
