"""Draw the simulated classroom as the camera sees it (for streaming and previews).

Stick figures in their clothing colour on a plain room, drawn with OpenCV; not photo-real (the
real pose model is exercised on real footage, see ``coachcam replay``), but it gives the
encoder, the recorder and the privacy filter real pixels to work on.
"""

from __future__ import annotations

import numpy as np

from coachcam.geometry import Intrinsics, project
from coachcam.sim.world import Truth, shirt_rgb

BONES = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 31), (28, 32),
)  # fmt: skip


def render_view(truth: Truth, intr: Intrinsics, hues: list[float]) -> np.ndarray:
    import cv2

    img = np.full((intr.height, intr.width, 3), (200, 205, 210), dtype=np.uint8)
    # the floor below the horizon
    horizon = int(intr.cy + intr.fx * np.tan(np.radians(truth.cam_tilt)))
    if horizon < intr.height:
        img[max(0, horizon) :, :] = (120, 130, 140)
    # far people first, so nearer ones are drawn over them
    people = sorted(truth.people, key=lambda p: -float(np.hypot(p.target[0], p.target[1])))
    for p in people:
        uv, front = project(p.keypoints, truth.cam_pan, truth.cam_tilt, intr)
        if not front.all():
            continue
        r, g, b = shirt_rgb(hues[p.id])
        scale = float(np.hypot(*(uv[11] - uv[23]))) or 1.0
        thick = max(2, int(scale / 4))
        pts = uv.astype(int)
        for a, c in BONES:
            cv2.line(img, tuple(pts[a]), tuple(pts[c]), (b, g, r), thick, cv2.LINE_AA)
        head = tuple(pts[0])
        cv2.circle(img, head, max(3, int(scale / 3.5)), (150, 170, 200), -1, cv2.LINE_AA)
    return img
