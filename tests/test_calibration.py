"""The calibration file: round trip, atomic write with .bak, clear errors, how it is applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from motor_helpers import CAL, PAN, TILT

from coachcam.config import Config
from coachcam.errors import CalibrationError
from motor.calibration import (
    AxisCalibration,
    Calibration,
    ControlCalibration,
    apply_calibration,
    axis_map,
    effective_axis,
    load_calibration,
    save_calibration,
)


def test_round_trip_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "calibration.toml"
    assert save_calibration(CAL, path) is None
    assert load_calibration(path) == CAL
    newer = CAL.with_axis("pan", centre_us=1490.0)
    backup = save_calibration(newer, path)
    assert backup == path.with_name("calibration.toml.bak")
    assert load_calibration(path) == newer
    assert load_calibration(backup) == CAL
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "calibration.toml",
        "calibration.toml.bak",
    ]


def test_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "calibration.toml"
    save_calibration(CAL, path)
    before = path.read_bytes()
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(CalibrationError, match="No space left"):
        save_calibration(CAL.with_axis("pan", centre_us=1400.0), path)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_file(tmp_path: Path) -> None:
    assert load_calibration(tmp_path / "none.toml") is None
    with pytest.raises(CalibrationError, match=r"not found.*coachcam calibrate"):
        load_calibration(tmp_path / "none.toml", missing_ok=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pan\n", "not valid TOML"),
        ("[pan]\ncentre_us = 9000\n", "pan.centre_us = 9000"),
        ("[pan]\ndirection = 0\n", "pan.direction"),
        ("[pan]\nmin_deg = 10\nmax_deg = -10\n", "min_deg"),
        ("[pan]\ntrim = 3\n", "unknown key 'pan.trim'"),
    ],
)
def test_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_limits_are_the_intersection_and_home_is_kept_inside() -> None:
    eff = effective_axis(TILT, AxisCalibration(min_deg=-2.0, max_deg=25.0))
    assert (eff.min_deg, eff.max_deg, eff.home_deg) == (-2.0, 25.0, -2.0)
    with pytest.raises(CalibrationError, match="do not overlap"):
        effective_axis(TILT, AxisCalibration(min_deg=40.0, max_deg=60.0))
    m = axis_map(PAN, CAL.pan)
    assert (m.min_deg, m.max_deg) == (-70.0, 75.0)
    assert m.to_deg(m.to_us(12.5)) == pytest.approx(12.5)


def test_apply_calibration_overrides_only_what_was_measured() -> None:
    cfg = Config()
    cal = Calibration(control=ControlCalibration(kp=2.5), camera={"hfov_deg": 70.0})
    out = apply_calibration(cfg, cal)
    assert out.motor.control.kp == 2.5
    assert out.motor.control.max_speed_deg_s == cfg.motor.control.max_speed_deg_s
    assert out.camera.hfov_deg == 70.0
    assert apply_calibration(cfg, None) is cfg


axis_cals = st.builds(
    lambda c, k, d, lo, span: AxisCalibration(
        centre_us=c, us_per_deg=k, direction=d, min_deg=lo, max_deg=min(180.0, lo + span)
    ),
    st.floats(400.0, 2600.0),
    st.floats(1.01, 50.0),
    st.sampled_from([1, -1]),
    st.floats(-180.0, 170.0),
    st.floats(1.0, 300.0),
)


@settings(max_examples=80)
@given(axis_cals, axis_cals)
def test_any_calibration_survives_the_file(pan: AxisCalibration, tilt: AxisCalibration) -> None:
    import tempfile

    cal = Calibration(pan=pan, tilt=tilt)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        save_calibration(cal, path)
        assert load_calibration(path) == cal


@settings(max_examples=200)
@given(axis_cals, st.floats(allow_nan=False, allow_infinity=False))
def test_pulses_stay_inside_both_limits(cal: AxisCalibration, deg: float) -> None:
    try:
        m = axis_map(PAN, cal)
    except CalibrationError:
        return  # no overlap with the config: refused, nothing is driven
    us = m.to_us(deg)
    assert PAN.min_us <= us <= PAN.max_us
    lo, hi = sorted((m.to_us(m.min_deg), m.to_us(m.max_deg)))
    assert lo - 1e-9 <= us <= hi + 1e-9
    assert PAN.min_deg <= m.min_deg < m.max_deg <= PAN.max_deg


def test_backup_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "calibration.toml"
    save_calibration(CAL, path)

    def no_links(*_a: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    save_calibration(CAL.with_axis("tilt", centre_us=1444.0), path)
    assert load_calibration(path.with_name("calibration.toml.bak")) == CAL


# -- who may read the file (issue 9, item 3) ------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")


def _group(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


@needs_root
def test_new_file_is_0640_with_the_group_of_its_directory(tmp_path: Path) -> None:
    # what `coachcam install` makes /etc/coachcam: root:<the service's group>
    etc = tmp_path / "etc-coachcam"
    etc.mkdir()
    gid = _group("daemon")
    os.chown(etc, 0, gid)
    path = etc / "calibration.toml"
    save_calibration(CAL, path)
    st = path.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o640", 0, gid)
    assert load_calibration(path) == CAL


@needs_root
def test_rewriting_keeps_mode_owner_and_group(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"  # in a root:root directory
    save_calibration(CAL, path)
    uid, gid = 1, _group("daemon")  # someone chose this owner and group: it stays theirs
    os.chown(path, uid, gid)
    os.chmod(path, 0o644)
    backup = save_calibration(CAL.with_axis("pan", centre_us=1490.0), path)
    st = path.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o644", uid, gid)
    assert backup is not None and load_calibration(backup) == CAL
    os.chmod(path, 0o640)
    os.chown(path, 0, gid)
    save_calibration(CAL, path)
    st = path.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o640", 0, gid)


# -- a calibration file is complete (issue 9, item 9) ---------------------------------------------

AXIS_TEXT = (
    "[pan]\ncentre_us = 1512.0\nus_per_deg = 10.0\ndirection = -1\n"
    "min_deg = -70.0\nmax_deg = 75.0\n"
)


@pytest.mark.parametrize(
    ("text", "key", "rerun"),
    [
        ("", "version", "coachcam calibrate"),
        ("# coachcam calibration\n", "version", "coachcam calibrate"),
        # cut off inside [pan]: the direction (-1) must not become +1
        ("version = 1\n" + AXIS_TEXT.split("direction")[0], "pan.direction", "--axis pan"),
        ("version = 1\n[tilt]\n", "tilt.centre_us", "--axis tilt"),
        ("version = 1\n[control]\nkp = 2.0\n", "control.max_speed_deg_s", "autotune"),
        ("version = 1\n[camera]\npx_per_deg = 17.2\n", "camera.hfov_deg", "fov"),
    ],
)
def test_a_cut_off_file_is_an_error_naming_the_missing_key(
    tmp_path: Path, text: str, key: str, rerun: str
) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and f"{key} is missing" in msg and rerun in msg


def test_every_file_the_calibration_writes_loads_whole(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    measured = Calibration(
        pan=CAL.pan,
        tilt=CAL.tilt,
        camera={"px_per_deg": 17.2, "hfov_deg": 66.0, "width": 1280},
        control=ControlCalibration(
            kp=4.0, max_speed_deg_s=81.0, max_accel_deg_s2=380.0, actuation_latency_ms=15.0
        ),
    )
    save_calibration(measured, path)
    lines = path.read_text().splitlines(keepends=True)
    keys = [i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")]
    assert len(keys) == 1 + 5 + 5 + 3 + 4
    assert load_calibration(path) == measured
    for i in keys:  # drop any one key the calibration wrote: an error, never a default
        path.write_text("".join(lines[:i] + lines[i + 1 :]))
        with pytest.raises(CalibrationError, match="is missing"):
            load_calibration(path)


def test_only_which_axes_are_calibrated_may_be_partial(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text("version = 1\n" + AXIS_TEXT)
    cal = load_calibration(path)
    assert cal is not None and cal.pan == CAL.pan and cal.tilt is None
    save_calibration(cal, path)  # written back as it was: no nominal tilt appears
    assert "[tilt]" not in path.read_text()
    # files written before sections were optional: empty [camera] and [control] still load
    path.write_text("version = 1\n" + AXIS_TEXT + "\n[camera]\n\n[control]\n")
    assert load_calibration(path) == cal


def _cfg(tmp_path: Path, driver: str = "sim") -> Config:
    from coachcam.config import load_config

    return load_config(
        overrides={
            "motor.driver": driver,
            "motor.calibration_file": str(tmp_path / "calibration.toml"),
        }
    )


def test_a_mistyped_calibration_path_is_an_error(tmp_path: Path) -> None:
    from motor.drivers import calibrated

    typo = tmp_path / "calibraton.toml"
    with pytest.raises(CalibrationError, match=rf"not found: {typo}"):
        calibrated(_cfg(tmp_path), str(typo))


def test_not_calibrated_yet_runs_the_simulator_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from motor.drivers import calibrated

    cfg = _cfg(tmp_path)
    assert calibrated(cfg) == (cfg, None)
    assert "not calibrated yet" in caplog.text and str(tmp_path / "calibration.toml") in caplog.text
    (tmp_path / "calibration.toml").write_text("version = 1\n" + AXIS_TEXT)
    caplog.clear()
    _, cal = calibrated(cfg)
    assert cal is not None and cal.pan == CAL.pan
    assert "tilt is not calibrated" in caplog.text


@pytest.mark.parametrize("driver", ["gpio", "serial"])
def test_real_servos_refuse_to_run_uncalibrated(tmp_path: Path, driver: str) -> None:
    from motor.drivers import calibrated

    cfg = _cfg(tmp_path, driver)
    path = tmp_path / "calibration.toml"
    with pytest.raises(CalibrationError) as info:
        calibrated(cfg)
    msg = str(info.value)
    assert str(path) in msg and "not calibrated yet" in msg and "calibrate axis --axis pan" in msg
    path.write_text("version = 1\n" + AXIS_TEXT)  # half calibrated
    with pytest.raises(CalibrationError, match=r"tilt is not calibrated.*--axis tilt"):
        calibrated(cfg)
    save_calibration(CAL, path)
    assert calibrated(cfg)[1] == CAL


def test_run_with_a_mistyped_calibration_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from coachcam.cli import main

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    typo = tmp_path / "calibraton.toml"
    assert main(["run", "--seconds", "1", "--calibration", str(typo)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(typo) in err and "Traceback" not in err


def test_a_calibration_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_bytes(b"version = 1\n# caf\xe9\n")
    with pytest.raises(CalibrationError, match=r"not UTF-8 text \(byte 0xe9"):
        load_calibration(path)
