"""The value types the layers above the core share: a person's pose and where to aim.

They live here, at the bottom, so ``tracker/`` (which makes them), ``motor/`` (which steers by
an ``Aim``) and ``stream/`` (which blurs faces from a ``Pose``) need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# MediaPipe Pose's 33 keypoints, in its order.
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_KEYPOINTS = 33
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
HEAD = tuple(range(0, 11))
SHOULDERS = (KP["left_shoulder"], KP["right_shoulder"])
HIPS = (KP["left_hip"], KP["right_hip"])
KNEES = (KP["left_knee"], KP["right_knee"])
ANKLES = (KP["left_ankle"], KP["right_ankle"])
HEAD_AND_TORSO = (*HEAD, *SHOULDERS, *HIPS)
# The camera aims at the torso centre raised by this many torso lengths: the upper chest, the
# middle of head and torso (the tracker and the simulation's ground truth use the same point).
AIM_UP = 0.35


@dataclass(frozen=True, slots=True)
class Pose:
    """One person's pose in one frame.

    ``keypoints`` is (33, 3): x and y in pixels of the *main* frame (whatever resolution the
    detector ran at) and visibility in [0, 1]. ``appearance`` is an optional signature of the
    person's look (e.g. torso clothing colour), compared with ``appearance_distance``.
    ``marker_id`` is a worn ArUco badge seen on this person, if any. ``truth_id`` is set only by
    the simulated oracle (ground truth for reports); the tracker never reads it.
    """

    keypoints: np.ndarray
    score: float = 1.0
    appearance: np.ndarray | None = None
    marker_id: int | None = None
    truth_id: int | None = None

    def visible(self, min_visibility: float = 0.5) -> np.ndarray:
        return self.keypoints[:, 2] >= min_visibility

    def bbox(self, min_visibility: float = 0.5) -> tuple[float, float, float, float] | None:
        vis = self.visible(min_visibility)
        if not vis.any():
            return None
        xy = self.keypoints[vis, :2]
        return (
            float(xy[:, 0].min()),
            float(xy[:, 1].min()),
            float(xy[:, 0].max()),
            float(xy[:, 1].max()),
        )


AimMode = Literal["follow", "coast", "hold", "search", "home", "idle"]


@dataclass(frozen=True, slots=True)
class Aim:
    """Where the camera should point now, and why."""

    mode: AimMode
    pan: float = 0.0
    tilt: float = 0.0
    vel_pan: float = 0.0
    vel_tilt: float = 0.0
    t_ref: float = 0.0  # the time the bearing refers to (the controller predicts from it)
    track_id: int | None = None
    pixel: tuple[float, float] | None = None  # torso centre in that frame (for the naive baseline)
    still: bool = False  # the person has barely moved lately (see Track.still)
