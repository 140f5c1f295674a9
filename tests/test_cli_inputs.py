"""Bad numbers and paths on the command line or in files: one clear error, exit 2, never a
traceback, a hang, a swing to the limits or a failure after the whole run (issue 9 item 10)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.config import load_config
from coachcam.errors import ConfigError, ScenarioError

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coachcam.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=REPO,
    )


def _rejected(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    """``argv`` exits 2 (argparse or a CoachcamError) with the words, no traceback."""
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: usage line + one error line
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0"])
def test_sim_seconds_must_be_finite_and_positive(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _rejected(["sim", f"--seconds={value}"], capsys, "--seconds", value)


def test_sim_seconds_nan_does_not_hang() -> None:
    proc = _cli("sim", "--seconds", "nan", timeout=30)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["-1", "1.5", "x"])
def test_sim_seed_must_be_a_non_negative_integer(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _rejected(["sim", f"--seed={value}"], capsys, "--seed")


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "200"])
def test_check_degrees_rejected_before_anything_moves(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _rejected(["check", f"--degrees={value}"], capsys, "--degrees")


def test_check_degrees_beyond_what_the_axis_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A nudge the axis cannot make either way is refused, naming the axis and its range."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[motor.tilt]\nmin_deg = -10.0\nmax_deg = 10.0\n")
    err = _rejected(["--config", str(cfg), "check", "--degrees", "30"], capsys, "tilt", "-10")
    assert "moved" not in err


@pytest.mark.parametrize("value", ["nan,nan", "inf,0", "1", "a,b", "0,0,0"])
def test_replay_start_must_be_a_finite_pair(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rejected(["replay", str(tmp_path / "v.mp4"), f"--start={value}"], capsys, "--start")


def test_non_utf8_config_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[sim]\nscenario = '\xff\xfe'\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(path) in str(ei.value) and "UTF-8" in str(ei.value)


@pytest.mark.parametrize("what", ["report", "trace", "plot"])
def test_unwritable_output_fails_before_the_run(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    t0 = time.monotonic()
    _rejected(["sim", "--seconds", "40", f"--{what}", str(not_a_dir / "out")], capsys, f"--{what}")
    assert time.monotonic() - t0 < 5.0  # 40 simulated seconds were not run first


def test_report_writes_null_not_nan(tmp_path: Path) -> None:
    from coachcam.metrics import write_report

    out = tmp_path / "r.json"
    write_report({"a": math.nan, "b": [math.inf, 1.0], "c": {"d": -math.inf}}, out)

    def no_constants(name: str) -> None:
        raise AssertionError(f"invalid JSON constant {name}")

    data = json.loads(out.read_text(), parse_constant=no_constants)
    assert data == {"a": None, "b": [None, 1.0], "c": {"d": None}}


def test_nan_waypoint_is_rejected(tmp_path: Path) -> None:
    from coachcam.sim.scenario import load_scenario

    path = tmp_path / "s.toml"
    path.write_text(
        "name = 's'\nduration_s = 5\n[[people]]\nrole = 'teacher'\npath = [[0, nan, 4.0]]\n"
    )
    with pytest.raises(ScenarioError) as ei:
        load_scenario(str(path))
    assert "people[0].path" in str(ei.value)


def test_non_finite_config_value_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[sim.faults]\nencoder_errors_at_s = [nan]\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "encoder_errors_at_s" in str(ei.value)


def test_closed_stdout_is_not_a_traceback() -> None:
    """``coachcam status | head``: the reader goes away; no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "coachcam.cli", "config", "--defaults"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["calibrate", "axis", "--axis", "pan", "--centre-us", "nan"],
        ["calibrate", "axis", "--axis", "pan", "--min-deg", "inf"],
        ["calibrate", "fov", "--settle-s", "nan"],  # was: "the picture moved the wrong way"
        ["calibrate", "fov", "--angles", "1,nan"],
        ["calibrate", "autotune", "--step-deg", "nan"],  # was: a ValueError traceback
        ["check", "--tolerance", "nan"],  # was: every axis "OFF BY -0.0 deg"
        ["status", "--max-age", "inf"],
    ],
)
def test_every_number_option_rejects_non_finite(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _rejected(argv, capsys, "must be a finite number")
