"""The real pose detector: MediaPipe Tasks ``PoseLandmarker`` behind the ``PoseDetector`` protocol.

Three ways of looking, chosen per frame by what the tracker passes in:

- **crops** (``rois`` given: the tracker predicts where the teacher is): each region of the
  *full-resolution* frame, grown by ``roi_margin``, is scaled to ``crop_px`` and given to its own
  VIDEO-mode landmarker with ``crop_poses`` poses. A person 100 px tall in 720p fills such a crop,
  so crops follow people far beyond the whole-frame limit (~250 px tall), and a landmarker that
  tracks its one pose skips its person detector, so steady tracking costs less than a whole-frame
  search for ``max_people``.
  If every crop comes back empty and ``crop_fallback`` is on, the whole frame is searched in
  the same call.
- **whole frame** (no ``rois``): the lores copy (or a ``detect_width`` downscale of the main image)
  goes to a VIDEO-mode landmarker with ``max_people`` poses.
- **masked passes** (no ``rois``, ``extra_passes`` > 0, off by default): BlazePose reports
  fewer people than stand side by side, so the people found are greyed out of the lores copy and
  an IMAGE-mode landmarker looks again, while it keeps finding someone new. It finds the second
  of two people side by side, but also finds "people" in flags (14% of podium-clip frames).
- **re-acquisition tiles** (no ``rois``, ``reacquire = "tiles"``): in addition, one tile of the
  full-resolution frame per frame, round robin, goes to an IMAGE-mode landmarker; poses not
  already found whole-frame are added. A person 80-120 px tall (whole frame: never) is found
  within 3-15 frames, at the cost of one more inference per frame (a 4x3 grid was no faster).
  OpenCV's HOG people detector was measured as the alternative and not taken: ~220 ms per 720p
  frame on 2 cores, and its 64x128 window misses people under ~128 px anyway.

Keypoints come back in *main-frame* pixels whatever the model ran on. Every pose gets a torso
clothing-colour signature (``tracker.appearance``) and, when ``badge_id >= 0``, the id of an ArUco
badge seen on its torso. mediapipe and cv2 are imported when the detector opens, not at import.

The constructor does no I/O; ``open()`` (or the first ``detect``) verifies and loads the model.
Use as a context manager; ``close()`` is idempotent and waits for a ``detect()`` running on
another thread.

How the tracker gets the most from it: pass ``rois`` = the predicted box of each person it
follows (main-frame pixels; the teacher alone in steady state), and no ``rois`` while searching.
Measured by ``coachcam bench perception`` (full model, 2 shared x86 cores): with a crop around
the predicted teacher, recall is 99-100% from 80 to 400 px tall, where one whole-frame pass finds
nobody under 150 px; a crop costs 0.55-0.65x a whole-frame pass (~13-17 ms vs ~22-30 ms). The
crop's landmark model is the floor: the official lite ``.task`` would lower both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from coachcam.clock import Clock, MonotonicClock
from coachcam.errors import CameraError, ModelError
from coachcam.frame import Frame
from tracker.appearance import torso_polygon, torso_signature
from tracker.config import TrackerConfig
from tracker.model_bundle import resolve_model
from tracker.types import HEAD_AND_TORSO, KP, NUM_KEYPOINTS, SHOULDERS, Detections, Pose, Roi

log = logging.getLogger(__name__)

MIN_CROP_PX = 32  # a region smaller than this (main-frame px) is grown to it
TILE_OVERLAP = 0.25
DUPLICATE_OVERLAP = 0.4  # a tile pose overlapping a found one this much is the same person


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over the smaller box: a person cut by a tile edge still matches in full."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def expand_roi(roi: Roi, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The region grown by ``margin`` of its size on each side, at least ``MIN_CROP_PX``,
    clamped to the frame; integer pixel bounds ``(x0, y0, x1, y1)``, possibly empty."""
    w = max(roi.x1 - roi.x0, 1.0)
    h = max(roi.y1 - roi.y0, 1.0)
    cx, cy = (roi.x0 + roi.x1) / 2.0, (roi.y0 + roi.y1) / 2.0
    half_w = max(w * (0.5 + margin), MIN_CROP_PX / 2.0)
    half_h = max(h * (0.5 + margin), MIN_CROP_PX / 2.0)
    x0 = int(max(0.0, np.floor(cx - half_w)))
    y0 = int(max(0.0, np.floor(cy - half_h)))
    x1 = int(min(float(width), np.ceil(cx + half_w)))
    y1 = int(min(float(height), np.ceil(cy + half_h)))
    x0, y0 = min(x0, width), min(y0, height)
    return x0, y0, max(x0, x1), max(y0, y1)  # a region wholly outside the frame is empty


def tile_regions(
    width: int, height: int, across: int, down: int
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles covering the frame (each overlaps its neighbour by ``TILE_OVERLAP``)."""
    tw = width / (across - (across - 1) * TILE_OVERLAP)
    th = height / (down - (down - 1) * TILE_OVERLAP)
    tiles = []
    for j in range(down):
        for i in range(across):
            x0 = i * tw * (1 - TILE_OVERLAP)
            y0 = j * th * (1 - TILE_OVERLAP)
            tiles.append(
                (
                    int(x0),
                    int(y0),
                    int(min(width, round(x0 + tw))),
                    int(min(height, round(y0 + th))),
                )
            )
    return tiles


class MediaPipePoseDetector:
    """``PoseDetector`` on MediaPipe Tasks ``PoseLandmarker`` (see the module docstring)."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        *,
        clock: Clock | None = None,
        model_path: str | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._clock = clock or MonotonicClock()
        self._model_arg = self.config.model if model_path is None else model_path
        self._model_path: str | None = None
        self._mp: Any = None
        self._cv2: Any = None
        self._wide: Any = None
        self._crops: dict[int, Any] = {}
        self._slot_centre: dict[int, tuple[float, float]] = {}
        self._still: Any = None
        self._last_ms: dict[int, int] = {}
        self._next_tile = 0
        self._aruco: Any = None
        self._closed = False
        # detect() may run on an inference thread while close() comes from the main loop.
        self._lock = threading.RLock()

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> MediaPipePoseDetector:
        """Verify the model file and load the whole-frame landmarker (idempotent)."""
        with self._lock:
            return self._open()

    def _open(self) -> MediaPipePoseDetector:
        if self._closed:
            raise ModelError("pose detector used after close()")
        if self._wide is not None:
            return self
        self._model_path = str(resolve_model(self._model_arg))
        import cv2
        import mediapipe as mp

        self._mp, self._cv2 = mp, cv2
        self._wide = self._landmarker(video=True, poses=self.config.max_people)
        if self.config.badge_id >= 0:
            self._aruco = self._make_aruco()
        log.info("pose detector open: %s", self._model_path)
        return self

    def close(self) -> None:
        """Release the landmarkers (safe twice; waits for a detect() in progress)."""
        with self._lock:
            for lm in [self._wide, self._still, *self._crops.values()]:
                if lm is not None:
                    lm.close()
            self._wide, self._still, self._crops = None, None, {}
            self._closed = True

    def __enter__(self) -> MediaPipePoseDetector:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _landmarker(self, *, video: bool, poses: int) -> Any:
        from mediapipe.tasks.python import BaseOptions, vision

        c = self.config
        opts = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=self._model_path),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_poses=poses,
            min_pose_detection_confidence=c.min_pose_score,
            min_pose_presence_confidence=c.min_pose_score,
            min_tracking_confidence=c.min_pose_score,
        )
        try:
            return vision.PoseLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"pose model failed to load: {self._model_path}: {first}") from None

    def _make_aruco(self) -> Any:
        aruco = self._cv2.aruco
        name = self.config.badge_dictionary
        if not hasattr(aruco, name):
            raise ModelError(f"unknown ArUco dictionary tracker.badge_dictionary = {name!r}")
        dictionary = aruco.getPredefinedDictionary(getattr(aruco, name))
        return aruco.ArucoDetector(dictionary, aruco.DetectorParameters())

    # -- detection --------------------------------------------------------------------------

    def detect(self, frame: Frame, rois: Sequence[Roi] = ()) -> Detections:
        """People in ``frame``: around ``rois`` only if given, else the whole frame (+ a tile).

        Keypoints are in main-frame pixels (``frame.width`` x ``frame.height``). At most
        ``max_people`` regions are looked at. Opens the detector on first use.
        """
        with self._lock:
            self._open()
            return self._detect(frame, rois[: self.config.max_people])

    def _detect(self, frame: Frame, rois: Sequence[Roi]) -> Detections:
        main = frame.image
        poses: list[Pose] = []
        if rois:
            boxes = [expand_roi(r, self.config.roi_margin, frame.width, frame.height) for r in rois]
            for slot, box in zip(self._assign_slots(boxes), boxes, strict=True):
                poses.extend(self._detect_region(frame, box, slot=slot))
            if not poses and self.config.crop_fallback:
                poses.extend(self._detect_wide(frame))
        else:
            poses.extend(self._detect_wide(frame))
            poses.extend(self._detect_masked(frame, poses))
            if self.config.reacquire == "tiles":
                poses.extend(self._detect_tile(frame, poses))
        src, scale = (main, 1.0) if main is not None else self._lores(frame)
        poses = [self._describe(p, src, scale) for p in poses]
        if self._aruco is not None and src is not None:
            poses = self._attach_badges(poses, src, scale)
        return Detections(
            t_capture=frame.t_capture,
            frame_index=frame.index,
            poses=tuple(poses),
            width=frame.width,
            height=frame.height,
            t_done=self._clock.now(),
        )

    def _assign_slots(self, boxes: Sequence[tuple[int, int, int, int]]) -> list[int]:
        """A crop landmarker for each box: the one whose last box was nearest.

        Each crop's VIDEO-mode landmarker tracks the pose it saw last, so a person must keep
        their landmarker from frame to frame whatever order the tracker lists the regions in.
        """
        centres = [((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, b[2] - b[0]) for b in boxes]
        free = dict(self._slot_centre)
        chosen: list[int] = []
        for cx, cy, size in centres:
            best, best_d = None, float("inf")
            for slot, (px, py) in free.items():
                d = float(np.hypot(cx - px, cy - py))
                if d < best_d and d <= size:
                    best, best_d = slot, d
            if best is None:
                used = set(chosen) | set(free)
                best = next(k for k in range(len(boxes) + len(self._slot_centre)) if k not in used)
            free.pop(best, None)
            chosen.append(best)
        for slot in [k for k in self._slot_centre if k not in chosen]:
            # Unused this frame: free for a new region (a stale track fails its own check).
            self._slot_centre.pop(slot)
        for slot, (cx, cy, _) in zip(chosen, centres, strict=True):
            self._slot_centre[slot] = (cx, cy)
        return chosen

    def _lores(self, frame: Frame) -> tuple[np.ndarray | None, float]:
        """The whole-frame input (lores copy or a downscale) and its scale to main pixels."""
        if frame.lores is not None:
            img = frame.lores
        elif frame.image is not None:
            w = min(self.config.detect_width, frame.width)
            h = max(1, round(frame.height * w / frame.width))
            img = self._cv2.resize(frame.image, (w, h), interpolation=self._cv2.INTER_AREA)
        else:
            return None, 1.0
        return img, img.shape[1] / frame.width

    def _timestamp_ms(self, key: int, t: float) -> int:
        # VIDEO mode wants strictly increasing timestamps per landmarker.
        ms = max(round(t * 1000.0), self._last_ms.get(key, -1) + 1)
        self._last_ms[key] = ms
        return ms

    def _run(self, landmarker: Any, bgr: np.ndarray, ts_key: int | None, t: float) -> list[Any]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=self._rgb(bgr))
        try:
            if ts_key is None:
                result = landmarker.detect(image)
            else:
                result = landmarker.detect_for_video(image, self._timestamp_ms(ts_key, t))
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"pose landmarker failed: {first}") from exc
        return list(result.pose_landmarks)

    def _rgb(self, img: np.ndarray) -> np.ndarray:
        """BGR (or grey, or BGRx as picamera2's XBGR8888 arrives) uint8 -> contiguous RGB."""
        cv2 = self._cv2
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise CameraError(f"frame pixels must be uint8 HxW[xC], got {img.dtype} {img.shape}")
        if img.ndim == 2:
            return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        channels = img.shape[2]
        if channels == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if channels == 4:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        raise CameraError(f"frame pixels must have 1, 3 or 4 channels, got shape {img.shape}")

    @staticmethod
    def _to_pose(landmarks: Any, x0: float, y0: float, sx: float, sy: float) -> Pose:
        """Landmarks normalised to a region -> a Pose in main-frame pixels."""
        kp = np.empty((NUM_KEYPOINTS, 3), dtype=np.float64)
        for i, lm in enumerate(landmarks[:NUM_KEYPOINTS]):
            vis = lm.visibility if lm.visibility is not None else 1.0
            kp[i] = (x0 + lm.x * sx, y0 + lm.y * sy, min(1.0, max(0.0, vis)))
        score = float(np.mean(kp[list(HEAD_AND_TORSO), 2]))
        return Pose(keypoints=kp, score=score)

    def _detect_wide(self, frame: Frame) -> list[Pose]:
        img, _ = self._lores(frame)
        if img is None:
            return []
        found = self._run(self._wide, img, -1, frame.t_capture)
        return [self._to_pose(lms, 0.0, 0.0, frame.width, frame.height) for lms in found]

    def _crop(self, frame: Frame, box: tuple[int, int, int, int]) -> np.ndarray | None:
        """Pixels of a main-frame box from the best image the frame has, scaled to crop_px."""
        x0, y0, x1, y1 = box
        if frame.image is not None:
            src, s = frame.image, 1.0
        elif frame.lores is not None:
            src, s = frame.lores, frame.lores.shape[1] / frame.width
        else:
            return None
        patch = src[int(y0 * s) : int(np.ceil(y1 * s)), int(x0 * s) : int(np.ceil(x1 * s))]
        if patch.shape[0] < 2 or patch.shape[1] < 2:
            return None
        long_side = max(patch.shape[:2])
        k = self.config.crop_px / long_side
        size = (max(1, round(patch.shape[1] * k)), max(1, round(patch.shape[0] * k)))
        interp = self._cv2.INTER_LINEAR  # INTER_AREA costs ~3 ms here; the model resamples anyway
        return self._cv2.resize(patch, size, interpolation=interp)

    def _detect_region(
        self, frame: Frame, box: tuple[int, int, int, int], slot: int | None
    ) -> list[Pose]:
        """Poses in a main-frame box; ``slot`` = the crop's VIDEO landmarker, None = IMAGE mode."""
        img = self._crop(frame, box)
        if img is None:
            return []
        if slot is None:
            landmarker, key = self._image_landmarker(), None
        else:
            if slot not in self._crops:
                self._crops[slot] = self._landmarker(video=True, poses=self.config.crop_poses)
            landmarker, key = self._crops[slot], slot
        found = self._run(landmarker, img, key, frame.t_capture)
        x0, y0, x1, y1 = box
        return [self._to_pose(lms, x0, y0, x1 - x0, y1 - y0) for lms in found]

    def _image_landmarker(self) -> Any:
        if self._still is None:
            self._still = self._landmarker(video=False, poses=self.config.max_people)
        return self._still

    def _detect_masked(self, frame: Frame, found: list[Pose]) -> list[Pose]:
        """Look again with the people found so far greyed out (``extra_passes`` times).

        BlazePose reports fewer people than stand side by side; hiding the ones it found lets
        its detector pick the next. Our own few lines: no library does this for a landmarker.
        """
        img, scale = self._lores(frame)
        if img is None or not found:
            return []
        img = img.copy()
        fill = int(np.median(img))
        masks = [m for m in (self._mask_box(p) for p in found) if m]
        new: list[Pose] = []
        for _ in range(self.config.extra_passes):
            for x0, y0, x1, y1 in masks:
                img[
                    max(0, int(y0 * scale)) : int(np.ceil(y1 * scale)),
                    max(0, int(x0 * scale)) : int(np.ceil(x1 * scale)),
                ] = fill
            landmarks = self._run(self._image_landmarker(), img, None, frame.t_capture)
            added = []
            for lms in landmarks:
                pose = self._to_pose(lms, 0.0, 0.0, frame.width, frame.height)
                b = pose.bbox(self.config.min_visibility)
                m = self._mask_box(pose)
                # Something at the edge of a greyed-out person is what was left of them.
                if b and m and all(overlap(b, k) < DUPLICATE_OVERLAP for k in masks):
                    added.append(pose)
                    masks.append(m)
            if not added:
                break
            new.extend(added)
        return new

    def _mask_box(self, pose: Pose) -> tuple[float, float, float, float] | None:
        """A person's keypoint box grown to cover the whole head (keypoints stop at the eyes)."""
        b = pose.bbox(self.config.min_visibility)
        if b is None:
            return None
        x0, y0, x1, y1 = b
        kp = pose.keypoints
        neck = float(kp[list(SHOULDERS), 1].mean() - kp[KP["nose"], 1])
        gx, gy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
        return (x0 - gx, y0 - max(gy, 1.5 * neck), x1 + gx, y1 + gy)

    def _detect_tile(self, frame: Frame, found: list[Pose]) -> list[Pose]:
        across, down = self.config.tile_grid
        tiles = tile_regions(frame.width, frame.height, across, down)
        box = tiles[self._next_tile % len(tiles)]
        self._next_tile = (self._next_tile + 1) % len(tiles)
        known = [b for b in (p.bbox(self.config.min_visibility) for p in found) if b]
        new = []
        for pose in self._detect_region(frame, box, slot=None):
            b = pose.bbox(self.config.min_visibility)
            if b is not None and all(overlap(b, k) < DUPLICATE_OVERLAP for k in known):
                new.append(pose)
                known.append(b)
        return new

    # -- description: appearance and badge ----------------------------------------------------

    def _describe(self, pose: Pose, image: np.ndarray | None, scale: float) -> Pose:
        if image is None:
            return pose
        kp = pose.keypoints.copy()
        kp[:, :2] *= scale
        sig = torso_signature(image, kp, self.config.min_visibility)
        if sig is None:
            return pose
        return Pose(pose.keypoints, pose.score, sig, pose.marker_id, pose.truth_id)

    def _attach_badges(self, poses: list[Pose], image: np.ndarray, scale: float) -> list[Pose]:
        grey = image if image.ndim == 2 else self._cv2.cvtColor(image, self._cv2.COLOR_BGR2GRAY)
        corners, ids, _ = self._aruco.detectMarkers(grey)
        if ids is None or len(ids) == 0:
            return poses
        out = list(poses)
        for quad, marker in zip(corners, np.asarray(ids).ravel(), strict=False):
            centre = np.asarray(quad, dtype=float).reshape(-1, 2).mean(axis=0) / scale
            for k, pose in enumerate(out):
                torso = torso_polygon(pose.keypoints, self.config.min_visibility)
                if torso is None:
                    continue
                c = torso.mean(axis=0)
                # The torso polygon is shrunk; a badge may sit near its edge: test a grown box.
                half = np.abs(torso - c).max(axis=0) * 1.5
                if np.all(np.abs(centre - c) <= half):
                    out[k] = Pose(pose.keypoints, pose.score, pose.appearance, int(marker))
                    break
        return out
