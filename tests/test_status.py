"""``coachcam status`` reads what the health reporter wrote."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.clock import FakeClock
from coachcam.commands import status
from coachcam.health import Health, HealthReporter


def write_state(
    path: Path, *, age: float = 0.0, ready: bool = True, flowing: bool = True, stop: bool = False
) -> None:
    clock = FakeClock(1000.0)
    r = HealthReporter(
        clock=clock, state_file=path, wall=lambda: time.time() - age, pid=os.getpid()
    )
    if ready:
        r.ready()
    if flowing:
        r.frame_done()
        r.control_done()
    clock.advance(1.0)
    r.update(Health("following teacher", 29.84, True, 2, True))
    if stop:
        r.stopping()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "status.json"


def test_prints_plain_words(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file)
    assert main(["status", "--state-file", str(state_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"coachcam is running (pid {os.getpid()}, up ")
    assert "doing:   following teacher" in out
    assert "camera:  29.8 fps" in out
    assert "stream:  streaming, 2 recorded segments to send" in out
    assert "servos:  ok" in out
    assert "STALLED" not in out


def test_json(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file)
    assert main(["status", "--json", "--state-file", str(state_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "following teacher"
    assert data["segments_pending"] == 2
    assert data["state_file"] == str(state_file)
    assert 0 <= data["age_s"] < 5


def test_stalled_and_starting_are_said(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(state_file, flowing=False)
    assert main(["status", "--state-file", str(state_file)]) == 0
    assert "STALLED" in capsys.readouterr().out
    write_state(state_file, ready=False)
    assert main(["status", "--state-file", str(state_file)]) == 0
    assert "starting up" in capsys.readouterr().out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_missing_file(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-file", str(state_file)]) == 1
    assert "the daemon is not running: no state file at" in one_error_line(capsys)


def test_default_locations_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(status, "state_file_candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    assert main(["status"]) == 1
    assert f"{tmp_path / 'a'} or {tmp_path / 'b'}" in one_error_line(capsys)
    write_state(tmp_path / "b")
    assert main(["status"]) == 0


def test_stale(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file, age=30.0)
    assert main(["status", "--state-file", str(state_file)]) == 1
    line = one_error_line(capsys)
    assert "stale: last update 3" in line and "still there" in line
    assert main(["status", "--state-file", str(state_file), "--max-age", "60"]) == 0


def test_stopped(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file, stop=True)
    assert main(["status", "--state-file", str(state_file)]) == 1
    assert "the daemon is not running: it stopped" in one_error_line(capsys)


def test_dead_pid(
    state_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(state_file)
    monkeypatch.setattr(status, "pid_alive", lambda pid: False)
    assert main(["status", "--state-file", str(state_file)]) == 1
    assert f"pid {os.getpid()} has exited" in one_error_line(capsys)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"a": 1}'])
def test_garbage(state_file: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    state_file.write_text(text)
    assert main(["status", "--state-file", str(state_file)]) == 1
    assert str(state_file) in one_error_line(capsys)


def test_pid_alive() -> None:
    assert status.pid_alive(os.getpid())
    assert not status.pid_alive(2**22 + 12345)  # above pid_max's ceiling


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.42, "0.4 s"), (75, "1 min 15 s"), (7380, "2 h 3 min"), (90000, "1 d 1 h")],
)
def test_duration(seconds: float, words: str) -> None:
    assert status.duration(seconds) == words
