"""What a pose detector hands the tracker. The oracle and the real model produce the same types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from coachcam.frame import Frame

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


@dataclass(frozen=True, slots=True)
class Detections:
    """All poses found in one frame, stamped with that frame's capture time."""

    t_capture: float
    frame_index: int
    poses: tuple[Pose, ...]
    width: int
    height: int
    t_done: float | None = None  # when the result became available (for latency reports)


@dataclass(frozen=True, slots=True)
class Roi:
    """A region of the main frame (pixels) to look closer at, e.g. around the tracked teacher."""

    x0: float
    y0: float
    x1: float
    y1: float


class PoseDetector(Protocol):
    """Finds people in a frame. Implementations: the simulated oracle, the MediaPipe landmarker."""

    def detect(self, frame: Frame, rois: Sequence[Roi] = ()) -> Detections: ...

    def close(self) -> None: ...


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Distance in [0, 1] between two appearance signatures (None if either is unknown).

    Signatures are non-negative vectors (e.g. colour histograms); the distance is
    1 - Bhattacharyya coefficient of the normalised vectors.
    """
    if a is None or b is None:
        return None
    sa, sb = float(np.sum(a)), float(np.sum(b))
    if sa <= 0 or sb <= 0:
        return None
    bc = float(np.sum(np.sqrt((a / sa) * (b / sb))))
    return max(0.0, min(1.0, 1.0 - bc))
