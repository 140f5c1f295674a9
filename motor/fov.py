"""Measure the camera's pixels per degree (and so its field of view) by moving an axis.

Move the axis by known angles from a reference pose and match ORB features between the
reference frame and each moved frame. For a pan about the vertical at tilt 0, a pixel column's
angle ``atan((u - cx) / fx)`` changes by exactly the pan angle; for a tilt, a row's angle
``atan((cy - v) / fx)`` changes by exactly the tilt angle. So the focal length ``fx`` is the one
value that makes every match agree; it is found by bisection on the median, robust to bad
matches. Phase correlation of the central crops is a cross-check. ``px_per_deg`` is reported
at the image centre: ``fx * pi / 180``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from coachcam.clock import Clock
from coachcam.errors import CalibrationError
from motor.servo import PanTiltHead

log = logging.getLogger(__name__)

MIN_MATCHES = 12


@dataclass
class FovSample:
    angle_deg: float
    matches: int
    inliers: int
    phase_shift_px: float


@dataclass
class FovResult:
    axis: str
    width: int
    height: int
    fx: float
    samples: list[FovSample] = field(default_factory=list)
    residual_deg: float = 0.0
    phase_fx: float | None = None

    @property
    def px_per_deg(self) -> float:
        return self.fx * math.pi / 180.0

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / 2.0 / self.fx))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.height / 2.0 / self.fx))


def to_gray(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3:
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    return img


def orb_matches(a: np.ndarray, b: np.ndarray, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Matched keypoint positions (N,2) in ``a`` and in ``b``."""
    import cv2

    orb = cv2.ORB_create(nfeatures=n)  # type: ignore[attr-defined]
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None or len(ka) < MIN_MATCHES or len(kb) < MIN_MATCHES:
        return np.zeros((0, 2)), np.zeros((0, 2))
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    pa = np.array([ka[m.queryIdx].pt for m in matches], dtype=float).reshape(-1, 2)
    pb = np.array([kb[m.trainIdx].pt for m in matches], dtype=float).reshape(-1, 2)
    return pa, pb


def phase_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Shift (dx, dy) of ``b`` against ``a`` over their central halves, and the peak response."""
    import cv2

    h, w = a.shape[:2]
    y0, y1, x0, x1 = h // 4, h - h // 4, w // 4, w - w // 4
    ca = a[y0:y1, x0:x1].astype(np.float32)
    cb = b[y0:y1, x0:x1].astype(np.float32)
    win = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
    (dx, dy), resp = cv2.phaseCorrelate(ca, cb, win)
    return float(dx), float(dy), float(resp)


def _angles(coord: np.ndarray, centre: float, fx: float, sign: float) -> np.ndarray:
    return np.degrees(np.arctan(sign * (coord - centre) / fx))


def fit_fx(
    pairs: list[tuple[float, np.ndarray, np.ndarray]], centre: float, sign: float
) -> tuple[float, float]:
    """The ``fx`` that makes the matched points' angular shifts equal the moves; and the RMS."""

    def ratios(fx: float) -> np.ndarray:
        out = [
            (_angles(c0, centre, fx, sign) - _angles(c1, centre, fx, sign)) / ang
            for ang, c0, c1 in pairs
        ]
        return np.concatenate(out)

    if not pairs or sum(len(c0) for _, c0, _ in pairs) == 0:
        raise CalibrationError("no matched features to measure the field of view from")
    # The angular shift a pixel displacement stands for falls as fx grows: bisect in log space.
    lo, hi = math.log(20.0), math.log(50000.0)
    if np.median(ratios(math.exp(lo))) < 1.0:
        raise CalibrationError(
            "the picture moved the wrong way or too little for the angles commanded: is the axis "
            "direction reversed (calibrate axis --direction) or the camera not on the head?"
        )
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.median(ratios(math.exp(mid))) > 1.0:
            lo = mid
        else:
            hi = mid
    fx = math.exp(0.5 * (lo + hi))
    resid = np.concatenate(
        [
            (_angles(c0, centre, fx, sign) - _angles(c1, centre, fx, sign)) - ang
            for ang, c0, c1 in pairs
        ]
    )
    return fx, float(np.sqrt(np.mean(resid**2)))


def measure_fov(
    head: PanTiltHead,
    grab: Callable[[], np.ndarray],
    clock: Clock,
    axis: str = "pan",
    angles: tuple[float, ...] = (-6.0, -3.0, 3.0, 6.0),
    settle_s: float = 0.5,
    speed_deg_s: float = 20.0,
) -> FovResult:
    """Move ``axis`` by each angle from the reference pose, match frames, fit ``fx``."""
    i = 0 if axis == "pan" else 1
    pan_ax, tilt_ax = head.pan_axis, head.tilt_axis
    # Pan is measured at tilt 0 (a pan about the vertical is then a pure shift of angles).
    ref = [pan_ax.home_deg, min(tilt_ax.max_deg, max(tilt_ax.min_deg, 0.0))]
    if axis == "tilt":
        ref[1] = min(tilt_ax.max_deg, max(tilt_ax.min_deg, (tilt_ax.min_deg + tilt_ax.max_deg) / 2))
    lim = (pan_ax, tilt_ax)[i]
    head.move_smoothly(ref[0], ref[1], speed_deg_s)
    clock.wait(settle_s)
    base = to_gray(grab())
    h, w = base.shape[:2]
    cx, cy = w / 2.0, h / 2.0
    pairs: list[tuple[float, np.ndarray, np.ndarray]] = []
    samples: list[FovSample] = []
    phase: list[tuple[float, float]] = []
    try:
        for ang in angles:
            pos = ref[i] + ang
            if not lim.min_deg <= pos <= lim.max_deg:
                log.warning("skipping %+.1f deg: outside the %s limits", ang, axis)
                continue
            target = list(ref)
            target[i] = pos
            head.move_smoothly(target[0], target[1], speed_deg_s)
            clock.wait(settle_s)
            img = to_gray(grab())
            pa, pb = orb_matches(base, img)
            dx, dy, _resp = phase_shift(base, img)
            phase.append((ang, dx if i == 0 else dy))
            coord = 0 if i == 0 else 1
            pairs.append((ang, pa[:, coord], pb[:, coord]))
            samples.append(FovSample(ang, len(pa), 0, dx if i == 0 else dy))
    finally:
        head.move_smoothly(ref[0], ref[1], speed_deg_s)
    if len(pairs) < 2:
        raise CalibrationError(f"fewer than two {axis} angles fit inside the limits")
    centre, sign = (cx, 1.0) if i == 0 else (cy, -1.0)
    fx, _ = fit_fx(pairs, centre, sign)
    # Keep the matches that agree with the fit within 0.25 deg, and fit again on those alone.
    kept = []
    for (ang, c0, c1), s in zip(pairs, samples, strict=True):
        err = (_angles(c0, centre, fx, sign) - _angles(c1, centre, fx, sign)) - ang
        ok = np.abs(err) < 0.25
        s.inliers = int(ok.sum())
        if s.inliers < MIN_MATCHES:
            raise CalibrationError(
                f"only {s.inliers} features agree at {ang:+.1f} deg of {axis}: the view has too "
                "little texture, or the camera is not fixed to the head"
            )
        kept.append((ang, c0[ok], c1[ok]))
    fx, resid = fit_fx(kept, centre, sign)
    # Cross-check: the central crop's phase-correlation shift, fx = |shift| / tan(angle).
    pfx = [abs(s) / math.tan(math.radians(abs(a))) for a, s in phase if abs(s) > 1.0]
    phase_fx = float(np.median(pfx)) if pfx else None
    if phase_fx is not None and abs(phase_fx - fx) / fx > 0.05:
        log.warning("phase correlation says fx %.0f px, feature matching %.0f px", phase_fx, fx)
    return FovResult(axis, w, h, fx, samples, resid, phase_fx)
