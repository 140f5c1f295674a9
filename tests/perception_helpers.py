"""Shared pieces of the perception tests: the shared media, frames from it, small scenes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from coachcam.errors import ModelError
from coachcam.frame import Frame

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
PODIUM = MEDIA / "podium_speaker_720p30.mp4"
TWO_PEOPLE = MEDIA / "two_people_bridge_1080p24.mp4"
# The podium speaker's upper body in the clip's first frames (main-frame px), measured once.
PODIUM_BOX = (300.0, 210.0, 870.0, 600.0)

needs_media = pytest.mark.skipif(
    not PODIUM.exists() or not TWO_PEOPLE.exists(),
    reason=f"shared media absent: {MEDIA} (see ../shared/data/media/SOURCES.md)",
)


def require_bundle() -> None:
    """Fail (not skip) without the pose bundle: ./dev setup (CI's first step) builds it."""
    from tracker.model_bundle import resolve_model

    try:
        resolve_model("")
    except ModelError as exc:
        pytest.fail(str(exc))


@cache
def video_frames(path: Path, count: int, step: int) -> tuple[np.ndarray, ...]:
    """``count`` frames, every ``step``-th from the start (BGR), decoded once per test run."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    i = 0
    try:
        while len(out) < count:
            ok, img = cap.read()
            if not ok:
                break
            if i % step == 0:
                out.append(img)
            i += 1
    finally:
        cap.release()
    if len(out) < count:
        raise AssertionError(f"{path} gave {len(out)} frames, wanted {count}")
    return tuple(out)


def frame_of(image: np.ndarray, index: int, fps: float = 30.0) -> Frame:
    h, w = image.shape[:2]
    return Frame(index=index, t_capture=index / fps, width=w, height=h, image=image)


def pasted(
    person: np.ndarray,
    scale: float,
    at: tuple[int, int],
    size: tuple[int, int] = (1280, 720),
    background: int = 110,
) -> np.ndarray:
    """``person`` scaled by ``scale`` and pasted with its top-left at ``at`` on a flat canvas."""
    import cv2

    small = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((size[1], size[0], 3), background, np.uint8)
    x, y = at
    h = min(small.shape[0], size[1] - y)
    w = min(small.shape[1], size[0] - x)
    canvas[y : y + h, x : x + w] = small[:h, :w]
    return canvas
