"""The simulated classroom at a moment in time: people's 3-D keypoints and what hides them."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from coachcam.sim.body import body_keypoints, target_point
from coachcam.sim.scenario import Occluder, Scenario

HUE_BINS = 12


@dataclass(frozen=True, slots=True)
class PersonState:
    id: int
    role: str
    posture: str
    keypoints: np.ndarray  # (33, 3) room coordinates, z relative to the *camera* height
    target: np.ndarray  # (3,) the aim point, same frame
    speed: float
    appearance: np.ndarray


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth of one simulated frame (for the oracle detector and the report only)."""

    t: float
    cam_pan: float
    cam_tilt: float
    people: tuple[PersonState, ...]
    teacher_id: int
    occluders: tuple[Occluder, ...]


def hue_signature(hue_deg: float, sat: float = 0.8) -> np.ndarray:
    """A clothing-colour signature: a hue histogram with a little spread, like a real torso crop."""
    centres = (np.arange(HUE_BINS) + 0.5) * (360.0 / HUE_BINS)
    d = np.abs(((centres - hue_deg) + 180.0) % 360.0 - 180.0)
    sig = np.exp(-0.5 * (d / 18.0) ** 2) * sat + (1.0 - sat) / HUE_BINS
    return np.asarray(sig / sig.sum())


def shirt_rgb(hue_deg: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, 0.7, 0.8)
    return int(r * 255), int(g * 255), int(b * 255)


class Classroom:
    """People and occluders of a scenario, evaluated at any time."""

    def __init__(self, scenario: Scenario, camera_height_m: float, seed: int = 0) -> None:
        self.scenario = scenario
        self.camera_height = camera_height_m
        rng = np.random.default_rng(seed + 7919)
        self.hues = [
            p.shirt_hue_deg if p.shirt_hue_deg is not None else float(rng.uniform(0, 360))
            for p in scenario.people
        ]
        self.appearances = [hue_signature(h) for h in self.hues]

    @property
    def teacher_id(self) -> int:
        return self.scenario.teacher_index

    def people_at(self, t: float) -> tuple[PersonState, ...]:
        out = []
        for i, p in enumerate(self.scenario.people):
            x, y = p.position(t)
            # Facing the camera (at the origin): what a class camera mostly sees.
            kp = body_keypoints(x, y, p.body_height, p.posture, (-x, -y))
            kp[:, 2] -= self.camera_height
            out.append(
                PersonState(
                    id=i,
                    role=p.role,
                    posture=p.posture,
                    keypoints=kp,
                    target=target_point(kp),
                    speed=p.speed(t),
                    appearance=self.appearances[i],
                )
            )
        return tuple(out)

    def occluder_boxes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        h = self.camera_height
        return [
            (np.array([o.x[0], o.y[0], o.z[0] - h]), np.array([o.x[1], o.y[1], o.z[1] - h]))
            for o in self.scenario.occluders
        ]


def occluded(points: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Mask of points whose line of sight from the camera (origin) passes through a box.

    Slab test of the segment origin→point against each axis-aligned box.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    hidden = np.zeros(len(pts), dtype=bool)
    for lo, hi in boxes:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = lo[None, :] / pts
            t2 = hi[None, :] / pts
        tmin = np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2))
        tmax = np.where(np.isnan(t1), np.inf, np.maximum(t1, t2))
        # Axis where the direction is 0: inside the slab iff 0 lies within [lo, hi].
        zero = pts == 0
        inside = (lo[None, :] <= 0) & (hi[None, :] >= 0)
        tmin = np.where(zero, np.where(inside, -np.inf, np.inf), tmin)
        tmax = np.where(zero, np.where(inside, np.inf, -np.inf), tmax)
        enter = tmin.max(axis=1)
        leave = tmax.min(axis=1)
        hidden |= (enter <= leave) & (leave > 0) & (enter < 1.0)
    return hidden
