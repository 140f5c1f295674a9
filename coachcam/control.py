"""A local control channel to the running daemon (``coachcam retarget``).

One AF_UNIX datagram socket in the daemon's runtime directory, readable by the coachcam user and
root only. A request is one JSON object per datagram; the daemon answers on the sender's own
socket. The daemon polls it once per frame without blocking, so a command never stalls control.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coachcam.errors import CoachcamError

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"


def default_socket(state_file: Path) -> Path:
    """Beside the state file (the unit's RuntimeDirectory on the robot)."""
    return state_file.parent / SOCKET_NAME


class ControlServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None

    def open(self) -> ControlServer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        sock.setblocking(False)
        self.sock = sock
        return self

    def poll(self, handle: Callable[[dict[str, Any]], str]) -> int:
        """Answer every waiting request with ``handle``'s one-line reply; returns how many."""
        if self.sock is None:
            return 0
        n = 0
        while True:
            try:
                data, sender = self.sock.recvfrom(4096)
            except BlockingIOError:
                return n
            n += 1
            try:
                request = json.loads(data.decode())
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
                reply = handle(request)
            except (ValueError, KeyError) as exc:
                reply = f"error: {exc}"
            log.info("control: %s -> %s", data.decode(errors="replace")[:200], reply)
            if sender:
                with contextlib.suppress(OSError):
                    self.sock.sendto(reply.encode(), sender)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def send(path: Path, request: dict[str, Any], timeout: float = 5.0) -> str:
    """Send one request to the daemon and return its reply."""
    with tempfile.TemporaryDirectory(prefix="coachcam-") as tmp:
        me = Path(tmp) / "client.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(me))
            sock.settimeout(timeout)
            try:
                sock.sendto(json.dumps(request).encode(), str(path))
            except (FileNotFoundError, ConnectionRefusedError):
                raise CoachcamError(
                    f"no daemon listening on {path} (is coachcam running? see `coachcam status`)"
                ) from None
            try:
                return sock.recv(4096).decode()
            except TimeoutError:
                raise CoachcamError(
                    f"the daemon did not answer on {path} within {timeout:.0f} s"
                ) from None
        finally:
            sock.close()
