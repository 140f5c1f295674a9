"""The crop policy: where the pose detector should look in the next frame.

``teacher_rois`` is the ``FrameLoop.rois`` hook the robot (a real camera), ``coachcam replay`` and
``coachcam sim --perception model`` use: a crop around where the teacher will be, which extends
the landmarker's range (see ``MediaPipePoseDetector``); the whole frame when the teacher is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coachcam.geometry import Intrinsics, bearing_to_pixel, pixel_to_bearing
from tracker.tracker import SEEN_RECENTLY_S, Tracker, torso_target_px
from tracker.types import Pose, Roi

PERSON_BOX_TORSOS = 1.5  # a person's box reaches this many torso lengths from the torso centre

# Where the camera pointed (pan, tilt in degrees) at a time: ``PanTiltHead.pointing_at``.
PointingAt = Callable[[float], tuple[float, float]]


def person_box(pose: Pose, min_visibility: float) -> tuple[float, float, float, float] | None:
    """The box of a pose's visible keypoints, grown to at least ``PERSON_BOX_TORSOS`` torso
    lengths around the torso centre: a speaker seen from the chest up shows only shoulders and
    a face, and a crop that tight is too little for the landmarker to find a person in."""
    box = pose.bbox(min_visibility)
    c = torso_target_px(pose, min_visibility)
    if box is None or c is None:
        return box
    u, v, length = c
    r = PERSON_BOX_TORSOS * length
    return (min(box[0], u - r), min(box[1], v - r), max(box[2], u + r), max(box[3], v + r))


def teacher_rois(
    pointing_at: PointingAt, intr: Intrinsics, min_visibility: float
) -> Callable[[Tracker, float], Sequence[Roi]]:
    """The ``FrameLoop.rois`` hook: where the teacher will be in the next frame.

    The teacher's last pose box is turned into room bearings with the pointing at its capture,
    moved by the track's velocity to now, and projected with the pointing now, so the detector
    can look at a crop there (see ``MediaPipePoseDetector``). Nothing when the teacher was not
    seen recently: then the detector searches the whole frame. ``pointing_at`` is the head's
    (``PanTiltHead.pointing_at``).
    """

    def rois(tracker: Tracker, now: float) -> Sequence[Roi]:
        tr = tracker.teacher
        if tr is None or tr.last is None or now - tr.t_updated > SEEN_RECENTLY_S:
            return ()
        box = person_box(tr.last.pose, min_visibility)
        if box is None:
            return ()
        then = pointing_at(tr.last.t)
        cam = pointing_at(now)
        dt = now - tr.last.t
        vp, vt = float(tr.filt.v[0]) * dt, float(tr.filt.v[1]) * dt
        corners = []
        for u, v in ((box[0], box[1]), (box[2], box[3])):
            p, t = pixel_to_bearing(u, v, then[0], then[1], intr)
            corners.append(bearing_to_pixel(p + vp, t + vt, cam[0], cam[1], intr))
        (x0, y0), (x1, y1) = corners
        return (Roi(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),)

    return rois
