"""Identity: the tracker keeps the teacher when people cross, swap places or look alike."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachcam.config import load_config
from coachcam.sim.run import run_sim
from coachcam.sim.scenario import Scenario

CFG = load_config(None)


def followed(sc: Scenario, seed: int) -> set[int]:
    rows = run_sim(CFG, sc, seed=seed).rows
    return {r.followed_id for r in rows if r.followed_id is not None}


@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.floats(0.8, 2.5),
    y_teacher=st.floats(3.0, 5.5),
    y_other=st.floats(3.0, 5.5),
    swap_s=st.floats(2.0, 6.0),
    hue=st.floats(0, 359),
    hue_gap=st.floats(90, 180),
    seed=st.integers(0, 10_000),
)
def test_swapping_two_people_never_swaps_the_teacher_when_they_look_different(
    x: float, y_teacher: float, y_other: float, swap_s: float, hue: float, hue_gap: float, seed: int
) -> None:
    # The teacher starts on the left and the other adult on the right; they walk past each
    # other and end on the opposite sides.
    t0, t1 = 3.0, 3.0 + swap_s
    people = [
        {"role": "teacher", "shirt_hue_deg": hue,
         "path": [[0, -x, y_teacher], [t0, -x, y_teacher], [t1, x, y_teacher]]},
        {"role": "adult", "shirt_hue_deg": (hue + hue_gap) % 360,
         "path": [[0, x, y_other], [t0, x, y_other], [t1, -x, y_other]]},
    ]  # fmt: skip
    sc = Scenario.model_validate({"name": "swap", "duration_s": t1 + 3.0, "people": people})
    who = followed(sc, seed)
    assert len(who) == 1, f"the followed person changed: {who}"
    if y_other < y_teacher - 0.5:  # the teacher is the one at the front: the first lock is theirs
        assert who == {0}


def test_a_crossing_at_the_same_depth_keeps_the_teacher() -> None:
    # The other adult walks in from outside the picture once the teacher is locked, then they
    # cross at the same distance from the camera.
    people = [
        {"role": "teacher", "shirt_hue_deg": 30,
         "path": [[0, -1.5, 4.0], [3, -1.5, 4.0], [7, 1.5, 4.0]]},
        {"role": "adult", "shirt_hue_deg": 200,
         "path": [[0, 6.0, 4.0], [3, 1.5, 4.0], [7, -1.5, 4.0]]},
    ]  # fmt: skip
    sc = Scenario.model_validate({"name": "cross", "duration_s": 9.0, "people": people})
    for seed in range(3):
        assert followed(sc, seed) == {0}
