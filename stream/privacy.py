"""Privacy before encoding: pixelate the faces of everyone but the teacher, mask privacy zones.

Faces come from the pose keypoints the tracker already has (MediaPipe's 0-10: nose, eyes, ears,
mouth), so no second detector runs. The live stream and the local recording both get frames
that went through here: nothing un-blurred leaves ``apply_privacy``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coachcam.values import HEAD, SHOULDERS, Pose
from stream.config import PrivacyConfig

_HEAD = np.asarray(HEAD)
_SHOULDERS = np.asarray(SHOULDERS)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive), clipped to the image


def face_box(pose: Pose, width: int, height: int, cfg: PrivacyConfig) -> Box | None:
    """The region to blur for one pose, or ``None`` if no head keypoint is seen."""
    kp = np.asarray(pose.keypoints, dtype=np.float64)
    head = kp[_HEAD]
    seen = head[head[:, 2] >= cfg.min_visibility, :2]
    seen = seen[np.isfinite(seen).all(axis=1)]
    if len(seen) == 0:
        return None
    cx, cy = seen.mean(axis=0)
    side = float(max(np.ptp(seen[:, 0]), np.ptp(seen[:, 1])))
    # Eyes-to-ears spans about half a head; a lone nose gives no size, so use the shoulders.
    side *= 1.6
    sh = kp[_SHOULDERS]
    sh = sh[sh[:, 2] >= cfg.min_visibility, :2]
    if len(sh) == 2:
        side = max(side, 0.6 * float(np.hypot(*(sh[0] - sh[1]))))
    side = max(side, cfg.min_face_frac * height) * (1.0 + cfg.face_margin)
    half = side / 2.0
    x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
    x1, y1 = int(np.ceil(cx + half)), int(np.ceil(cy + half))
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def zone_boxes(width: int, height: int, cfg: PrivacyConfig) -> list[Box]:
    out = []
    for x0, y0, x1, y1 in cfg.zones:
        b = (int(x0 * width), int(y0 * height), int(np.ceil(x1 * width)), int(np.ceil(y1 * height)))
        if b[2] > b[0] and b[3] > b[1]:
            out.append(b)
    return out


def pixelate(image: np.ndarray, box: Box, block: int) -> None:
    """Replace ``box`` by block averages, in place (irreversible, and cheaper than a big blur)."""
    import cv2

    x0, y0, x1, y1 = box
    roi = image[y0:y1, x0:x1]
    h, w = roi.shape[:2]
    small = cv2.resize(roi, (max(1, w // block), max(1, h // block)), interpolation=cv2.INTER_AREA)
    image[y0:y1, x0:x1] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def apply_privacy(
    image: np.ndarray,
    poses: Sequence[Pose],
    teacher_index: int | None,
    cfg: PrivacyConfig,
) -> np.ndarray:
    """Return ``image`` with non-teacher faces pixelated and privacy zones masked.

    ``image`` itself is not modified (the tracker may still read it); when there is nothing to
    do it is returned as is. ``teacher_index`` indexes ``poses``; ``None`` blurs everyone.
    """
    if not cfg.enabled:
        return image
    h, w = image.shape[:2]
    faces: list[Box] = []
    if cfg.blur_faces:
        for i, pose in enumerate(poses):
            if i == teacher_index:
                continue
            b = face_box(pose, w, h, cfg)
            if b is not None:
                faces.append(b)
    zones = zone_boxes(w, h, cfg)
    if not faces and not zones:
        return image
    out = image.copy()
    for b in faces:
        pixelate(out, b, cfg.block_px)
    for x0, y0, x1, y1 in zones:
        out[y0:y1, x0:x1] = 0
    return out
