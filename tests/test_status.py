"""``coachcam status`` reads what the health reporter wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from coachcam import instance
from coachcam.cli import main
from coachcam.clock import FakeClock
from coachcam.commands import status
from coachcam.health import Health, HealthReporter, Person

TEACHER = Person(3, True, -12.04, 4.0, "standing", 0.0)
STUDENT = Person(7, False, 30.0, -2.0, "seated", 1.25)


def write_state(
    path: Path,
    *,
    age: float = 0.0,
    ready: bool = True,
    flowing: bool = True,
    flowed_before: bool = True,
    stop: bool = False,
    people: tuple[Person, ...] = (TEACHER, STUDENT),
    stream: dict[str, object] | None = None,
) -> None:
    clock = FakeClock(1000.0)
    r = HealthReporter(
        clock=clock, state_file=path, wall=lambda: time.time() - age, pid=os.getpid()
    )
    if ready:
        r.ready()
    if flowing or flowed_before:
        r.frame_done()
        r.control_done()
    clock.advance(1.0 if flowing else 3.0)  # not flowing: past the reporter's 2 s gap
    r.update(Health("following teacher", 29.84, True, 2, True, people, stream))
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
    assert data["state"] == "running" and data["doing"] == "following teacher"
    assert data["segments_pending"] == 2
    assert data["state_file"] == str(state_file)
    assert 0 <= data["age_s"] < 5


def test_stalled_and_starting_are_said(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(state_file, flowing=False)
    assert main(["status", "--state-file", str(state_file)]) == 3
    assert "STALLED" in capsys.readouterr().out
    write_state(state_file, ready=False)
    assert main(["status", "--state-file", str(state_file)]) == 3
    assert "starting up" in capsys.readouterr().out


def test_ready_but_no_frame_yet_is_starting_not_stalled(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after READY the first frame has not come yet: status said STALLED while systemd
    said starting (the installed-robot check's status-at-once step)."""
    clock = FakeClock(1000.0)
    r = HealthReporter(clock=clock, state_file=state_file, wall=time.time, pid=os.getpid())
    r.ready()
    clock.advance(0.3)
    r.update(Health("starting", 0.0, False, 0, True))
    assert main(["status", "--state-file", str(state_file)]) == 3
    out = capsys.readouterr().out
    assert "STALLED" not in out and "starting up" in out
    clock.advance(3.0)  # nothing ever came: past the 2 s gap that is a stall
    r.update()
    assert main(["status", "--state-file", str(state_file)]) == 3
    assert "STALLED" in capsys.readouterr().out


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
    monkeypatch.setattr(instance, "ROBOT_RUNTIME_DIR", tmp_path / "a")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    user = tmp_path / "state" / "coachcam" / "status.json"
    assert main(["status"]) == 1
    assert f"{tmp_path / 'a' / 'status.json'} or {user}" in one_error_line(capsys)
    write_state(user)
    assert main(["status"]) == 0


def test_stale(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file, age=30.0)
    assert main(["status", "--state-file", str(state_file)]) == 3
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


def run_json(state_file: Path, capsys: pytest.CaptureFixture[str], code: int) -> dict[str, Any]:
    assert main(["status", "--json", "--state-file", str(state_file)]) == code
    out = capsys.readouterr().out
    return dict(json.loads(out))


def test_json_says_down_when_there_is_no_daemon(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(state_file, capsys, 1)
    assert data["state"] == "down" and data["healthy"] is False
    assert "no state file" in data["reason"]
    write_state(state_file, stop=True)
    assert run_json(state_file, capsys, 1)["state"] == "stopped"


def test_json_exit_codes_match_the_plain_form(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(state_file, flowing=False)
    data = run_json(state_file, capsys, 3)
    assert data["state"] == "stalled" and data["healthy"] is False
    assert data["doing"] == "following teacher"
    write_state(state_file, ready=False)
    assert run_json(state_file, capsys, 3)["state"] == "starting"
    write_state(state_file, age=30.0)
    assert run_json(state_file, capsys, 3)["state"] == "stale"
    write_state(state_file)
    data = run_json(state_file, capsys, 0)
    assert data["state"] == "running" and data["healthy"] is True


def test_json_people_are_fields(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file)
    people = run_json(state_file, capsys, 0)["people"]
    assert people[0] == {
        "id": 3,
        "teacher": True,
        "pan_deg": -12.04,
        "tilt_deg": 4.0,
        "posture": "standing",
        "seen_s_ago": 0.0,
    }
    assert people[1]["id"] == 7 and people[1]["teacher"] is False


def test_plain_people_render_from_the_fields(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(state_file)
    assert main(["status", "--state-file", str(state_file)]) == 0
    out = capsys.readouterr().out
    assert "    track 3: standing, pan -12.0 deg, seen just now <- following\n" in out
    assert "    track 7: seated, pan +30.0 deg, seen 1.2 s ago\n" in out or out.endswith(
        "    track 7: seated, pan +30.0 deg, seen 1.2 s ago\n"
    )


@pytest.mark.parametrize("seen", [-0.0, -0.04, -3.0, 0.0, 0.01])
def test_seen_is_never_negative(seen: float) -> None:
    line = status.person_line(
        {"id": 1, "teacher": False, "pan_deg": 0.0, "posture": "seated", "seen_s_ago": seen}
    )
    assert "-0" not in line and "seen just now" in line, line


def test_stream_dict_is_one_line(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(state_file, stream={"state": "refused", "reason": "bad key\n\x1b[2J"})
    assert main(["status", "--state-file", str(state_file)]) == 0
    out = capsys.readouterr().out
    line = next(li for li in out.splitlines() if li.startswith("  stream:"))
    assert "refused" in line and "bad key" in line and "\x1b" not in out
    assert "2 recorded segments to send" in line


@pytest.mark.parametrize("form", [[], ["--json"]])
def test_a_user_outside_the_group_is_refused_in_one_line(form: list[str]) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    run = Path(tempfile.mkdtemp(prefix="coachcam-test-", dir="/dev/shm"))
    try:
        write_state(run / "status.json")
        run.chmod(0o750)  # RuntimeDirectoryMode=0750, root:root here
        r = subprocess.run(
            [*as_nobody, sys.executable, "-m", "coachcam.cli", "status", *form],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[1],
            env=dict(os.environ, RUNTIME_DIRECTORY=str(run), HOME="/nonexistent"),
        )
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert r.returncode == 1, r.stderr
    want = f"permission denied on {run / 'status.json'}: run as root or as a member of group"
    if form:
        data = json.loads(r.stdout)
        assert data["state"] == "unknown" and want in data["reason"] and r.stderr == ""
    else:
        assert r.stderr.startswith(f"coachcam: error: {want}") and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("as_json", [False, True])
def test_a_state_file_with_non_finite_numbers_is_one_line(
    state_file: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """It crashed in int()/float() with a traceback; now the field is named."""
    write_state(state_file)
    text = state_file.read_text().replace('"fps": 29.84', '"fps": NaN')
    assert '"fps": NaN' in text
    state_file.write_text(text)
    rc = main(["status", "--state-file", str(state_file), *(["--json"] if as_json else [])])
    assert rc == 1
    out = capsys.readouterr()
    assert "not a coachcam state file" in out.out + out.err and "fps" in out.out + out.err
