"""The real pose model on real footage, behind the PoseDetector protocol.

Counts are asserted, never times. Frames are decoded once per run (perception_helpers).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from perception_helpers import (
    PODIUM,
    PODIUM_BOX,
    TWO_PEOPLE,
    frame_of,
    needs_media,
    pasted,
    require_bundle,
    video_frames,
)

from coachcam.errors import CameraError, ModelError
from coachcam.frame import Frame
from tracker.appearance import SIGNATURE_SIZE, torso_signature
from tracker.config import TrackerConfig
from tracker.mediapipe_detector import MediaPipePoseDetector, expand_roi, tile_regions
from tracker.types import KP, PoseDetector, Roi, appearance_distance


def podium_frames() -> tuple[np.ndarray, ...]:
    return video_frames(PODIUM, 6, 60)  # 6 frames over the 12 s clip


def two_people_frames() -> tuple[np.ndarray, ...]:
    return video_frames(TWO_PEOPLE, 6, 48)


# -- no model needed -----------------------------------------------------------------------


def test_constructor_does_no_io_and_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    det = MediaPipePoseDetector(TrackerConfig(model=str(tmp_path / "gone.task")))  # no raise
    with pytest.raises(ModelError, match=r"pose model not found: .*gone.task"):
        det.open()


def test_a_corrupt_model_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "pose_landmarker_lite.task"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match=r"corrupt"):
        MediaPipePoseDetector(TrackerConfig(model=str(bad))).open()


@given(
    x=st.floats(-100, 1400),
    y=st.floats(-100, 800),
    w=st.floats(0, 900),
    h=st.floats(0, 900),
    margin=st.floats(0, 2),
)
def test_expanded_roi_stays_in_frame_and_covers_the_roi(
    x: float, y: float, w: float, h: float, margin: float
) -> None:
    x0, y0, x1, y1 = expand_roi(Roi(x, y, x + w, y + h), margin, 1280, 720)
    assert 0 <= x0 <= x1 <= 1280 and 0 <= y0 <= y1 <= 720
    assert x0 <= max(0.0, min(x, 1280.0)) and x1 >= min(1280.0, max(0.0, x + w)) - 1e-6
    assert y0 <= max(0.0, min(y, 720.0)) and y1 >= min(720.0, max(0.0, y + h)) - 1e-6


@given(st.integers(1, 6), st.integers(1, 6), st.integers(160, 2000), st.integers(120, 1200))
def test_tiles_cover_the_frame(across: int, down: int, width: int, height: int) -> None:
    tiles = tile_regions(width, height, across, down)
    assert len(tiles) == across * down
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def torso_scene(bgr: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((200, 200, 3), 30, np.uint8)
    img[60:160, 60:140] = bgr
    kp = np.zeros((33, 3))
    for name, xy in {
        "left_shoulder": (140, 60),
        "right_shoulder": (60, 60),
        "left_hip": (130, 160),
        "right_hip": (70, 160),
    }.items():
        kp[KP[name]] = (*xy, 1.0)
    return img, kp


def test_torso_signature_tells_shirts_apart() -> None:
    red, blue, grey = ((20, 20, 200), (200, 40, 20), (128, 128, 128))
    sig = {c: torso_signature(*torso_scene(c)) for c in (red, blue, grey)}
    assert all(
        s is not None and s.shape == (SIGNATURE_SIZE,) and s.min() >= 0 for s in sig.values()
    )
    assert appearance_distance(sig[red], torso_signature(*torso_scene(red))) == pytest.approx(0)
    assert appearance_distance(sig[red], sig[blue]) > 0.9
    assert appearance_distance(sig[red], sig[grey]) > 0.9


def test_torso_signature_needs_shoulders() -> None:
    img, kp = torso_scene((0, 0, 255))
    kp[KP["left_shoulder"], 2] = 0.0
    assert torso_signature(img, kp) is None


# -- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle() -> None:
    require_bundle()


@pytest.fixture
def detector(bundle: None) -> Iterator[MediaPipePoseDetector]:
    with MediaPipePoseDetector(TrackerConfig(max_people=4)) as det:
        yield det


def test_it_is_a_pose_detector_that_loads_nothing_until_used(tmp_path: Path) -> None:
    """The protocol's methods with the protocol's parameters; the constructor does no I/O (a
    missing model is found out on first use, named); close() is safe twice and final."""
    for name in ("detect", "close"):
        want = inspect.signature(getattr(PoseDetector, name)).parameters
        got = inspect.signature(getattr(MediaPipePoseDetector, name)).parameters
        assert list(got) == list(want), name
    missing = tmp_path / "no-such-model.task"
    det: PoseDetector = MediaPipePoseDetector(model_path=str(missing))  # no error yet
    frame = Frame(0, 0.0, 64, 64, image=np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ModelError, match=r"no-such-model\.task"):
        det.detect(frame)
    det.close()
    det.close()  # idempotent
    with pytest.raises(ModelError, match=r"after close"):
        det.detect(frame)  # closed stays closed: it does not reopen


def test_detect_after_close_is_an_error(detector: MediaPipePoseDetector) -> None:
    detector.close()
    with pytest.raises(ModelError, match=r"after close"):
        detector.detect(Frame(0, 0.0, 64, 64, image=np.zeros((64, 64, 3), np.uint8)))


def test_a_frame_without_pixels_finds_nobody(detector: MediaPipePoseDetector) -> None:
    d = detector.detect(Frame(3, 0.1, 1280, 720))
    assert d.poses == () and d.frame_index == 3 and d.t_capture == 0.1


@needs_media
def test_one_pose_on_every_podium_frame(detector: MediaPipePoseDetector) -> None:
    for i, img in enumerate(podium_frames()):
        d = detector.detect(frame_of(img, i * 60))
        assert len(d.poses) == 1, f"frame {i * 60}: {len(d.poses)} poses"
        pose = d.poses[0]
        assert (d.width, d.height, d.frame_index) == (1280, 720, i * 60)
        x0, y0, x1, _ = pose.bbox()  # type: ignore[misc]
        # In main-frame pixels, on the speaker (not in the lores copy's 640x360 range).
        assert PODIUM_BOX[0] - 150 < x0 < x1 < PODIUM_BOX[2] + 250
        assert PODIUM_BOX[1] - 80 < y0 < PODIUM_BOX[3] + 60
        assert pose.keypoints[KP["nose"], 1] < pose.keypoints[KP["left_shoulder"], 1]
        assert pose.appearance is not None and pose.score > 0.5


@needs_media
def test_two_poses_on_the_two_people_clip(detector: MediaPipePoseDetector) -> None:
    counts = []
    for i, img in enumerate(two_people_frames()):
        d = detector.detect(frame_of(img, i * 48, fps=24))
        counts.append(len(d.poses))
    assert counts == [2] * len(counts)


@needs_media
def test_appearance_keeps_the_two_people_apart(detector: MediaPipePoseDetector) -> None:
    left, right = [], []
    for i, img in enumerate(two_people_frames()[:4]):
        poses = sorted(
            detector.detect(frame_of(img, i * 48, fps=24)).poses,
            key=lambda p: p.keypoints[KP["nose"], 0],
        )
        left.append(poses[0].appearance)
        right.append(poses[-1].appearance)
    same = [appearance_distance(a, b) for a, b in itertools.pairwise(left)]
    same += [appearance_distance(a, b) for a, b in itertools.pairwise(right)]
    other = [appearance_distance(a, b) for a, b in zip(left, right, strict=True)]
    assert max(d for d in same if d is not None) < min(d for d in other if d is not None)


@needs_media
def test_lores_copy_gives_main_frame_coordinates(detector: MediaPipePoseDetector) -> None:
    import cv2

    img = podium_frames()[0]
    lores = cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA)
    full = detector.detect(frame_of(img, 0)).poses[0]
    with MediaPipePoseDetector(TrackerConfig(reacquire="off")) as other:
        low = other.detect(Frame(0, 0.0, 1280, 720, lores=lores)).poses[0]
    torso = [KP["left_shoulder"], KP["right_shoulder"], KP["nose"]]
    assert np.abs(full.keypoints[torso, :2] - low.keypoints[torso, :2]).max() < 25


@needs_media
def test_crop_mode_finds_a_small_person_whole_frame_misses(bundle: None) -> None:
    scale, at = 0.16, (600, 300)
    canvas = pasted(podium_frames()[0], scale, at)
    box = [at[0] + c * scale if k % 2 == 0 else at[1] + c * scale for k, c in enumerate(PODIUM_BOX)]
    roi = Roi(*box)
    cfg = TrackerConfig(reacquire="off")
    with MediaPipePoseDetector(cfg) as det:
        whole = [det.detect(frame_of(canvas, i)).poses for i in range(3)]
        crop = [det.detect(frame_of(canvas, 10 + i), rois=[roi]).poses for i in range(3)]
    assert whole == [(), (), ()]
    assert [len(p) for p in crop] == [1, 1, 1]
    nose = crop[-1][0].keypoints[KP["nose"], :2]
    assert roi.x0 - 10 < nose[0] < roi.x1 + 10 and roi.y0 - 10 < nose[1] < roi.y1 + 10


@needs_media
def test_tiles_reacquire_a_small_person_within_one_cycle(bundle: None) -> None:
    canvas = pasted(podium_frames()[0], 0.2, (150, 100))
    cfg = TrackerConfig(reacquire="tiles", tile_grid=(3, 2))
    with MediaPipePoseDetector(cfg) as det:
        found = [len(det.detect(frame_of(canvas, i)).poses) for i in range(6)]
    assert max(found) == 1, found


@needs_media
def test_a_worn_badge_names_its_wearer(bundle: None) -> None:
    import cv2

    img = podium_frames()[0].copy()
    marker = cv2.aruco.generateImageMarker(
        cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), 7, 60
    )
    badge = np.full((80, 80), 255, np.uint8)
    badge[10:70, 10:70] = marker
    with MediaPipePoseDetector(TrackerConfig(reacquire="off")) as det:
        chest = det.detect(frame_of(img, 0)).poses[0].keypoints
        cx = int((chest[KP["left_shoulder"], 0] + chest[KP["right_shoulder"], 0]) / 2)
        cy = int(chest[KP["left_shoulder"], 1]) + 60
    img[cy - 40 : cy + 40, cx - 40 : cx + 40] = badge[:, :, None]
    cfg = TrackerConfig(reacquire="off", badge_id=7)
    with MediaPipePoseDetector(cfg) as det:
        poses = det.detect(frame_of(img, 1)).poses
    assert [p.marker_id for p in poses] == [7]


def test_each_region_keeps_its_crop_landmarker_whatever_the_order() -> None:
    det = MediaPipePoseDetector()
    a, b = (100, 100, 200, 300), (800, 100, 900, 300)
    assert det._assign_slots([a, b]) == [0, 1]
    moved_a, moved_b = (110, 100, 210, 300), (790, 110, 890, 310)
    assert det._assign_slots([moved_b, moved_a]) == [1, 0]
    far = (500, 400, 560, 500)
    assert det._assign_slots([far, moved_a]) == [2, 0]  # b's slot is free again, far is new
    assert det._assign_slots([moved_b]) == [1]


@needs_media
def test_bgrx_frames_as_picamera2_gives_them(detector: MediaPipePoseDetector) -> None:
    img = podium_frames()[0]
    bgrx = np.concatenate([img, np.full((*img.shape[:2], 1), 255, np.uint8)], axis=2)
    assert len(detector.detect(frame_of(bgrx, 0)).poses) == 1


def test_pixels_of_the_wrong_kind_are_a_clear_error(detector: MediaPipePoseDetector) -> None:
    bad = Frame(0, 0.0, 64, 48, image=np.zeros((48, 64, 3), np.float32))
    with pytest.raises(CameraError, match="uint8"):
        detector.detect(bad)


@needs_media
@pytest.mark.parametrize("fallback", [True, False])
def test_empty_crops_fall_back_to_the_whole_frame(bundle: None, fallback: bool) -> None:
    img = podium_frames()[0]
    nowhere = Roi(1100, 20, 1200, 120)  # the speaker is not there
    with MediaPipePoseDetector(TrackerConfig(reacquire="off", crop_fallback=fallback)) as det:
        poses = det.detect(frame_of(img, 0), rois=[nowhere]).poses
    assert len(poses) == (1 if fallback else 0)


@needs_media
def test_masked_pass_finds_the_second_of_two_side_by_side(bundle: None) -> None:
    from coachcam.benchmarks.perception import cutout, paste, synthetic_room

    person = cutout(podium_frames()[0], PODIUM_BOX)
    room = synthetic_room()
    paste(room, person, 300, 150, bottom=560)
    paste(room, person, 300, 500, bottom=560)
    found = {}
    for passes in (0, 1):
        with MediaPipePoseDetector(TrackerConfig(reacquire="off", extra_passes=passes)) as det:
            found[passes] = [len(det.detect(frame_of(room, i)).poses) for i in range(2)]
    assert found == {0: [1, 1], 1: [2, 2]}
