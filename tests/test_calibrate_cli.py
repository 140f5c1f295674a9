"""coachcam calibrate (scripted, guided, fov, autotune) and coachcam check, end to end."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from motor_helpers import gpio_servos, motor_cfg, pulses_us

from coachcam.cli import main
from coachcam.clock import FakeClock
from coachcam.errors import CalibrationError
from motor.calibration import Calibration, load_calibration
from motor.guided import GuidedSession, Stop


def test_scripted_axis_calibration_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    args = ["calibrate", "axis", "--axis", "pan", "--calibration", str(path)]
    assert main([*args, "--trim-us", "12", "--direction", "flip", "--min-deg", "-60"]) == 0
    cal = load_calibration(path)
    assert cal is not None
    assert (cal.pan.centre_us, cal.pan.direction, cal.pan.min_deg) == (1512.0, -1, -60.0)
    assert main([*args, "--trim-us", "-2"]) == 0
    cal = load_calibration(path)
    assert cal is not None and cal.pan.centre_us == 1510.0
    assert path.with_name("cal.toml.bak").exists()


def test_bad_values_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cal.toml"
    base = ["calibrate", "axis", "--axis", "tilt", "--calibration", str(path)]
    assert main([*base, "--min-deg", "10", "--max-deg", "-10"]) == 2
    assert "min_deg (10.0) must be below max_deg" in capsys.readouterr().err
    assert main([*base, "--min-deg", "40"]) == 2  # the config allows tilt only up to 30
    assert "do not overlap" in capsys.readouterr().err
    assert not path.exists()


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cal.toml"
    rc = main(
        [
            "calibrate",
            "axis",
            "--axis",
            "pan",
            "--trim-us",
            "5",
            "--dry-run",
            "--calibration",
            str(path),
        ]
    )
    assert rc == 0 and not path.exists()
    assert "centre_us = 1505.0" in capsys.readouterr().out


def test_fov_on_the_simulated_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cal.toml"
    assert main(["calibrate", "fov", "--axis", "pan", "--calibration", str(path)]) == 0
    cal = load_calibration(path)
    assert cal is not None and cal.camera.hfov_deg is not None and cal.camera.px_per_deg
    # the simulated lens is the configured 66 deg: 1280 px / 66 deg ~ 17.2 px/deg at the centre
    assert cal.camera.hfov_deg == pytest.approx(66.0, abs=0.3)
    assert cal.camera.px_per_deg == pytest.approx(17.2, abs=0.1)
    assert "px/deg" in capsys.readouterr().out


def test_fov_detects_a_reversed_axis(tmp_path: Path) -> None:
    from coachcam.geometry import Intrinsics
    from motor.config import AxisConfig
    from motor.fov import measure_fov
    from motor.panorama import PanoramaCamera
    from motor.servo import PanTiltHead
    from motor.sim import SimServos

    clock = FakeClock()
    servos = SimServos(clock)
    # the camera sees the servo turn the other way from what was commanded
    cam = PanoramaCamera(lambda: (-servos.true_position()[0], 0.0), Intrinsics(320, 180, 66.0))
    head = PanTiltHead(servos, AxisConfig(), AxisConfig(), clock)
    with pytest.raises(CalibrationError, match="wrong way"):
        measure_fov(head, cam.render, clock, "pan")


def test_autotune_writes_control_gains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cal.toml"
    assert main(["calibrate", "autotune", "--calibration", str(path)]) == 0
    cal = load_calibration(path)
    assert cal is not None
    c = cal.control
    assert c.kp and c.max_speed_deg_s and c.max_accel_deg_s2
    assert c.actuation_latency_ms is not None and 5.0 <= c.actuation_latency_ms <= 30.0
    out = capsys.readouterr().out
    assert "0 reversals" in out


def test_autotune_identifies_the_simulated_servo() -> None:
    from motor.autotune import identify, step_response
    from motor.sim import SimServoParams, SimServos

    clock = FakeClock()
    servo = SimServos(
        clock, SimServoParams(speed_deg_per_s=200.0, accel_deg_s2=2000.0, latency_ms=30.0)
    )
    model = identify(step_response(servo, clock, 0, (-30.0, 0.0), 60.0))
    assert model.speed_deg_s == pytest.approx(200.0, rel=0.1)
    assert model.accel_deg_s2 == pytest.approx(2000.0, rel=0.25)
    assert model.dead_time_s == pytest.approx(0.030, abs=0.008)


def test_autotune_refuses_a_driver_without_read_back() -> None:
    from motor.autotune import step_response

    servos, _, clock = gpio_servos()
    with servos, pytest.raises(CalibrationError, match="read-back"):
        step_response(servos, clock, 0, (0.0, 0.0), 10.0)


def test_check_on_simulated_servos(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from motor.calibration import save_calibration

    path = tmp_path / "cal.toml"
    save_calibration(Calibration().with_axis("pan", centre_us=1500.0), path)
    assert main(["check", "--calibration", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pan: moved 3 deg right" in out and "All good." in out
    assert "tilt not calibrated" in out


def test_check_with_a_mistyped_calibration_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "none.toml"
    assert main(["check", "--calibration", str(typo)]) == 2
    assert f"calibration file not found: {typo}" in capsys.readouterr().err


def _session(answers: list[str]) -> tuple[GuidedSession, object, list[str]]:
    servos, factory, clock = gpio_servos()
    servos.open()
    said: list[str] = []
    it = iter(answers)
    session = GuidedSession(
        servos,
        motor_cfg(),
        Calibration(),
        clock,
        ask=lambda _q: next(it),
        say=said.append,
        pos=[0.0, -5.0],
    )
    return session, factory, said


def test_guided_session_trims_flips_scales_and_finds_limits() -> None:
    answers = [
        "+", "++", "",  # centre: +5 us then +25 us
        "n",  # direction: it turned left -> reverse
        "25",  # scale: asked 20 deg, it really turned 25
        "-20", "", "ok",  # lower limit: to -20, then one 2-degree step further
        "", "ok",  # upper limit: one step
    ]  # fmt: skip
    session, factory, _ = _session(answers)
    cal = session.run(0)
    assert cal.pan.centre_us == 1530.0
    assert cal.pan.direction == -1
    assert cal.pan.us_per_deg == pytest.approx(2000.0 / 180.0 * 20.0 / 25.0)
    assert cal.pan is not None and (cal.pan.min_deg, cal.pan.max_deg) == (-22.0, 2.0)
    # small steps: no pulse jump bigger than 15 deg/s x 20 ms worth of pulse width
    pan = [p for p in pulses_us(factory, 12) if p]
    biggest = max(abs(b - a) for a, b in itertools.pairwise(pan))
    assert biggest <= 0.3 * 2000.0 / 180.0 + 25.0 + 1e-6  # a trim nudge is the only bigger jump


def test_guided_session_stops_at_once() -> None:
    session, _, _ = _session(["+", "s"])
    with pytest.raises(Stop):
        session.run(0)


def test_guided_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cal.toml"
    answers = iter(["+", "", "y"])
    monkeypatch.setattr("builtins.input", lambda _q="": next(answers))
    cmd = ["calibrate", "axis", "--axis", "tilt", "--guided", "--steps", "centre,direction"]
    assert main([*cmd, "--calibration", str(path)]) == 0
    cal = load_calibration(path)
    assert cal is not None and cal.tilt.centre_us == 1505.0 and cal.tilt.direction == 1


def test_guided_stop_saves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cal.toml"
    monkeypatch.setattr("builtins.input", lambda _q="": "s")
    assert main(["calibrate", "axis", "--axis", "pan", "--guided", "--calibration", str(path)]) == 2
    assert "stopped: servos released, nothing saved" in capsys.readouterr().err
    assert not path.exists()


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="chown needs root")
def test_calibrate_says_when_the_service_cannot_read_the_file(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import grp
    import os

    from coachcam.commands import calibrate

    monkeypatch.setattr(calibrate, "SERVICE_USER", "daemon")  # stands in for coachcam
    import shutil
    import tempfile

    etc = Path(tempfile.mkdtemp(prefix="coachcam-etc-", dir="/tmp"))  # pytest's tmp is 0700
    request.addfinalizer(lambda: shutil.rmtree(etc))
    etc.chmod(0o755)
    path = etc / "cal.toml"
    cmd = ["calibrate", "axis", "--axis", "pan", "--trim-us", "3", "--calibration", str(path)]
    assert main(cmd) == 0  # a root:root directory: the new file is 0640 root:root
    err = capsys.readouterr().err
    assert f"daemon cannot read {path} (0640 root:root)" in err and "coachcam install" in err
    path.unlink()
    os.chown(etc, -1, grp.getgrnam("daemon").gr_gid)  # what install does to /etc/coachcam
    assert main(cmd) == 0
    assert "cannot read" not in capsys.readouterr().err


def test_unreadable_calibration_is_one_line_naming_mode_and_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from motor.calibration import save_calibration

    path = tmp_path / "cal.toml"
    save_calibration(Calibration(), path)

    def denied(*_a: object, **_k: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(CalibrationError, match=r"\(0640 root:.*permission denied.*chgrp coachcam"):
        load_calibration(path)
