"""The real daemon as a subprocess: the notify socket it talks to, and how the tests start it.

Shared by test_daemon_run.py, test_daemon_faults.py, test_control_socket.py and
test_stream_status.py (the ``notify`` fixture is in conftest.py).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, predicate: Callable[[str], object], timeout: float = 60.0) -> str:
        """Collect datagrams until one satisfies ``predicate``; fail if none does within
        ``timeout`` s, showing the last ones that came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            if predicate(msg):
                return msg
        raise AssertionError(
            f"no such notification within {timeout:g} s; the last were {self.messages[-5:]}"
        )

    def next_ping_after_log(self, log: Callable[[], str], line: str, timeout: float = 60.0) -> str:
        """Wait for the next ``WATCHDOG=1`` and fail unless the daemon had logged ``line`` by then.

        The daemon writes its log line before the ping that follows it, and we read the log
        after the ping arrived: a ping found with no ``line`` in the log was sent before it.
        An order of events, not a time window, so a loaded machine cannot make it flaky.
        """
        ping = self.wait_for(lambda m: "WATCHDOG=1" in m, timeout)
        assert line in log(), (
            f"a watchdog ping before the daemon logged {line!r}: {self.messages[-5:]}"
        )
        return ping

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return self.messages

    def close(self) -> None:
        self.sock.close()


def start_daemon(
    tmp_path: Path, notify: NotifySocket, config: str, *args: str
) -> subprocess.Popen[str]:
    cfg = tmp_path / "coachcam.toml"
    cfg.write_text(config)
    env = dict(os.environ)
    env.update(
        NOTIFY_SOCKET=str(notify.path),
        WATCHDOG_USEC="2000000",
        WATCHDOG_PID=str(0),  # replaced below: systemd sets it to the service's pid
        RUNTIME_DIRECTORY=str(tmp_path / "run"),
        HOME=str(tmp_path),
    )
    env.pop("WATCHDOG_PID")
    (tmp_path / "run").mkdir()
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coachcam.cli",
            "--log-level",
            "info",
            "run",
            "--config",
            str(cfg),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


# Small frames at 15 fps: the faults are the point, not the pixels (2 cores run the whole module).
BASE = """
[camera]
width = 320
height = 240
fps = 15.0
[sim]
scenario = "board"
min_person_px = 10.0
"""


def recording(tmp_path: Path, url: str = "") -> str:
    return f"""
[stream]
enabled = true
url = "{url}"
bitrate_kbps = 300
reconnect_min_s = 0.1
reconnect_max_s = 0.5
stall_timeout_s = 2.0
[stream.recording]
dir = "{tmp_path / "rec"}"
segment_s = 1.0
min_free_mb = 0.0
[stream.privacy]
enabled = false
"""


class Daemon:
    """``coachcam run`` with systemd's environment; stderr goes to a file (a pipe nobody reads
    while the test runs could fill up and block the daemon)."""

    def __init__(self, tmp_path: Path, notify: NotifySocket, config: str) -> None:
        cfg = tmp_path / "coachcam.toml"
        cfg.write_text(config)
        (tmp_path / "run").mkdir()
        self.log_path = tmp_path / "daemon.log"
        env = dict(os.environ)
        env.update(
            NOTIFY_SOCKET=str(notify.path),
            WATCHDOG_USEC="2000000",  # pings every 0.5 s; none once nothing flowed for 1 s
            RUNTIME_DIRECTORY=str(tmp_path / "run"),
            HOME=str(tmp_path),
        )
        cmd = [sys.executable, "-m", "coachcam.cli", "--log-level", "info", "run"]
        with self.log_path.open("w") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--config", str(cfg)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=tmp_path,
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def fps_of(status: str) -> float:
    m = re.search(r"(\d+\.\d) fps", status)
    assert m, status
    return float(m.group(1))


def is_status(msg: str, *words: str, without: str | None = None) -> bool:
    return (
        msg.startswith("STATUS=")
        and all(w in msg for w in words)
        and (without is None or without not in msg)
    )


def local_frames(tmp_path: Path) -> list[list[int]]:
    """Decoded presentation times (us) per local segment, oldest first."""
    import av

    out = []
    for ts in sorted((tmp_path / "rec").glob("*.ts")):
        with av.open(str(ts), format="mpegts") as c:  # a short last segment defeats probing
            out.append([int(f.pts * f.time_base * 1_000_000) for f in c.decode(video=0)])
    return out


def frames_encoded(log: str) -> int:
    m = re.search(r"stream: (\d+) frames handed to the encoder", log)
    assert m, log[-2000:]
    return int(m.group(1))
