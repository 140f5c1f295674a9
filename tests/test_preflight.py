"""One preflight: ``coachcam config`` rejects everything ``coachcam run`` would, without hardware.

Issue 9 item 1: the config ``coachcam install`` wrote passed ``coachcam config`` and could never
start (``tracker.detector = 'oracle'`` with a real camera).
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.config import Config, effective_detector, load_config, parse_config
from coachcam.errors import ConfigError, ModelError
from coachcam.preflight import preflight
from tracker.model_bundle import BUNDLE_MEMBERS


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def _fake_bundle(tmp_path: Path) -> Path:
    """A file shaped like a pose landmarker bundle (not ours by name: no sha256 pinned)."""
    path = tmp_path / "pose.task"
    with zipfile.ZipFile(path, "w") as zf:
        for m in BUNDLE_MEMBERS:
            zf.writestr(m, b"x")
    return path


def _config_says(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["config", *args])
    out = capsys.readouterr()
    return rc, out.out.strip() if rc == 0 else out.err.strip()


def test_the_default_detector_works_whatever_the_camera() -> None:
    assert Config().tracker.detector == "auto"
    assert effective_detector(Config()) == "oracle"
    for source in ("picamera2", "v4l2", "file"):
        cfg = parse_config({"camera": {"source": source}})
        assert effective_detector(cfg) == "mediapipe"


def test_the_installed_config_passes_preflight(tmp_path: Path) -> None:
    """What ``coachcam install`` writes starts, given the model (here a stand-in) and once
    the servos are calibrated (here simulated: real ones refuse to run uncalibrated)."""
    from coachcam.commands.install import robot_config

    data = tomllib.loads(robot_config("picamera2", "sim"))
    data["tracker"]["model"] = str(_fake_bundle(tmp_path))
    data["motor"]["calibration_file"] = str(tmp_path / "none.toml")
    cfg, _ = preflight(parse_config(data))
    assert effective_detector(cfg) == "mediapipe"


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        # the combination run rejected while config said OK
        ("[camera]\nsource = 'picamera2'\n[tracker]\ndetector = 'oracle'\n", ["oracle", "sim"]),
        ("[tracker]\ndetector = 'mediapipe'\n", ["mediapipe", "camera.source"]),
        ("[camera]\nsource = 'file'\n", ["camera.file"]),
        ("[camera]\nsource = 'file'\nfile = '/nonexistent/room.mp4'\n", ["/nonexistent/room.mp4"]),
        ("[sim]\nscenario = 'no-such-room'\n", ["no-such-room"]),
        ("[sim]\nscenario = '/nonexistent/s.toml'\n", ["/nonexistent/s.toml"]),
        (
            "[stream]\nenabled = true\nurl = 'rtmp://x/live/{key}'\n"
            "credential = '/nonexistent/k'\n",
            ["credential", "/nonexistent/k"],
        ),
        ("[stream]\nenabled = true\nurl = 'rtmp://x/live/{key}'\n", ["{key}", "credential"]),
        ("[stream]\nenabled = true\nurl = 'http://x/live'\n", ["http", "rtmp://"]),
        (
            "[stream]\nenabled = true\nurl = 'rtmps://x/live'\nca_file = '/nonexistent/ca.pem'\n",
            ["stream.ca_file", "/nonexistent/ca.pem"],
        ),
        (
            "[stream]\nenabled = true\n[stream.backfill]\nurl = 'https://x/'\n"
            "credential = '/nonexistent/pw'\n",
            ["/nonexistent/pw"],
        ),
    ],
)
def test_config_rejects_what_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, must_contain: list[str]
) -> None:
    path = _config(tmp_path, text)
    rc, msg = _config_says(["--config", str(path)], capsys)
    assert rc == 2, msg
    assert "\n" not in msg and "Traceback" not in msg
    for s in must_contain:
        assert s in msg
    # ... and run rejects it with the same words, before opening any hardware
    rc_run = main(["--config", str(path), "run", "--seconds", "0.1"])
    assert rc_run == 2
    assert capsys.readouterr().err.strip() == msg


def test_config_rejects_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(
        tmp_path, "[camera]\nsource = 'v4l2'\n[tracker]\nmodel = '/nonexistent/p.task'\n"
    )
    rc, msg = _config_says(["--config", str(path)], capsys)
    assert rc == ModelError.exit_code
    assert "/nonexistent/p.task" in msg


def test_config_checks_the_calibration_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cal = tmp_path / "cal.toml"
    cal.write_text("[pan]\nmin_deg = 50\nmax_deg = 40\n")
    rc, msg = _config_says(["--calibration", str(cal)], capsys)
    assert rc == 2
    assert str(cal) in msg


def test_build_robot_runs_the_same_preflight(tmp_path: Path) -> None:
    from coachcam.clock import FakeClock
    from coachcam.robot import build_robot

    cfg = load_config(_config(tmp_path, "[sim]\nscenario = 'no-such-room'\n"))
    with pytest.raises(ConfigError) as ei:
        build_robot(cfg, FakeClock())
    with pytest.raises(ConfigError) as again:
        preflight(cfg)
    assert str(ei.value) == str(again.value)


def test_a_good_config_says_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "room.mp4"
    video.write_bytes(b"")
    path = _config(
        tmp_path,
        f"[camera]\nsource = 'file'\nfile = '{video}'\n"
        f"[tracker]\nmodel = '{_fake_bundle(tmp_path)}'\n",
    )
    rc, msg = _config_says(["--config", str(path)], capsys)
    assert rc == 0 and ": OK" in msg and "detector mediapipe" in msg, msg


def test_a_systemd_credential_name_is_left_to_the_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sudo coachcam config`` by hand on the robot: the unit's ``LoadCredential=`` provides
    ``stream-key``; with no ``$CREDENTIALS_DIRECTORY`` a bare name is not looked up in the
    working directory (a false rejection), but under systemd it is checked."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    text = "[stream]\nenabled = true\nurl = 'rtmp://x/live/{key}'\ncredential = 'stream-key'\n"
    path = _config(tmp_path, text)
    rc, msg = _config_says(["--config", str(path)], capsys)
    assert rc == 0, msg
    creds = tmp_path / "creds"
    creds.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    rc, msg = _config_says(["--config", str(path)], capsys)
    assert rc == 2 and "stream-key" in msg and str(creds) in msg
