"""One instance per robot: ``run``, ``check`` and ``calibrate`` hold an flock in the runtime
directory; a second one exits at once with one line naming the holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coachcam import instance
from coachcam.instance import AlreadyRunning, RuntimeDir, one_instance

HOLD = (
    "import sys, time; from pathlib import Path; from coachcam.instance import RuntimeDir,"
    " one_instance\n"
    "with one_instance('test', RuntimeDir(Path(sys.argv[1]))):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock in ``tmp_path/run``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    yield proc
    proc.kill()
    proc.wait()


def test_second_holder_is_told_who_holds_it(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(AlreadyRunning) as err, one_instance("run", RuntimeDir(tmp_path / "run")):
        pass
    msg = str(err.value)
    assert f"pid {holder.pid}" in msg and str(tmp_path / "run" / "coachcam.lock") in msg
    assert "\n" not in msg and err.value.exit_code == 6


def test_kill_9_releases_the_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with one_instance("run", RuntimeDir(tmp_path / "run")) as path:
        assert path.read_text() == f"{os.getpid()}\n"
    with one_instance("run", RuntimeDir(tmp_path / "run")):  # released on leaving, too
        pass


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RUNTIME_DIRECTORY=str(tmp_path / "run"), HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "coachcam.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_a_second_daemon_exits_at_once_and_leaves_the_socket(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    sock = tmp_path / "run" / "control.sock"
    sock.write_text("the first daemon's socket stands in here")
    t0 = time.monotonic()
    r = cli(tmp_path, "run", "--seconds", "3")
    assert time.monotonic() - t0 < 20
    assert r.returncode == 6, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {holder.pid}" in lines[0], r.stderr
    assert "already running" in lines[0] and "Traceback" not in r.stderr
    assert sock.exists(), "a second daemon must never unlink the first one's socket"


@pytest.mark.parametrize("argv", [["check"], ["calibrate", "axis", "--axis", "pan", "--dry-run"]])
def test_check_and_calibrate_refuse_beside_a_daemon(
    tmp_path: Path, holder: subprocess.Popen[str], argv: list[str]
) -> None:
    r = cli(tmp_path, *argv)
    assert r.returncode == 6, (r.stdout, r.stderr)
    assert f"pid {holder.pid}" in r.stderr and "Traceback" not in r.stderr


def test_lock_dir_is_the_daemons_under_systemd() -> None:
    assert instance.lock_dir({"RUNTIME_DIRECTORY": "/run/x"}) == RuntimeDir(Path("/run/x"))


def test_a_lock_file_root_makes_belongs_to_the_directorys_owner(tmp_path: Path) -> None:
    """`sudo coachcam check` before the service starts: the service user must open it later."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, 65534, 65534)
    with one_instance("check", RuntimeDir(run)) as path:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534) and st.st_mode & 0o777 == 0o640


def test_root_on_an_installed_robot_locks_the_robots_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sudo coachcam check` while the service is stopped: the lock goes where the service's
    will be, made as systemd would make it, so a service started meanwhile is refused."""
    import pwd

    if os.geteuid() != 0:
        pytest.skip("needs root")
    robot = tmp_path / "robot"
    monkeypatch.setattr(instance, "ROBOT_RUNTIME_DIR", robot)
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setattr(instance.pwd, "getpwnam", lambda name: nobody)
    assert instance.lock_dir({}) == RuntimeDir(robot)
    st = robot.stat()
    assert st.st_uid == nobody.pw_uid and st.st_mode & 0o777 == 0o750
    assert instance.lock_dir({}) == RuntimeDir(robot)  # and found when it exists


def test_off_the_robot_the_lock_is_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instance, "ROBOT_RUNTIME_DIR", tmp_path / "none")
    monkeypatch.setattr(instance.pwd, "getpwnam", lambda name: (_ for _ in ()).throw(KeyError))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert instance.lock_dir({}) == RuntimeDir(tmp_path / "state" / "coachcam")
