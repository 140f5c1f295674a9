"""A simulated camera looking at a textured room, for calibrating the field of view in simulation.

The room is a seeded equirectangular texture (multi-scale noise plus posters, windows and a
board: plenty of corners for feature matching). ``PanoramaCamera.render()`` projects it through
a pinhole camera (``coachcam.geometry``) pointing wherever the simulated servos *really* are,
so moving the servos shifts the picture exactly as a real camera's would. Written here because
the simulated classroom draws no pixels, and this is all ``coachcam calibrate fov`` needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from coachcam.geometry import Intrinsics

LAT_SPAN_DEG = 75.0  # the texture covers latitudes -75..75


def room_texture(seed: int = 0, px_per_deg: float = 10.0) -> np.ndarray:
    """A grey, seamless-in-longitude texture of a room (H x W uint8)."""
    import cv2

    rng = np.random.default_rng(seed)
    w = round(360 * px_per_deg)
    h = round(2 * LAT_SPAN_DEG * px_per_deg)
    tex = np.zeros((h, w), np.float32)
    for octave, weight in ((8, 0.35), (32, 0.3), (128, 0.2), (512, 0.15)):
        small = rng.random((max(2, h * octave // w), octave)).astype(np.float32)
        tex += weight * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(160):  # posters, windows, a board: sharp-edged rectangles
        rw, rh = int(rng.integers(w // 200, w // 25)), int(rng.integers(h // 60, h // 8))
        x, y = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
        tex[y : y + rh, x : x + rw] = float(rng.random())
    tex += rng.normal(0.0, 0.03, tex.shape).astype(np.float32)
    return np.clip(tex * 255.0, 0, 255).astype(np.uint8)


class PanoramaCamera:
    """Renders grey frames of the textured room for a camera at ``pointing()`` (pan, tilt)."""

    def __init__(
        self,
        pointing: Callable[[], tuple[float, float]],
        intr: Intrinsics,
        seed: int = 0,
        texture_px_per_deg: float = 10.0,
    ) -> None:
        self.pointing = pointing
        self.intr = intr
        self.seed = seed
        self.texture_px_per_deg = texture_px_per_deg
        self._texture: np.ndarray | None = None
        self._rays: tuple[np.ndarray, np.ndarray] | None = None

    def render(self) -> np.ndarray:
        import cv2

        from coachcam.geometry import _basis

        if self._texture is None:
            self._texture = room_texture(self.seed, self.texture_px_per_deg)
        if self._rays is None:
            i = self.intr
            u, v = np.meshgrid(
                np.arange(i.width, dtype=np.float32), np.arange(i.height, dtype=np.float32)
            )
            self._rays = ((u - i.cx) / i.fx, (v - i.cy) / i.fx)
        a, b = self._rays
        fwd, right, up = (x.astype(np.float32) for x in _basis(*self.pointing()))
        dx = fwd[0] + a * right[0] - b * up[0]
        dy = fwd[1] + a * right[1] - b * up[1]
        dz = fwd[2] + a * right[2] - b * up[2]
        lon = np.degrees(np.arctan2(dx, dy))
        lat = np.degrees(np.arctan2(dz, np.hypot(dx, dy)))
        ppd = self.texture_px_per_deg
        map_x = ((lon + 180.0) * ppd).astype(np.float32)
        map_y = ((LAT_SPAN_DEG - lat) * ppd).astype(np.float32)
        out: Any = cv2.remap(
            self._texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        return np.asarray(out)
