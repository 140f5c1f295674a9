"""Guided calibration (issue 9, item 11): strict answers, numbers re-asked until valid, limits
checked with the reason, and end of input or Ctrl-C mid-move parks the head — with scripted
input over the simulated servos."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from motor_helpers import motor_cfg

from coachcam.cli import main
from coachcam.clock import FakeClock
from motor.calibration import NOMINAL_US_PER_DEG, Calibration
from motor.guided import GuidedSession
from motor.sim import SimServos


class Script:
    """Answers prompts in order, like ``input``: EOFError once they run out."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, question: str) -> str:
        self.asked.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def session(answers: list[str]) -> tuple[GuidedSession, Script, list[str], SimServos]:
    clock = FakeClock()
    servos = SimServos(clock, start=(0.0, -5.0))
    script, said = Script(answers), []
    s = GuidedSession(
        servos, motor_cfg(), Calibration(), clock, ask=script, say=said.append, pos=[0.0, -5.0]
    )
    return s, script, said, servos


def test_yes_no_takes_only_yes_or_no() -> None:
    s, script, said, _ = session(["maybe", "yep", "yes"])
    cal = s.run(0, ("direction",))
    assert cal.pan is not None and cal.pan.direction == 1  # confirmed is calibrated
    assert cal.tilt is None
    assert len(script.asked) == 3 and sum("y or n" in line for line in said) == 2
    s, script, _, _ = session(["N"])
    assert s.run(0, ("direction",)).axis("pan").direction == -1


def test_the_measured_angle_is_asked_again_until_it_is_a_sensible_number() -> None:
    s, script, said, _ = session(["twenty", "nan", "inf", "-20", "500", "25"])
    cal = s.run(0, ("scale",))
    assert cal.axis("pan").us_per_deg == pytest.approx(NOMINAL_US_PER_DEG * 20.0 / 25.0)
    assert len(script.asked) == 6
    assert sum("from 6.67 to 60" in line for line in said) == 5


def test_a_number_at_the_limit_prompt_goes_there_or_is_refused_with_the_reason() -> None:
    # lower: wrong side, too far, a typo, then to -30 and one step; upper: to 40
    s, _, said, servos = session(["10", "-1000", "okay", "-30", "", "ok", "40", "ok"])
    cal = s.run(0, ("limits",))
    assert (cal.axis("pan").min_deg, cal.axis("pan").max_deg) == (-32.0, 40.0)
    text = "\n".join(said)
    assert "10 is not on the lower (left) side" in text
    assert "-1000 is past the end of the servo's pulse range" in text
    assert "a number = go to that angle" in text
    assert min(p for _, p, _ in servos.commands) == pytest.approx(-32.0, abs=0.1)


@pytest.mark.parametrize(
    ("i", "first_try", "reason"),
    [
        (0, ["", "ok", "ok"], "spans only 2.0 deg: pan needs at least 20"),  # -2..0
        (1, ["", "ok", "20", "ok"], "home (-5.0 deg, [motor.tilt] home_deg) is outside"),
    ],
)
def test_limits_that_span_too_little_or_leave_out_home_are_found_again(
    i: int, first_try: list[str], reason: str
) -> None:
    s, _, said, _ = session([*first_try, "-20", "ok", "20", "ok"])
    axis = s.run(i, ("limits",)).axis(("pan", "tilt")[i])
    assert (axis.min_deg, axis.max_deg) == (-20.0, 20.0)
    assert any(reason in line for line in said), said


def _guided_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: Callable[[str], str], steps: str
) -> tuple[int, list[SimServos], Path]:
    import motor.drivers

    heads: list[Any] = []
    real = motor.drivers.make_head

    def spy(*a: Any, **k: Any) -> Any:
        heads.append(real(*a, **k))
        return heads[-1]

    monkeypatch.setattr(motor.drivers, "make_head", spy)
    monkeypatch.setattr("builtins.input", answer)
    path = tmp_path / "cal.toml"
    cmd = ["calibrate", "axis", "--axis", "pan", "--guided", "--steps", steps]
    rc = main([*cmd, "--calibration", str(path)])
    return rc, [h.backend for h in heads], path


def _parked_without_jumps(servos: SimServos) -> None:
    assert servos.commands[-1][1:] == pytest.approx((0.0, -5.0), abs=0.1)  # home, quantized
    biggest = max(abs(b[1] - a[1]) for a, b in itertools.pairwise(servos.commands))
    assert biggest <= 30.0 * 0.02 + 1e-6  # never faster than the slowest of the two movers


def test_end_of_input_parks_the_head_and_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, backends, path = _guided_cli(monkeypatch, tmp_path, Script(["-30"]), "limits")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert "end of input" in err and "head parked, nothing saved" in err
    assert not path.exists()
    _parked_without_jumps(backends[0])


def test_ctrl_c_mid_move_parks_the_head_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writes = itertools.count()
    real_write = SimServos.write

    def write(self: SimServos, pan: float, tilt: float) -> None:
        if pan < -10.0 and next(writes) == 0:  # on the way to -30
            raise KeyboardInterrupt
        real_write(self, pan, tilt)

    monkeypatch.setattr(SimServos, "write", write)
    rc, backends, path = _guided_cli(monkeypatch, tmp_path, Script(["-30"]), "limits")
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "\n" not in err and "interrupted: head parked, nothing saved" in err
    assert not path.exists()
    _parked_without_jumps(backends[0])


def test_scripted_limits_get_the_same_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cal.toml"
    base = ["calibrate", "axis", "--calibration", str(path)]
    assert main([*base, "--axis", "pan", "--min-deg", "-2", "--max-deg", "0"]) == 2
    assert "spans only 2.0 deg: pan needs at least 20" in capsys.readouterr().err
    assert main([*base, "--axis", "tilt", "--min-deg", "-2", "--max-deg", "20"]) == 2
    assert "home (-5.0 deg, [motor.tilt] home_deg) is outside" in capsys.readouterr().err
    assert not path.exists()


def test_trimming_past_what_the_file_allows_is_said_and_asked_again() -> None:
    s, _, said, _ = session(["++"] * 50 + [""])
    assert s.run(0, ("centre",)).axis("pan").centre_us == 2600.0
    assert any("pan.centre_us" in line for line in said)
