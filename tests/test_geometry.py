from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from coachcam.geometry import (
    Intrinsics,
    angle_between,
    bearing_of_point,
    bearing_to_pixel,
    pixel_to_bearing,
    project,
)

INTR = Intrinsics(1280, 720, 66.0)
angles = st.floats(-60, 60)
tilts = st.floats(-30, 30)


@given(angles, tilts, st.floats(0, 1279), st.floats(0, 719))
def test_pixel_to_bearing_and_back(cam_pan: float, cam_tilt: float, u: float, v: float) -> None:
    pan, tilt = pixel_to_bearing(u, v, cam_pan, cam_tilt, INTR)
    u2, v2 = bearing_to_pixel(pan, tilt, cam_pan, cam_tilt, INTR)
    assert math.isclose(u, u2, abs_tol=1e-6) and math.isclose(v, v2, abs_tol=1e-6)


@given(angles, tilts)
def test_the_centre_pixel_is_where_the_camera_points(cam_pan: float, cam_tilt: float) -> None:
    pan, tilt = pixel_to_bearing(INTR.cx, INTR.cy, cam_pan, cam_tilt, INTR)
    assert angle_between(pan, tilt, cam_pan, cam_tilt) < 1e-6


def test_a_point_to_the_right_appears_right_of_centre() -> None:
    uv, front = project(np.array([[1.0, 4.0, 0.0]]), 0.0, 0.0, INTR)
    assert front[0] and uv[0, 0] > INTR.cx and math.isclose(uv[0, 1], INTR.cy)
    assert bearing_of_point(np.array([1.0, 1.0, 0.0]))[0] == 45.0


def test_field_of_view_edges() -> None:
    pan, _ = pixel_to_bearing(INTR.width, INTR.cy, 0.0, 0.0, INTR)
    assert math.isclose(pan, 33.0, abs_tol=1e-9)
