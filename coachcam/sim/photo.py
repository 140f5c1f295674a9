"""The simulated classroom drawn with real people in it, so the real pose model can run in the loop.

``PhotoRenderer`` draws, per frame and at the camera's pan/tilt: a room (back and side walls, a
board, floor), then every person and box far to near (painter's order). Each person is a real
person's cut-out (``coachcam.sim.cutouts``) scaled so that its shoulder-to-hip length matches the
person's projected torso and placed at their projected shoulders; the torso is recoloured to the
scenario's ``shirt_hue_deg``. Standing people (teacher, adults) are knee-up cut-outs from the
bridge clip with lower legs drawn down to their projected ankles; seated students are upper-body
cut-outs behind a desk box (desks are drawn only, the oracle knows nothing of them). Scenario
occluders are drawn as boxes. Output: the main image and its lores copy.

``PhotoCamera`` wraps the ``SimCamera`` so its frames carry those pixels; ``AttributedDetector``
wraps the real detector so each pose it finds gets the ground-truth person it shows
(``attribute_poses``), which the report needs for followed person and wrong-person %.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.frame import Frame
from coachcam.geometry import Intrinsics, project
from coachcam.sim.cutouts import Cutout
from coachcam.sim.world import Classroom, Truth
from tracker.types import HIPS, SHOULDERS, Detections, PoseDetector, Roi

log = logging.getLogger(__name__)

Box3 = tuple[tuple[float, float, float], tuple[float, float, float]]  # (lo, hi) room corners

WALL_Y = 7.0  # back wall (m from the camera)
SIDE_X = 5.0  # side walls at +-SIDE_X
WALL_BGR = (196, 204, 212)
SIDE_BGR = (176, 186, 196)
FLOOR_BGR = (96, 112, 128)
BOARD_BGR = (236, 238, 236)
BOARD_FRAME_BGR = (60, 60, 60)
DESK_BGR = (80, 125, 165)
DESK_TOP_BGR = (120, 170, 210)
OCCLUDER_BGR = (70, 85, 100)
OCCLUDER_TOP_BGR = (110, 125, 140)
TROUSERS_BGR = (70, 52, 40)
SHOES_BGR = (30, 30, 30)
DESK = (0.8, 0.45, 0.72)  # width, depth, height (m)
DESK_GAP = 0.2  # from the student's body to the desk's far edge (m)
NEAR_M = 0.15  # faces are clipped this far in front of the camera
SCALE_STEP = 0.01  # cut-outs are resized in 1 % steps (a still student's resize is reused)
STANDING_CUTOUTS = ("bridge_left", "bridge_right")
SEATED_CUTOUTS = ("astronaut", "podium", "cameraman")


def _forward(pan_deg: float, tilt_deg: float) -> np.ndarray:
    # Same convention as coachcam.geometry.project (its basis is private).
    p, t = math.radians(pan_deg), math.radians(tilt_deg)
    return np.array([math.sin(p) * math.cos(t), math.cos(p) * math.cos(t), math.sin(t)])


def _clip_near(poly: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """A 3-D polygon clipped to depth >= NEAR_M (one Sutherland-Hodgman plane: no library
    clips 3-D polygons before OpenCV's 2-D fill)."""
    out = []
    n = len(poly)
    depth = poly @ fwd - NEAR_M
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        da, db = depth[i], depth[(i + 1) % n]
        if da >= 0:
            out.append(a)
        if (da >= 0) != (db >= 0):
            out.append(a + (b - a) * (da / (da - db)))
    return np.array(out)


def tint_torso(cut: Cutout, hue_deg: float) -> Cutout:
    """The cut-out with its clothes between shoulders and hips recoloured to ``hue_deg``."""
    import cv2

    kp = cut.keypoints
    ls, rs, lh, rh = (kp[i, :2] for i in (SHOULDERS[0], SHOULDERS[1], HIPS[0], HIPS[1]))
    out_s = (ls - rs) * 0.3  # the sleeves and a jacket reach past the shoulder points
    out_h = (lh - rh) * 0.6
    quad = np.array([ls + out_s, rs - out_s, rh - out_h, lh + out_h])
    region = np.zeros(cut.bgra.shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(region, np.round(quad).astype(np.int32), 255)
    # Start a little below the collar so the face and neck keep their colour.
    top = int(max(0.0, min(ls[1], rs[1]) - 0.05 * float(np.hypot(*(ls - rs)))))
    region[:top] = 0
    sel = (region > 0) & (cut.bgra[..., 3] > 128)
    hsv = cv2.cvtColor(np.ascontiguousarray(cut.bgra[..., :3]), cv2.COLOR_BGR2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h[sel] = round(hue_deg / 2.0) % 180
    s[sel] = np.maximum(s[sel], 170)
    v[sel] = (v[sel].astype(np.float32) * 0.55 + 90).astype(np.uint8)
    bgra = cut.bgra.copy()
    bgra[..., :3] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return Cutout(cut.name, cut.kind, bgra, kp)


def extend_to_hips(cut: Cutout) -> Cutout:
    """An upper-body cut-out grown down past its hips by repeating its last row, so a desk
    rather than the picture's edge ends it."""
    import cv2

    need = math.ceil(cut.hips[1] + 0.2 * float(np.hypot(*(cut.hips - cut.shoulders))))
    extra = need - cut.bgra.shape[0]
    if extra <= 0:
        return cut
    bgra = cv2.copyMakeBorder(cut.bgra, 0, extra, 0, 0, cv2.BORDER_REPLICATE)
    return Cutout(cut.name, cut.kind, bgra, cut.keypoints)


class PhotoRenderer:
    """Renders a ``Truth`` as BGR pixels (see the module docstring). No I/O: the cut-outs are
    given; looks (tinted cut-outs) are prepared on the first render."""

    def __init__(
        self,
        classroom: Classroom,
        intr: Intrinsics,
        cutouts: Mapping[str, Cutout],
        lores_width: int = 640,
    ) -> None:
        self.classroom = classroom
        self.intr = intr
        self.cutouts = cutouts
        self.lores_width = lores_width
        self._looks: list[Cutout] | None = None
        self._scaled: dict[int, tuple[float, np.ndarray]] = {}

    def _prepare(self) -> list[Cutout]:
        looks = []
        n_seated = 0
        for i, p in enumerate(self.classroom.scenario.people):
            hue = self.classroom.hues[i]
            if p.posture == "seated":
                cut = self.cutouts[SEATED_CUTOUTS[n_seated % len(SEATED_CUTOUTS)]]
                if (n_seated // len(SEATED_CUTOUTS)) % 2:
                    cut = cut.mirrored()
                n_seated += 1
                cut = extend_to_hips(cut)
            else:
                # The teacher and the other standing people wear different real people.
                name = STANDING_CUTOUTS[0 if p.role == "teacher" else 1]
                cut = self.cutouts[name]
            looks.append(tint_torso(cut, hue))
        return looks

    def render(self, truth: Truth) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        if self._looks is None:
            self._looks = self._prepare()
        intr = self.intr
        img = np.empty((intr.height, intr.width, 3), dtype=np.uint8)
        img[:] = WALL_BGR
        fwd = _forward(truth.cam_pan, truth.cam_tilt)
        self._room(img, truth, fwd)
        items: list[tuple[float, str, Any]] = []
        for p in truth.people:
            items.append((float(np.hypot(p.target[0], p.target[1])), "person", p))
            if p.posture == "seated":
                desk = self._desk(p.keypoints)
                items.append((_box_distance(desk), "desk", desk))
        for lo, hi in self.classroom.occluder_boxes():
            box: Box3 = (tuple(lo), tuple(hi))  # type: ignore[assignment]
            items.append((_box_distance(box), "occluder", box))
        for _, kind, obj in sorted(items, key=lambda it: -it[0]):
            if kind == "person":
                self._person(img, obj, truth)
            elif kind == "desk":
                self._box(img, obj, truth, fwd, DESK_BGR, DESK_TOP_BGR)
            else:
                self._box(img, obj, truth, fwd, OCCLUDER_BGR, OCCLUDER_TOP_BGR)
        lh = round(intr.height * self.lores_width / intr.width)
        lores = cv2.resize(img, (self.lores_width, lh), interpolation=cv2.INTER_AREA)
        return img, lores

    # -- the room ---------------------------------------------------------------------------

    def _quad(
        self, img: np.ndarray, pts: Sequence[Sequence[float]], truth: Truth, fwd: np.ndarray,
        colour: tuple[int, int, int],
    ) -> None:  # fmt: skip
        import cv2

        poly = _clip_near(np.asarray(pts, dtype=float), fwd)
        if len(poly) < 3:
            return
        uv, _ = project(poly, truth.cam_pan, truth.cam_tilt, self.intr)
        if not np.isfinite(uv).all():
            return
        uv = np.clip(uv, -1e5, 1e5)
        cv2.fillPoly(img, [np.round(uv * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)

    def _room(self, img: np.ndarray, truth: Truth, fwd: np.ndarray) -> None:
        h = self.classroom.camera_height
        floor, ceil = -h, 3.0 - h
        self._quad(img, [(-SIDE_X, 0.3, floor), (SIDE_X, 0.3, floor), (SIDE_X, WALL_Y, floor),
                         (-SIDE_X, WALL_Y, floor)], truth, fwd, FLOOR_BGR)  # fmt: skip
        for x in (-SIDE_X, SIDE_X):
            self._quad(img, [(x, 0.3, floor), (x, WALL_Y, floor), (x, WALL_Y, ceil),
                             (x, 0.3, ceil)], truth, fwd, SIDE_BGR)  # fmt: skip
        wy = WALL_Y - 0.02
        self._quad(img, [(-2.3, wy, 0.75 - h), (2.3, wy, 0.75 - h), (2.3, wy, 2.25 - h),
                         (-2.3, wy, 2.25 - h)], truth, fwd, BOARD_FRAME_BGR)  # fmt: skip
        self._quad(img, [(-2.2, wy, 0.85 - h), (2.2, wy, 0.85 - h), (2.2, wy, 2.15 - h),
                         (-2.2, wy, 2.15 - h)], truth, fwd, BOARD_BGR)  # fmt: skip
        # A door and a poster so the picture moves with the camera wherever it points.
        self._quad(img, [(3.2, wy, floor), (4.2, wy, floor), (4.2, wy, 2.1 - h),
                         (3.2, wy, 2.1 - h)], truth, fwd, (90, 110, 140))  # fmt: skip
        self._quad(img, [(-4.0, wy, 1.2 - h), (-3.2, wy, 1.2 - h), (-3.2, wy, 2.0 - h),
                         (-4.0, wy, 2.0 - h)], truth, fwd, (60, 140, 200))  # fmt: skip

    def _box(
        self, img: np.ndarray, box: Box3, truth: Truth, fwd: np.ndarray,
        side: tuple[int, int, int], top: tuple[int, int, int],
    ) -> None:  # fmt: skip
        (x0, y0, z0), (x1, y1, z1) = box
        faces = [
            ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], side),  # front
            ([(x0, y0, z0), (x0, y1, z0), (x0, y1, z1), (x0, y0, z1)], side),  # left
            ([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], side),  # right
            ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], top),  # top
        ]
        # The faces seen from the camera: a box is convex, so far faces first is enough.
        faces.sort(key=lambda f: -float(np.linalg.norm(np.mean(f[0], axis=0))))
        for pts, colour in faces:
            self._quad(img, pts, truth, fwd, colour)

    def _desk(self, kp: np.ndarray) -> Box3:
        """A desk in front of a seated student (towards the camera, which they face)."""
        hips = kp[list(HIPS)].mean(axis=0)
        x, y = float(hips[0]), float(hips[1])
        d = math.hypot(x, y) or 1.0
        ux, uy = x / d, y / d  # from the camera to the student
        near = d - DESK_GAP - DESK[1]
        cx, cy = ux * (near + DESK[1] / 2.0), uy * (near + DESK[1] / 2.0)
        floor = -self.classroom.camera_height
        return (
            (cx - DESK[0] / 2.0, cy - DESK[1] / 2.0, floor),
            (cx + DESK[0] / 2.0, cy + DESK[1] / 2.0, floor + DESK[2]),
        )

    # -- people -----------------------------------------------------------------------------

    def _person(self, img: np.ndarray, p: Any, truth: Truth) -> None:
        import cv2

        assert self._looks is not None
        look = self._looks[p.id]
        uv, front = project(p.keypoints, truth.cam_pan, truth.cam_tilt, self.intr)
        if not front.all():
            return
        sh = uv[list(SHOULDERS)].mean(axis=0)
        hp = uv[list(HIPS)].mean(axis=0)
        torso_px = float(np.hypot(*(hp - sh)))
        torso_cut = float(np.hypot(*(look.hips - look.shoulders)))
        if torso_px < 2.0 or torso_cut < 1.0:
            return
        k = math.exp(round(math.log(torso_px / torso_cut) / SCALE_STEP) * SCALE_STEP)
        x0 = float(sh[0] - k * look.shoulders[0])
        y0 = float(sh[1] - k * look.shoulders[1])
        if look.kind == "full" and p.posture == "standing":
            self._legs(img, look, k, x0, y0, uv, torso_px)
        h, w = look.bgra.shape[:2]
        H, W = img.shape[:2]
        if w * k > 2 * W or h * k > 2 * H:
            # Someone right beside the lens: scale only the part that lands in the picture.
            c0 = max(0, int((0 - x0) / k)), max(0, int((0 - y0) / k))
            c1 = min(w, math.ceil((W - x0) / k)), min(h, math.ceil((H - y0) / k))
            if c1[0] <= c0[0] or c1[1] <= c0[1]:
                return
            part = look.bgra[c0[1] : c1[1], c0[0] : c1[0]]
            size = (max(1, round(part.shape[1] * k)), max(1, round(part.shape[0] * k)))
            part = cv2.resize(part, size, interpolation=cv2.INTER_LINEAR)
            _paste(img, part, round(x0 + c0[0] * k), round(y0 + c0[1] * k))
            return
        cached = self._scaled.get(p.id)
        if cached is None or cached[0] != k:
            size = (max(1, round(w * k)), max(1, round(h * k)))
            cached = (k, cv2.resize(look.bgra, size, interpolation=cv2.INTER_AREA))
            self._scaled[p.id] = cached
        _paste(img, cached[1], round(x0), round(y0))

    def _legs(
        self, img: np.ndarray, look: Cutout, k: float, x0: float, y0: float, uv: np.ndarray,
        torso_px: float,
    ) -> None:  # fmt: skip
        """Lower legs from the cut-out's knees (or its bottom edge) to the projected ankles."""
        import cv2

        bottom = y0 + k * look.bgra.shape[0]
        for knee_i, ankle_i in ((25, 27), (26, 28)):
            knee = np.array(
                [x0 + k * look.keypoints[knee_i, 0], y0 + k * look.keypoints[knee_i, 1]]
            )
            knee[1] = min(knee[1], bottom - 0.1 * torso_px)
            ankle = uv[ankle_i]
            if ankle[1] <= knee[1]:
                continue
            wk, wa = 0.16 * torso_px, 0.11 * torso_px
            off_k, off_a = np.array([wk, 0.0]), np.array([wa, 0.0])
            poly = np.array([knee - off_k, knee + off_k, ankle + off_a, ankle - off_a])
            cv2.fillConvexPoly(img, np.round(poly * 16).astype(np.int32), TROUSERS_BGR,
                               cv2.LINE_AA, shift=4)  # fmt: skip
            centre = (round(float(ankle[0])), round(float(ankle[1])))
            axes = (max(1, int(0.16 * torso_px)), max(1, int(0.06 * torso_px)))
            cv2.ellipse(img, centre, axes, 0, 0, 360, SHOES_BGR, -1, cv2.LINE_AA)


def _box_distance(box: Box3) -> float:
    (x0, y0, _), (x1, y1, _) = box
    return float(np.hypot((x0 + x1) / 2.0, (y0 + y1) / 2.0))


def _paste(img: np.ndarray, bgra: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``bgra`` onto ``img`` with its top-left corner at (x, y), clipped."""
    h, w = bgra.shape[:2]
    H, W = img.shape[:2]
    ax0, ay0 = max(0, -x), max(0, -y)
    bx0, by0 = max(0, x), max(0, y)
    bx1, by1 = min(W, x + w), min(H, y + h)
    if bx1 <= bx0 or by1 <= by0:
        return
    src = bgra[ay0 : ay0 + (by1 - by0), ax0 : ax0 + (bx1 - bx0)]
    dst = img[by0:by1, bx0:bx1]
    a = src[..., 3:4].astype(np.uint16)
    blended = (src[..., :3].astype(np.uint16) * a + dst.astype(np.uint16) * (255 - a)) // 255
    dst[:] = blended.astype(np.uint8)


class PhotoCamera:
    """A frame source: the ``SimCamera``'s frames with the ``PhotoRenderer``'s pixels."""

    def __init__(self, camera: Any, renderer: PhotoRenderer) -> None:
        self.camera = camera
        self.renderer = renderer

    def start(self) -> None:
        self.camera.start()

    def read(self) -> Frame | None:
        frame = self.camera.read()
        if frame is None:
            return None
        image, lores = self.renderer.render(frame.truth)
        return dataclasses.replace(frame, image=image, lores=lores)

    def close(self) -> None:
        self.camera.close()


ATTRIBUTION_GATE = 0.6  # of the person's projected torso length, at least MIN_GATE_PX
MIN_GATE_PX = 12.0


def attribute_poses(
    poses: Sequence[Any], truth: Truth, intr: Intrinsics, min_visibility: float = 0.5
) -> list[int | None]:
    """The simulated person each detected pose shows, for the report only (never the tracker).

    The real model's poses carry no ground truth. A pose is attributed to the simulated person
    whose projected torso centre (mean of shoulders and hips, as the camera pointed at capture)
    is nearest to the pose's torso centre (its visible shoulders and hips), if within
    ``ATTRIBUTION_GATE`` of that person's projected torso length; one pose per person, nearest
    pairs first. Anything else (a false pose, a pose between people) gets None, so following
    it counts as following the wrong person.
    """
    torso = list(SHOULDERS) + list(HIPS)
    centres, gates = [], []
    for p in truth.people:
        uv, front = project(p.keypoints[torso], truth.cam_pan, truth.cam_tilt, intr)
        if not front.all():
            centres.append(np.array([np.nan, np.nan]))
            gates.append(0.0)
            continue
        centres.append(uv.mean(axis=0))
        length = float(np.hypot(*(uv[:2].mean(axis=0) - uv[2:].mean(axis=0))))
        gates.append(max(MIN_GATE_PX, ATTRIBUTION_GATE * length))
    pairs = []
    for i, pose in enumerate(poses):
        kp = pose.keypoints[torso]
        vis = kp[:, 2] >= min_visibility
        c = kp[vis, :2].mean(axis=0) if vis.any() else kp[:, :2].mean(axis=0)
        for j, (pc, gate) in enumerate(zip(centres, gates, strict=True)):
            d = float(np.hypot(*(c - pc)))
            if d <= gate:
                pairs.append((d, i, j))
    out: list[int | None] = [None] * len(poses)
    taken: set[int] = set()
    for _, i, j in sorted(pairs):
        if out[i] is None and j not in taken:
            out[i] = truth.people[j].id
            taken.add(j)
    return out


class AttributedDetector:
    """A real detector whose poses get ``truth_id`` from ``attribute_poses`` (report only)."""

    def __init__(self, detector: PoseDetector, intr: Intrinsics, min_visibility: float) -> None:
        self.detector = detector
        self.intr = intr
        self.min_visibility = min_visibility

    def detect(self, frame: Frame, rois: Sequence[Roi] = ()) -> Detections:
        d = self.detector.detect(frame, rois)
        ids = attribute_poses(d.poses, frame.truth, self.intr, self.min_visibility)
        poses = tuple(dataclasses.replace(p, truth_id=i) for p, i in zip(d.poses, ids, strict=True))
        return dataclasses.replace(d, poses=poses)

    def close(self) -> None:
        self.detector.close()


def model_perception(
    cfg: Any,
    classroom: Classroom,
    camera: Any,
    intr: Intrinsics,
    clock: Any,
    media_dir: Path | None = None,
) -> tuple[PhotoCamera, AttributedDetector]:
    """The frame source and detector of ``run_sim(perception="model")``: rendered pictures of
    real people and the MediaPipe landmarker of ``cfg.tracker`` (opened on first detection)."""
    from coachcam.sim.cutouts import load_cutouts
    from tracker.mediapipe_detector import MediaPipePoseDetector

    cutouts = load_cutouts(media_dir, cfg.tracker.model)
    renderer = PhotoRenderer(classroom, intr, cutouts, cfg.camera.lores_width)
    detector = MediaPipePoseDetector(cfg.tracker, clock=clock)
    return PhotoCamera(camera, renderer), AttributedDetector(
        detector, intr, cfg.tracker.min_visibility
    )
