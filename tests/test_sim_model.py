"""``coachcam sim --perception model``: the real pose model in the closed loop, on rendered
pictures of real people cut out of the shared media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coachcam.config import load_config
from coachcam.geometry import Intrinsics, bearing_of_point, project
from coachcam.sim.report import compute_report
from coachcam.sim.run import run_sim
from coachcam.sim.scenario import load_scenario
from coachcam.sim.world import Classroom, Truth
from tracker.types import Pose

CFG = load_config(None)
REQUIRED = [
    "in_frame_pct", "centred_pct", "pointing_rms_deg", "pointing_p95_deg", "wrong_person_pct",
    "unattributed_pct",
    "lost_events", "lost_s", "reacquire_s_mean", "reversals_per_min", "hunting_reversals",
    "latency_p50_ms", "latency_p95_ms", "frames",
]  # fmt: skip


@pytest.fixture
def bundle() -> None:
    from perception_helpers import require_bundle

    require_bundle()


def test_real_model_follows_the_teacher_at_the_board(
    media_dir: Path, bundle: None, tmp_path: Path
) -> None:
    res = run_sim(
        CFG,
        load_scenario("board"),
        seed=3,
        seconds=8.0,
        perception="model",
        media_dir=media_dir,
    )
    rep = compute_report(res)
    assert set(REQUIRED) <= set(rep)
    assert rep["frames"] == 241
    following = [r for r in res.rows if r.mode in ("follow", "coast")]
    assert following, "the real model never found the teacher"
    assert rep["acquire_s"] < 2.0
    assert rep["in_frame_pct"] >= 95.0
    assert rep["wrong_person_pct"] == 0.0
    assert all(r.followed_id == r.teacher_id for r in following)


def test_rendered_frames_have_pixels(media_dir: Path, bundle: None) -> None:
    from coachcam.sim.cutouts import load_cutouts
    from coachcam.sim.photo import PhotoRenderer

    sc = load_scenario("crossing-adult")
    intr = Intrinsics(1280, 720, 66.0)
    room = Classroom(sc, 2.0, seed=1)
    people = room.people_at(7.0)
    pan, tilt = bearing_of_point(people[room.teacher_id].target)
    truth = Truth(7.0, pan, tilt, people, room.teacher_id, ())
    image, lores = PhotoRenderer(room, intr, load_cutouts(media_dir)).render(truth)
    assert image.shape == (720, 1280, 3) and lores.shape == (360, 640, 3)
    # The teacher's recoloured torso (hue 330) is where the teacher projects.
    uv, _ = project(people[room.teacher_id].keypoints[[11, 12, 23, 24]], pan, tilt, intr)
    x, y = uv.mean(axis=0).astype(int)
    b, g, r = (int(c) for c in image[y, x])
    assert r > g and b > g  # magenta-ish


def test_attribution_takes_the_nearest_torso_within_the_gate() -> None:
    from coachcam.sim.photo import attribute_poses

    sc = load_scenario("crossing-adult")
    intr = Intrinsics(1280, 720, 66.0)
    room = Classroom(sc, 2.0, seed=1)
    people = room.people_at(0.0)
    truth = Truth(0.0, 0.0, -10.0, people, room.teacher_id, ())
    poses = []
    for p in people:
        uv, _ = project(p.keypoints, 0.0, -10.0, intr)
        poses.append(Pose(np.column_stack([uv + 3.0, np.ones(33)])))
    far = Pose(np.column_stack([np.full((33, 2), 5.0), np.ones(33)]))
    ids = attribute_poses([*reversed(poses), far], truth, intr)
    assert ids == [p.id for p in reversed(people)] + [None]


def test_a_person_at_the_edge_of_the_view_is_drawn_without_scaling_the_whole_cutout(
    media_dir: Path, bundle: None
) -> None:
    from coachcam.sim.cutouts import load_cutouts
    from coachcam.sim.photo import PhotoRenderer
    from coachcam.sim.scenario import Scenario

    sc = Scenario.model_validate(
        {
            "name": "close",
            "duration_s": 1,
            "people": [
                {"role": "teacher", "path": [[0, 0.0, 4.0]]},
                {"role": "student", "posture": "seated", "path": [[0, -2.4, 1.8]]},
            ],
        }
    )
    intr = Intrinsics(1280, 720, 66.0)
    room = Classroom(sc, 2.0, seed=1)
    people = room.people_at(0.0)
    # ~89 deg off the axis: the student's cut-out would be ~30000 px tall (what ran out of
    # memory once); only the part in the picture (here none) is scaled.
    truth = Truth(0.0, 36.0, -10.0, people, room.teacher_id, ())
    image, _ = PhotoRenderer(room, intr, load_cutouts(media_dir)).render(truth)
    assert image.shape == (720, 1280, 3)


def test_cutouts_are_built_once_into_the_cache(
    media_dir: Path, bundle: None, tmp_path: Path
) -> None:
    from coachcam.sim.cutouts import SOURCES, load_cutouts

    first = load_cutouts(media_dir, cache=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == len(SOURCES) and all(f.endswith(".npz") for f in files)
    again = load_cutouts(media_dir, cache=tmp_path)
    for name, cut in first.items():
        assert cut.bgra.shape[2] == 4 and cut.keypoints.shape == (33, 3)
        assert (again[name].bgra == cut.bgra).all()
    assert first["bridge_left"].kind == "full" and first["astronaut"].kind == "upper"
