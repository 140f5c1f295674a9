"""The systemd notify protocol and the health reporter, against a real datagram socket
(python-systemd's test style) and a fake clock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coachcam import health
from coachcam.clock import FakeClock
from coachcam.health import Health, HealthReporter, Notifier


class Listener:
    """A bound AF_UNIX datagram socket standing in for systemd; records what arrived."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def messages(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return out
            out.append(dict(line.split("=", 1) for line in data.decode().split("\n")))

    def received_keys(self) -> list[str]:
        return [k for m in self.messages() for k in m]


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield Listener(sock, str(path))
    sock.close()


def test_notifier_sends_the_protocol(listener: Listener) -> None:
    with Notifier.from_env() as n:
        assert n.send(READY=1)
        assert n.send(STATUS=Health("following teacher", 29.84, True).line())
        assert n.send(WATCHDOG=1)
        assert n.send(STOPPING=1)
    assert listener.messages() == [
        {"READY": "1"},
        {"STATUS": "following teacher, 29.8 fps, streaming, 0 segments pending"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1"},
    ]


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"coachcam-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(1.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        with Notifier.from_env() as n:
            assert n.send(READY=1)
        assert sock.recv(100) == b"READY=1"


def test_no_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with Notifier.from_env() as n:
        assert not n.enabled
        assert not n.send(READY=1)
        assert not n.send(WATCHDOG=1)
    assert not Notifier.from_env({}).enabled


def test_unsupported_address_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled
    assert not n.send(READY=1)
    assert "not a path" in caplog.text


def test_dead_socket_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Notifier(str(tmp_path / "nobody-listens")) as n:
        assert not n.send(WATCHDOG=1)
        assert not n.send(WATCHDOG=1)
    assert caplog.text.count("systemd notify failed") == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "10000000"}, 10.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "4242"}, 3.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert health.watchdog_interval(env, pid=4242) == expected


def test_watchdog_interval_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert health.watchdog_interval() == 2.0


def make_reporter(listener: Listener, tmp_path: Path, clock: FakeClock) -> HealthReporter:
    return HealthReporter(
        clock=clock,
        notifier=Notifier(listener.address),
        state_file=tmp_path / "state" / "status.json",
        watchdog_s=4.0,
        wall=lambda: 1_700_000_000.0 + clock.now(),
        pid=4242,
    )


def run_frames(
    r: HealthReporter,
    clock: FakeClock,
    seconds: float,
    *,
    frames: bool = True,
    control: bool = True,
    dt: float = 0.1,
) -> None:
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        if frames:
            r.frame_done(clock.now())
        if control:
            r.control_done(clock.now())
        r.update(Health("following teacher", 10.0, True, 0, True))


def test_pings_while_frames_and_control_flow(listener: Listener, tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    r = make_reporter(listener, tmp_path, clock)
    r.ready(Health("starting"))
    assert listener.messages() == [{"READY": "1", "STATUS": Health("starting").line()}]
    run_frames(r, clock, 10.0)
    msgs = listener.messages()
    pings = [m for m in msgs if "WATCHDOG" in m]
    # one ping per quarter of the 4 s watchdog: plenty of margin, not one per frame
    assert 9 <= len(pings) <= 11
    statuses = [m["STATUS"] for m in msgs if "STATUS" in m]
    assert statuses[0] == "following teacher, 10.0 fps, streaming, 0 segments pending"
    assert len(statuses) <= 10  # at most once a second (only when the line changes)


def test_no_ping_before_ready(listener: Listener, tmp_path: Path) -> None:
    clock = FakeClock()
    r = make_reporter(listener, tmp_path, clock)
    run_frames(r, clock, 3.0)
    assert "WATCHDOG" not in listener.received_keys()


@pytest.mark.parametrize("missing", ["frames", "control"])
def test_pings_stop_when_frames_or_control_stop(
    listener: Listener, tmp_path: Path, missing: str
) -> None:
    clock = FakeClock()
    r = make_reporter(listener, tmp_path, clock)
    r.ready()
    run_frames(r, clock, 3.0)
    listener.messages()
    # The loop keeps calling update (e.g. waiting on a camera that went away) but one side stalls.
    run_frames(r, clock, 10.0, frames=missing != "frames", control=missing != "control")
    msgs = listener.messages()
    ping_times = [m for m in msgs if "WATCHDOG" in m]
    # pings continue only until the last success is max_gap_s (2 s) old
    assert 1 <= len(ping_times) <= 2
    assert any(m.get("STATUS", "").endswith("(stalled)") for m in msgs)
    state = json.loads(r.state_file.read_text())  # type: ignore[union-attr]
    assert state["flowing"] is False
    # and they resume when both flow again
    run_frames(r, clock, 2.0)
    assert "WATCHDOG" in listener.received_keys()


def test_no_watchdog_configured_sends_no_pings(listener: Listener, tmp_path: Path) -> None:
    clock = FakeClock()
    r = HealthReporter(clock=clock, notifier=Notifier(listener.address), watchdog_s=None)
    r.ready()
    run_frames(r, clock, 3.0)
    assert "WATCHDOG" not in listener.received_keys()
    assert r.max_gap_s == 2.0


def test_state_file_is_written_atomically_and_throttled(listener: Listener, tmp_path: Path) -> None:
    clock = FakeClock()
    r = make_reporter(listener, tmp_path, clock)
    r.ready()
    path = r.state_file
    assert path is not None
    run_frames(r, clock, 0.5)
    first = json.loads(path.read_text())
    run_frames(r, clock, 0.4)
    assert json.loads(path.read_text()) == first  # < 1 s later: not rewritten
    run_frames(r, clock, 0.3)
    state = json.loads(path.read_text())
    assert state["updated"] > first["updated"]
    assert state["pid"] == 4242
    assert state["state"] == "following teacher"
    assert state["fps"] == 10.0
    assert state["streaming"] is True
    assert state["servo_ok"] is True
    assert state["ready"] is True and state["flowing"] is True
    assert state["status"] == "following teacher, 10.0 fps, streaming, 0 segments pending"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp files left


def test_stopping_says_so(listener: Listener, tmp_path: Path) -> None:
    clock = FakeClock()
    r = make_reporter(listener, tmp_path, clock)
    r.ready()
    run_frames(r, clock, 2.0)
    listener.messages()
    r.stopping()
    run_frames(r, clock, 3.0)
    msgs = listener.messages()
    assert msgs[0]["STOPPING"] == "1"
    assert "WATCHDOG" not in [k for m in msgs for k in m]
    state = json.loads(r.state_file.read_text())  # type: ignore[union-attr]
    assert state["stopping"] is True


def test_unwritable_state_file_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    clock = FakeClock()
    r = HealthReporter(clock=clock, state_file=blocker / "status.json")
    r.ready()
    run_frames(r, clock, 5.0)
    assert caplog.text.count("cannot write state file") == 1


def test_health_line_words() -> None:
    assert Health("searching", 29.84, False, 1, False).line() == (
        "searching, 29.8 fps, not streaming, 1 segment pending, servo fault"
    )


def test_constructor_does_no_io(tmp_path: Path) -> None:
    HealthReporter(state_file=tmp_path / "x" / "status.json", notifier=Notifier("/nonexistent"))
    assert list(tmp_path.iterdir()) == []


def test_from_env(tmp_path: Path) -> None:
    env = {
        "NOTIFY_SOCKET": "@x",
        "WATCHDOG_USEC": "8000000",
        "RUNTIME_DIRECTORY": f"{tmp_path}/run:{tmp_path}/other",
    }
    r = HealthReporter.from_env(env, clock=FakeClock())
    assert r.notifier.address == "\0x"
    assert r.watchdog_s == 8.0 and r.max_gap_s == 4.0 and r.ping_every_s == 2.0
    assert r.state_file == tmp_path / "run" / "status.json"


def test_default_state_file() -> None:
    assert health.default_state_file({"STATE_DIRECTORY": "/var/lib/coachcam"}) == Path(
        "/var/lib/coachcam/status.json"
    )
    assert health.default_state_file({}).name == "status.json"


def test_another_process_notifies_through_the_environment(listener: Listener) -> None:
    """What systemd sees from a child started with NOTIFY_SOCKET (and nothing without it)."""
    code = (
        "from coachcam.health import Notifier\n"
        "with Notifier.from_env() as n: n.send(READY=1); n.send(STATUS='up'); n.send(STOPPING=1)"
    )
    env = {**os.environ, "NOTIFY_SOCKET": listener.address}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert listener.messages() == [{"READY": "1"}, {"STATUS": "up"}, {"STOPPING": "1"}]
    del env["NOTIFY_SOCKET"]
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert listener.messages() == []
