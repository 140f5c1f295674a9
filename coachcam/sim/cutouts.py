"""Real people cut out of the shared media, for the photo-real simulated classroom.

Each cut-out is one person from a still or a video frame of ``../shared/data/media`` (licences in
its SOURCES.md), segmented by the same offline MediaPipe pose landmarker the robot runs (its
``output_segmentation_masks``), with that person's 33 keypoints in cut-out pixels. Cut-outs are
built once and cached under the user's cache dir (``<cache>/cutouts``), keyed by the sha256 of the
source file and ``CUTOUT_VERSION``; a second run only reads the cache.

Kinds: ``"full"`` (standing, knees in the picture: the two people on the bridge) and ``"upper"``
(upper bodies: the astronaut, the cameraman, the podium speaker above the lectern).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.atomic import atomic_open
from coachcam.errors import ConfigError, ModelError
from tracker.types import HIPS, SHOULDERS

log = logging.getLogger(__name__)

CUTOUT_VERSION = "2"
MASK_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class CutoutSource:
    name: str
    file: str
    frame: int  # video frame index (0 for a still)
    pick: str  # which person when several: "left" | "right" | "only"
    kind: str  # "full" | "upper"
    cut_below: float | None = None  # drop rows this many torso lengths below the shoulders


SOURCES = (
    CutoutSource("bridge_left", "two_people_bridge_1080p24.mp4", 260, "left", "full"),
    CutoutSource("bridge_right", "two_people_bridge_1080p24.mp4", 260, "right", "full"),
    CutoutSource("astronaut", "astronaut.png", 0, "only", "upper"),
    CutoutSource("cameraman", "cameraman.png", 0, "only", "upper"),
    # The lectern is segmented with the speaker: keep what is above it.
    CutoutSource("podium", "podium_speaker_720p30.mp4", 30, "only", "upper", cut_below=0.25),
)


@dataclass(frozen=True, slots=True)
class Cutout:
    name: str
    kind: str
    bgra: np.ndarray  # HxWx4 uint8, alpha = the person's mask
    keypoints: np.ndarray  # (33, 3): x, y in cut-out pixels, visibility

    @property
    def shoulders(self) -> np.ndarray:
        return np.asarray(self.keypoints[list(SHOULDERS), :2].mean(axis=0))

    @property
    def hips(self) -> np.ndarray:
        return np.asarray(self.keypoints[list(HIPS), :2].mean(axis=0))

    def mirrored(self) -> Cutout:
        """The same person seen in a mirror (left and right keypoints keep their places)."""
        kp = self.keypoints.copy()
        kp[:, 0] = self.bgra.shape[1] - 1 - kp[:, 0]
        return Cutout(self.name + "-m", self.kind, np.ascontiguousarray(self.bgra[:, ::-1]), kp)


MEDIA_ENV = "COACHCAM_MEDIA_DIR"


def media_candidates() -> list[Path]:
    """Where the shared media may be without being told: ``shared/data/media`` beside the source
    tree (a checkout or an editable install), then beside the working directory's repository."""
    here = Path(__file__).resolve()
    out = [here.parents[2].parent / "shared" / "data" / "media"]
    cwd = Path.cwd() / ".." / "shared" / "data" / "media"
    if cwd.resolve() != out[0]:
        out.append(cwd.resolve())
    return out


def find_media_dir(explicit: Path | None = None) -> Path:
    """The shared media folder: ``explicit`` (``--media``), else ``$COACHCAM_MEDIA_DIR``, else
    the first of ``media_candidates`` that exists. A package installed into a venv has no
    repository beside it, so the error names every place tried and how to point at the media.
    """
    how = f"give --media DIR or set {MEDIA_ENV} to the folder holding SOURCES.md and the videos"
    if explicit is not None:
        if not explicit.is_dir():
            raise ConfigError(f"--media {explicit}: no such folder; {how}")
        return explicit
    env = os.environ.get(MEDIA_ENV)
    if env:
        if not Path(env).is_dir():
            raise ConfigError(f"{MEDIA_ENV}={env}: no such folder; {how}")
        return Path(env)
    tried = media_candidates()
    for path in tried:
        if path.is_dir():
            return path
    raise ConfigError(
        "shared media not found (the model simulation cuts real people out of them); looked in "
        + ", ".join(str(p) for p in tried)
        + f"; {how}"
    )


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("coachcam")) / "cutouts"


def _source_key(path: Path) -> str:
    h = hashlib.sha256(CUTOUT_VERSION.encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _read_source(path: Path, frame: int) -> np.ndarray:
    import cv2

    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        cap = cv2.VideoCapture(str(path))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, img = cap.read()
        finally:
            cap.release()
        img = img if ok else None
    if img is None:
        raise ConfigError(f"cannot read frame {frame} of {path}")
    return np.asarray(img)


def _segment(landmarker: Any, img: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mask 0..1, keypoints in pixels) of every person the landmarker finds."""
    import cv2
    import mediapipe as mp

    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    h, w = img.shape[:2]
    out = []
    for lms, mask in zip(result.pose_landmarks, result.segmentation_masks or [], strict=False):
        kp = np.array([(lm.x * w, lm.y * h, lm.visibility or 0.0) for lm in lms[:33]])
        out.append((np.asarray(mask.numpy_view())[..., 0].astype(np.float32), kp))
    return out


def _cut(src: CutoutSource, img: np.ndarray, people: list[tuple[np.ndarray, np.ndarray]]) -> Cutout:
    if not people:
        raise ModelError(f"no person found in {src.file} frame {src.frame} to cut out")
    people = sorted(people, key=lambda p: float(p[1][list(SHOULDERS), 0].mean()))
    mask, kp = people[-1] if src.pick == "right" else people[0]
    alpha = np.clip(mask, 0.0, 1.0)
    # What the mask adds far from the body (the cameraman's background) is not the person.
    seen = kp[kp[:, 2] >= 0.3, :2]
    s = kp[list(SHOULDERS), :2].mean(axis=0)
    torso = float(np.hypot(*(kp[list(HIPS), :2].mean(axis=0) - s)))
    if len(seen):
        lo = int(max(0.0, seen[:, 0].min() - 0.35 * torso))
        hi = int(seen[:, 0].max() + 0.35 * torso)
        alpha[:, :lo] = 0.0
        alpha[:, hi:] = 0.0
    if src.cut_below is not None:
        alpha[int(s[1] + src.cut_below * torso) :, :] = 0.0
    ys, xs = np.nonzero(alpha > MASK_THRESHOLD)
    if len(ys) == 0:
        raise ModelError(f"empty person mask in {src.file} frame {src.frame}")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bgra = np.dstack([img, (alpha * 255.0).astype(np.uint8)])[y0:y1, x0:x1].copy()
    kp = kp.copy()
    kp[:, 0] -= x0
    kp[:, 1] -= y0
    return Cutout(src.name, src.kind, bgra, kp)


def load_cutouts(
    media_dir: Path | None = None, model: str = "", cache: Path | None = None
) -> dict[str, Cutout]:
    """Every cut-out of ``SOURCES``, from the cache or built now (needs the pose bundle)."""
    media = find_media_dir(media_dir)
    cache = cache or cache_dir()
    out: dict[str, Cutout] = {}
    landmarker = None
    try:
        for src in SOURCES:
            path = media / src.file
            if not path.exists():
                raise ConfigError(f"cut-out source missing: {path} (see {media}/SOURCES.md)")
            cached = cache / f"{src.name}-{_source_key(path)}.npz"
            if cached.exists():
                with np.load(cached, allow_pickle=False) as z:
                    out[src.name] = Cutout(src.name, src.kind, z["bgra"], z["keypoints"])
                continue
            if landmarker is None:
                landmarker = _segmenter(model)
            img = _read_source(path, src.frame)
            cut = _cut(src, img, _segment(landmarker, img))
            # Durable: a cache file torn by a power cut would fail every later load (it is
            # trusted by name); written once per source, so the fsync costs nothing.
            with atomic_open(cached) as f:
                np.savez_compressed(f, bgra=cut.bgra, keypoints=cut.keypoints)
            log.info("cut out %s from %s into %s", src.name, path.name, cached)
            out[src.name] = cut
    finally:
        if landmarker is not None:
            landmarker.close()
    return out


def _segmenter(model: str) -> Any:
    from mediapipe.tasks.python import BaseOptions, vision

    from tracker.model_bundle import resolve_model

    opts = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(resolve_model(model))),
        running_mode=vision.RunningMode.IMAGE,
        num_poses=4,
        output_segmentation_masks=True,
    )
    return vision.PoseLandmarker.create_from_options(opts)
