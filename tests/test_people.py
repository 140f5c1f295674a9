"""The daemon reports people as fields; "seen" is never negative (nor -0.0)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from coachcam.health import Person
from coachcam.robot import people


def track(id: int, t_updated: float, hits: int = 5) -> SimpleNamespace:
    return SimpleNamespace(
        id=id,
        hits=hits,
        standing=id == 1,
        posture_known=id != 3,
        t_updated=t_updated,
        filt=SimpleNamespace(x=np.array([-12.345, 3.0])),
    )


def test_people_are_fields_and_seen_is_clamped() -> None:
    now = 100.0
    tracks = {i: track(i, t) for i, t in ((1, now + 0.03), (2, now), (3, now - 1.5))}
    tracks[4] = track(4, now, hits=1)  # not confirmed yet
    tracker = SimpleNamespace(tracks=tracks, cfg=SimpleNamespace(confirm_hits=3), teacher_id=1)
    got = people(tracker, now)  # type: ignore[arg-type]
    assert got == (
        Person(1, True, -12.35, 3.0, "standing", 0.0),
        Person(2, False, -12.35, 3.0, "seated", 0.0),
        Person(3, False, -12.35, 3.0, "unknown", 1.5),
    )
    text = json.dumps([p.seen_s_ago for p in got])
    assert "-" not in text, "a detection stamped after the loop's clock read is 'now', not -0.0"
