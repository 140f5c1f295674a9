"""Oracle perception: the simulated classroom's ground truth, seen the way a pose model sees it.

Projects every person's 33 keypoints through the pan/tilt camera as it pointed at capture time,
hides what occluders and the image border hide, adds pixel noise, misses people (at random, and
always when they appear shorter than ``min_person_px``), invents occasional false people, and
hands the tracker exactly the type the real detector does (``Detections`` of ``Pose``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coachcam.config import SimConfig
from coachcam.frame import Frame
from coachcam.geometry import Intrinsics, project
from coachcam.sim.body import body_keypoints
from coachcam.sim.world import HUE_BINS, Truth, hue_signature, occluded
from tracker.types import HIPS, SHOULDERS, Detections, Pose, Roi

MIN_VISIBLE_KEYPOINTS = 8


class OracleDetector:
    def __init__(
        self,
        intr: Intrinsics,
        cfg: SimConfig,
        occluders: list[tuple[np.ndarray, np.ndarray]],
        camera_height_m: float,
        seed: int = 0,
    ) -> None:
        self.intr = intr
        self.cfg = cfg
        self.occluders = occluders
        self.camera_height = camera_height_m
        self.rng = np.random.default_rng(seed)

    def detect(self, frame: Frame, rois: Sequence[Roi] = ()) -> Detections:
        truth: Truth = frame.truth
        poses: list[Pose] = []
        for person in truth.people:
            pose = self._see(person.keypoints, truth, person.appearance, person.id)
            if pose is not None:
                poses.append(pose)
        if self.rng.random() < self.cfg.false_rate:
            fake = self._false_person(truth)
            if fake is not None:
                poses.append(fake)
        self.rng.shuffle(poses)  # type: ignore[arg-type]
        return Detections(truth.t, frame.index, tuple(poses), self.intr.width, self.intr.height)

    def close(self) -> None:
        pass

    def _see(
        self, kp3: np.ndarray, truth: Truth, appearance: np.ndarray, truth_id: int | None
    ) -> Pose | None:
        intr = self.intr
        uv, front = project(kp3, truth.cam_pan, truth.cam_tilt, intr)
        if not front.all():
            return None
        inside = (
            (uv[:, 0] >= 0) & (uv[:, 0] < intr.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intr.height)
        )
        vis = inside & ~occluded(kp3, self.occluders)
        torso = list(SHOULDERS) + list(HIPS)
        if vis.sum() < MIN_VISIBLE_KEYPOINTS or vis[torso].sum() < 2:
            return None
        if float(uv[:, 1].max() - uv[:, 1].min()) < self.cfg.min_person_px:
            return None
        if self.rng.random() < self.cfg.miss_rate:
            return None
        noisy = uv + self.rng.normal(0.0, self.cfg.keypoint_noise_px, uv.shape)
        visibility = np.where(
            vis, self.rng.uniform(0.8, 1.0, len(vis)), self.rng.uniform(0.0, 0.3, len(vis))
        )
        kp = np.column_stack([noisy, visibility])
        look = None
        if vis[torso].all():
            look = np.abs(appearance + self.rng.normal(0.0, 0.01, HUE_BINS))
        return Pose(keypoints=kp, score=0.9, appearance=look, truth_id=truth_id)

    def _false_person(self, truth: Truth) -> Pose | None:
        x, y = float(self.rng.uniform(-3.0, 3.0)), float(self.rng.uniform(1.5, 6.0))
        posture = "standing" if self.rng.random() < 0.5 else "seated"
        kp3 = body_keypoints(x, y, float(self.rng.uniform(1.2, 1.9)), posture, (-x, -y))
        kp3[:, 2] -= self.camera_height
        return self._see(kp3, truth, hue_signature(float(self.rng.uniform(0, 360))), None)
