"""Privacy: faces of everyone but the teacher pixelated, zones masked, teacher untouched."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.config import PrivacyConfig
from stream.privacy import apply_privacy, face_box
from tracker.types import Pose

W, H = 640, 360
CFG = PrivacyConfig()


def person(cx: float, cy: float, head: float = 30.0, vis: float = 1.0) -> Pose:
    """A pose whose head keypoints sit around (cx, cy) and shoulders below."""
    kp = np.zeros((33, 3))
    offsets = [(0, 0), (-5, -6), (-8, -6), (-11, -6), (5, -6), (8, -6), (11, -6), (-15, -2),
               (15, -2), (-5, 8), (5, 8)]  # fmt: skip
    for i, (dx, dy) in enumerate(offsets):
        kp[i] = (cx + dx * head / 30, cy + dy * head / 30, vis)
    kp[11] = (cx - head, cy + head * 1.5, vis)
    kp[12] = (cx + head, cy + head * 1.5, vis)
    return Pose(kp)


def textured() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, (H, W, 3), dtype=np.uint8)


def test_non_teacher_faces_are_pixelated_teacher_is_not() -> None:
    img = textured()
    poses = [person(150, 120), person(450, 120)]
    out = apply_privacy(img, poses, teacher_index=0, cfg=CFG)
    student = face_box(poses[1], W, H, CFG)
    teacher = face_box(poses[0], W, H, CFG)
    assert student is not None and teacher is not None
    x0, y0, x1, y1 = student
    assert not np.array_equal(out[y0:y1, x0:x1], img[y0:y1, x0:x1])
    x0, y0, x1, y1 = teacher
    assert np.array_equal(out[y0:y1, x0:x1], img[y0:y1, x0:x1])
    assert img is not out and np.array_equal(img, textured()), "the input is not modified"


def test_the_blur_destroys_detail() -> None:
    img = textured()
    out = apply_privacy(img, [person(320, 180)], teacher_index=None, cfg=CFG)
    x0, y0, _, _ = face_box(person(320, 180), W, H, CFG)  # type: ignore[misc]
    block = CFG.block_px
    roi = out[y0 : y0 + block * 2, x0 : x0 + block * 2].astype(int)
    # within a pixelation block all pixels are equal
    assert (roi[:block, :block] == roi[0, 0]).all()


def test_zones_are_masked_and_nothing_to_do_returns_the_same_image() -> None:
    img = textured()
    assert apply_privacy(img, [], None, CFG) is img
    cfg = PrivacyConfig(zones=[[0.0, 0.5, 0.5, 1.0]])
    out = apply_privacy(img, [], None, cfg)
    assert (out[H // 2 :, : W // 2] == 0).all()
    assert np.array_equal(out[: H // 2], img[: H // 2])


def test_disabled_does_nothing() -> None:
    img = textured()
    cfg = PrivacyConfig(enabled=False, zones=[[0, 0, 1, 1]])
    assert apply_privacy(img, [person(100, 100)], None, cfg) is img


def test_invisible_heads_are_not_boxes() -> None:
    assert face_box(person(100, 100, vis=0.0), W, H, CFG) is None


@settings(max_examples=60, deadline=None)
@given(
    cx=st.floats(-100, W + 100),
    cy=st.floats(-100, H + 100),
    head=st.floats(1, 200),
)
def test_face_box_contains_the_head_keypoints_and_stays_in_the_frame(
    cx: float, cy: float, head: float
) -> None:
    p = person(cx, cy, head)
    b = face_box(p, W, H, CFG)
    kp = p.keypoints[:11, :2]
    inside = (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
    if b is None:
        assert not inside.any(), "a head in the frame always gets a box"
        return
    x0, y0, x1, y1 = b
    assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
    for x, y in kp[inside]:
        assert x0 <= x <= x1 and y0 <= y <= y1
