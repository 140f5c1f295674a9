"""Clothing-colour signature of a person's torso, for telling the teacher from students.

The signature is a non-negative vector compared by ``tracker.types.appearance_distance``
(1 - Bhattacharyya coefficient). It is an HSV histogram (OpenCV's ``calcHist``) over the
shoulder-hip quadrilateral, shrunk towards its centre so background and arms count less:

- chromatic pixels (saturation >= ``MIN_SAT``) vote in a hue x saturation grid;
- achromatic pixels (black, grey, white clothes: their hue is noise) vote in value bins.

The polygon mask is ours because OpenCV has no "torso" notion; everything else is OpenCV.
"""

from __future__ import annotations

import numpy as np

from tracker.types import HIPS, SHOULDERS

HUE_BINS = 12
SAT_BINS = 3
VALUE_BINS = 4
MIN_SAT = 48  # of 255: below this the hue of a pixel is mostly noise
SHRINK = 0.8  # keep this fraction of the torso polygon (around its centroid)
MIN_PIXELS = 30
SIGNATURE_SIZE = HUE_BINS * SAT_BINS + VALUE_BINS


def torso_polygon(keypoints: np.ndarray, min_visibility: float = 0.3) -> np.ndarray | None:
    """Shoulder-hip quadrilateral in the keypoints' pixel coordinates (4x2), or None.

    Hips hidden (behind a lectern, out of the picture): the torso is taken to reach down one
    shoulder width below the shoulders.
    """
    ls, rs = keypoints[SHOULDERS[0]], keypoints[SHOULDERS[1]]
    if ls[2] < min_visibility or rs[2] < min_visibility:
        return None
    lh, rh = keypoints[HIPS[0]], keypoints[HIPS[1]]
    top_l, top_r = ls[:2].astype(float), rs[:2].astype(float)
    if lh[2] >= min_visibility and rh[2] >= min_visibility:
        bot_l, bot_r = lh[:2].astype(float), rh[:2].astype(float)
    else:
        width = float(np.hypot(*(top_l - top_r)))
        down = np.array([0.0, width])
        bot_l, bot_r = top_l + down, top_r + down
    quad = np.array([top_l, top_r, bot_r, bot_l])
    centre = quad.mean(axis=0)
    return centre + SHRINK * (quad - centre)


def torso_signature(
    image: np.ndarray, keypoints: np.ndarray, min_visibility: float = 0.3
) -> np.ndarray | None:
    """HSV signature (``SIGNATURE_SIZE`` floats summing to 1) of the torso, or None.

    ``image`` is BGR (HxWx3 uint8); ``keypoints`` (33x3) are in ``image``'s pixel coordinates.
    """
    import cv2

    if image is None or image.ndim != 3:
        return None
    quad = torso_polygon(keypoints, min_visibility)
    if quad is None:
        return None
    h, w = image.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    patch = image[y0:y1, x0:x1]
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad - (x0, y0)).astype(np.int32), 255)
    if int(np.count_nonzero(mask)) < MIN_PIXELS:
        return None
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
    chroma = cv2.bitwise_and(mask, (hsv[:, :, 1] >= MIN_SAT).astype(np.uint8) * 255)
    grey = cv2.bitwise_and(mask, cv2.bitwise_not(chroma))
    hs = cv2.calcHist([hsv], [0, 1], chroma, [HUE_BINS, SAT_BINS], [0, 180, MIN_SAT, 256])
    v = cv2.calcHist([hsv], [2], grey, [VALUE_BINS], [0, 256])
    sig = np.concatenate([hs.ravel(), v.ravel()]).astype(np.float32)
    total = float(sig.sum())
    return sig / total if total > 0 else None
