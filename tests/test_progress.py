"""Progress tells the truth on slow work (issue 9 item 10: 1,000 simulated people sat at 0 %)."""

from __future__ import annotations

import io

from coachcam.clock import FakeClock
from coachcam.config import Config
from coachcam.progress import Progress
from coachcam.sim.run import run_sim
from coachcam.sim.scenario import Scenario


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_a_slow_start_still_reports_within_seconds() -> None:
    """Not a terminal: a line every tenth of the work, and one at least every ``every_s``
    while a tenth takes longer, with what is done and how long it has run."""
    clock = FakeClock(0.0)
    out = Pipe()
    p = Progress("simulating crowd", stream=out, clock=clock, every_s=10.0)
    for i in range(20):
        clock.advance(3.0)  # a frame takes 3 s
        p.update(i / 30, 30.0)  # frame i of a 30 s simulation at 30 fps
    lines = out.getvalue().splitlines()
    assert len(lines) >= 5, lines  # 60 s of work: a line every 10-12 s, not just "0%"
    assert lines[-1] == "simulating crowd: 1.8% (51 s elapsed)", lines


def test_the_simulation_reports_every_frame() -> None:
    """The sim hands progress every frame (it used to every 30th: 90 s of silence when a frame
    takes 3 s); ``Progress`` decides what to print."""
    sc = Scenario.model_validate(
        {
            "name": "one",
            "duration_s": 1.0,
            "people": [{"role": "teacher", "path": [[0, 0.0, 4.0]]}],
        }
    )
    calls: list[float] = []
    run_sim(Config(), sc, progress=lambda done, total: calls.append(done), clock=FakeClock(0.0))
    assert len(calls) >= 29
    assert calls[-1] == 1.0  # it ends at the end
