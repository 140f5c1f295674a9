"""The real daemon as a subprocess, talking systemd's notify protocol to a socket we bind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import NotifySocket, start_daemon

REPO = Path(__file__).resolve().parents[1]


def test_ready_watchdog_status_then_sigterm_parks_and_exits_0(
    tmp_path: Path, notify: NotifySocket
) -> None:
    proc = start_daemon(tmp_path, notify, "[sim]\nscenario = 'board'\n")
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        notify.wait_for(lambda m: "WATCHDOG=1" in m)
        status = notify.wait_for(lambda m: "STATUS=following teacher" in m)
        assert "fps" in status
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert any("STOPPING=1" in m for m in notify.drain())
    assert "parking servos" in err and "Traceback" not in err
    state = (tmp_path / "run" / "status.json").read_text()
    assert "stopping" in state or "stopped" in state


def test_invalid_config_exits_2_with_one_line_and_never_ready(
    tmp_path: Path, notify: NotifySocket
) -> None:
    proc = start_daemon(tmp_path, notify, "[motor]\ndriver = 'servo-hat'\n")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and "motor.driver" in lines[0] and "'servo-hat'" in lines[0]
    notify.sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        notify.sock.recv(4096)


def test_corrupt_model_exits_non_zero_naming_the_file(
    tmp_path: Path, notify: NotifySocket, media_dir: Path
) -> None:
    bad = tmp_path / "pose.task"
    bad.write_bytes(b"not a model")
    config = (
        f"[camera]\nsource = 'file'\nfile = '{media_dir / 'podium_speaker_720p30.mp4'}'\n"
        f"[tracker]\ndetector = 'mediapipe'\nmodel = '{bad}'\n"
    )
    proc = start_daemon(tmp_path, notify, config)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert str(bad) in err and "Traceback" not in err
    assert not any("READY=1" in m for m in notify.messages)


def test_retarget_and_status_talk_to_the_running_daemon(
    tmp_path: Path, notify: NotifySocket
) -> None:
    proc = start_daemon(tmp_path, notify, "[sim]\nscenario = 'board'\n")
    env = dict(os.environ, RUNTIME_DIRECTORY=str(tmp_path / "run"), HOME=str(tmp_path))
    cli = [sys.executable, "-m", "coachcam.cli"]

    def status() -> list[str]:
        r = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return [line.strip() for line in r.stdout.splitlines() if line.strip().startswith("track ")]

    try:
        notify.wait_for(lambda m: "STATUS=following teacher" in m)
        people: list[str] = []
        for _ in range(40):  # the students are confirmed a few detections after the teacher
            people = status()
            if len(people) >= 2:
                break
            notify.wait_for(lambda m: "WATCHDOG=1" in m)
        following = [p for p in people if p.endswith("<- following")]
        assert len(following) == 1 and len(people) >= 2, people
        other = next(p for p in people if p not in following).split(":")[0].split()[1]
        moved = subprocess.run(
            [*cli, "retarget", other], env=env, capture_output=True, text=True, timeout=30
        )
        assert moved.returncode == 0 and moved.stdout.strip() == f"following track {other}"
        bad = subprocess.run(
            [*cli, "retarget", "999"], env=env, capture_output=True, text=True, timeout=30
        )
        assert bad.returncode == 1 and "no track 999" in bad.stdout
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert f"following {other}" in err and "retarget by operator" in err


def test_retarget_without_a_daemon_is_one_clear_line(tmp_path: Path) -> None:
    env = dict(os.environ, RUNTIME_DIRECTORY=str(tmp_path), HOME=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "coachcam.cli", "retarget", "centre"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "the daemon is not running" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("who", ["²", "9" * 5000, "-3"])
def test_retarget_rejects_what_is_no_track_id_in_one_line(
    who: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """'²' passed isdigit() and then int() raised a ValueError traceback."""
    from coachcam.cli import main

    assert main(["retarget", who]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "track id" in err
