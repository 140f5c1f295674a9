"""What a pose detector hands the tracker. The oracle and the real model produce the same types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from coachcam.frame import Frame

# The pose and its keypoint groups are defined in the core (coachcam/values.py) so that
# motor/ and stream/ need not import tracker/; re-exported here for the tracker's callers.
from coachcam.values import (
    AIM_UP,
    ANKLES,
    HEAD,
    HEAD_AND_TORSO,
    HIPS,
    KEYPOINT_NAMES,
    KNEES,
    KP,
    NUM_KEYPOINTS,
    SHOULDERS,
    Pose,
)

__all__ = [
    "AIM_UP",
    "ANKLES",
    "HEAD",
    "HEAD_AND_TORSO",
    "HIPS",
    "KEYPOINT_NAMES",
    "KNEES",
    "KP",
    "NUM_KEYPOINTS",
    "SHOULDERS",
    "Detections",
    "Pose",
    "PoseDetector",
    "Roi",
    "appearance_distance",
]


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
