"""A 33-keypoint body model (MediaPipe's keypoint set) for standing and seated people.

Keypoints are placed from body-height fractions (anthropometric averages), in a person frame:
lateral (to the person's left), forward (the way they face), up. We model people facing the
camera, which is how a classroom camera mostly sees a teacher and students.
"""

from __future__ import annotations

import math

import numpy as np

from tracker.types import AIM_UP

# (lateral, forward, up) as fractions of body height, for a standing person.
_STANDING = np.array(
    [
        (0.000, 0.060, 0.930),  # nose
        (0.015, 0.050, 0.945), (0.025, 0.045, 0.946), (0.035, 0.040, 0.945),  # left eye
        (-0.015, 0.050, 0.945), (-0.025, 0.045, 0.946), (-0.035, 0.040, 0.945),  # right eye
        (0.045, 0.000, 0.935), (-0.045, 0.000, 0.935),  # ears
        (0.015, 0.050, 0.905), (-0.015, 0.050, 0.905),  # mouth
        (0.120, 0.000, 0.820), (-0.120, 0.000, 0.820),  # shoulders
        (0.150, 0.000, 0.630), (-0.150, 0.000, 0.630),  # elbows
        (0.160, 0.020, 0.485), (-0.160, 0.020, 0.485),  # wrists
        (0.165, 0.030, 0.445), (-0.165, 0.030, 0.445),  # pinkies
        (0.160, 0.035, 0.440), (-0.160, 0.035, 0.440),  # index fingers
        (0.150, 0.040, 0.460), (-0.150, 0.040, 0.460),  # thumbs
        (0.060, 0.000, 0.530), (-0.060, 0.000, 0.530),  # hips
        (0.060, 0.010, 0.285), (-0.060, 0.010, 0.285),  # knees
        (0.060, 0.000, 0.040), (-0.060, 0.000, 0.040),  # ankles
        (0.060, -0.030, 0.015), (-0.060, -0.030, 0.015),  # heels
        (0.065, 0.080, 0.005), (-0.065, 0.080, 0.005),  # foot index
    ]
)  # fmt: skip


def _seated() -> np.ndarray:
    """The standing model folded onto a chair: hips at seat height, thighs forward."""
    kp = _STANDING.copy()
    seat = 0.30  # seat height as a fraction of body height (~0.45 m for a 1.5 m student)
    drop = _STANDING[23, 2] - seat
    kp[:25, 2] -= drop  # upper body sits down onto the seat
    kp[11:23, 1] += 0.02  # leaning slightly forward over the desk
    kp[13:15, 2] = kp[23, 2] + 0.17  # elbows resting on the desk
    kp[15:23, 2] = kp[23, 2] + 0.20
    kp[15:23, 1] += 0.15
    thigh = _STANDING[23, 2] - _STANDING[25, 2]
    kp[25:27, 1] = thigh  # knees forward
    kp[25:27, 2] = seat + 0.02
    kp[27:33, 1] += thigh  # feet below the knees
    return kp


_SEATED = _seated()


def body_keypoints(
    x: float, y: float, height_m: float, posture: str, facing_xy: tuple[float, float]
) -> np.ndarray:
    """33 room points (x, y, z above the floor) of a person at (x, y) facing ``facing_xy``."""
    model = _SEATED if posture == "seated" else _STANDING
    fx, fy = facing_xy
    n = math.hypot(fx, fy) or 1.0
    fwd = np.array([fx / n, fy / n])
    left = np.array([fwd[1], -fwd[0]])  # the person's left, seen from the front: camera's right
    pts = np.empty((33, 3))
    pts[:, 0] = x + height_m * (model[:, 0] * left[0] + model[:, 1] * fwd[0])
    pts[:, 1] = y + height_m * (model[:, 0] * left[1] + model[:, 1] * fwd[1])
    pts[:, 2] = height_m * model[:, 2]
    return pts


def target_point(keypoints: np.ndarray) -> np.ndarray:
    """The point the camera aims at: the torso centre raised by ``AIM_UP`` torso lengths."""
    shoulders = keypoints[[11, 12]].mean(axis=0)
    hips = keypoints[[23, 24]].mean(axis=0)
    return (shoulders + hips) / 2.0 + AIM_UP * (shoulders - hips)
