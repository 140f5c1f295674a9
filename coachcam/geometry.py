"""Pan/tilt pinhole camera geometry, in room angles.

Room frame: camera at the origin, x to the right, y away from the camera (into the room), z up.
Pan is positive to the right (towards +x), tilt positive upwards, both in degrees; pan 0 and
tilt 0 look along +y. Pixel coordinates have (0, 0) at the top-left corner.

The controller works in these room angles, not in pixels (DESIGN.md, "Control"): a detection
made at ``t_capture`` is converted to a bearing with the camera pose *at that time*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Intrinsics:
    width: int
    height: int
    hfov_deg: float

    @property
    def fx(self) -> float:
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan((self.height / 2.0) / self.fx))

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same lens seen at another resolution (e.g. the lores stream)."""
        return Intrinsics(width, height, self.hfov_deg)


def _basis(pan_deg: float, tilt_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward, right and up unit vectors of a camera at (pan, tilt)."""
    p, t = math.radians(pan_deg), math.radians(tilt_deg)
    sp, cp, st, ct = math.sin(p), math.cos(p), math.sin(t), math.cos(t)
    fwd = np.array([sp * ct, cp * ct, st])
    right = np.array([cp, -sp, 0.0])
    up = np.array([-sp * st, -cp * st, ct])
    return fwd, right, up


def project(
    points: np.ndarray, pan_deg: float, tilt_deg: float, intr: Intrinsics
) -> tuple[np.ndarray, np.ndarray]:
    """Project room points (N,3; z is height relative to the camera) to pixels.

    Returns ``(uv, in_front)``: pixel coordinates (N,2) and a mask of points in front of the
    camera (behind-camera points get NaN pixels).
    """
    fwd, right, up = _basis(pan_deg, tilt_deg)
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    depth = pts @ fwd
    in_front = depth > 1e-6
    safe = np.where(in_front, depth, np.nan)
    u = intr.cx + intr.fx * (pts @ right) / safe
    v = intr.cy - intr.fx * (pts @ up) / safe
    return np.stack([u, v], axis=1), in_front


def bearing_of_point(point: np.ndarray) -> tuple[float, float]:
    """Room (pan, tilt) in degrees of the direction from the camera to a point."""
    x, y, z = (float(c) for c in point)
    return math.degrees(math.atan2(x, y)), math.degrees(math.atan2(z, math.hypot(x, y)))


def pixel_to_bearing(
    u: float, v: float, pan_deg: float, tilt_deg: float, intr: Intrinsics
) -> tuple[float, float]:
    """Room (pan, tilt) of the ray through pixel (u, v) of a camera pointing at (pan, tilt)."""
    fwd, right, up = _basis(pan_deg, tilt_deg)
    ray = fwd + ((u - intr.cx) / intr.fx) * right - ((v - intr.cy) / intr.fx) * up
    return bearing_of_point(ray)


def bearing_to_pixel(
    pan: float, tilt: float, cam_pan: float, cam_tilt: float, intr: Intrinsics
) -> tuple[float, float]:
    """Pixel at which a room bearing appears for a camera at (cam_pan, cam_tilt)."""
    p, t = math.radians(pan), math.radians(tilt)
    d = np.array([[math.sin(p) * math.cos(t), math.cos(p) * math.cos(t), math.sin(t)]])
    uv, _ = project(d, cam_pan, cam_tilt, intr)
    return float(uv[0, 0]), float(uv[0, 1])


def angle_between(pan1: float, tilt1: float, pan2: float, tilt2: float) -> float:
    """Great-circle angle in degrees between two room bearings."""
    a1, b1, a2, b2 = (math.radians(x) for x in (pan1, tilt1, pan2, tilt2))
    c = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))
