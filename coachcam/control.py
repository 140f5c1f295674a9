"""A local control channel to the running daemon (``coachcam retarget``).

One ``AF_UNIX`` ``SOCK_SEQPACKET`` socket, ``control.sock`` in the daemon's runtime directory
(``coachcam.instance``), mode 0660: the service's user and group, and root. A client connects,
sends one JSON object as one message and reads the one-line reply on the same connection, so
the client binds no path of its own (a daemon with ``PrivateTmp=yes``, or running as another
user, could not reach one). SEQPACKET rather than STREAM: a request is one message, so there is
no framing to write and no partial read to wait for.

The frame loop calls ``poll`` once per frame. It never blocks: the listening socket and every
accepted connection are non-blocking; a poll accepts at most ``MAX_CLIENTS`` waiting connections
and answers at most ``MAX_PER_POLL`` requests; a client that connects and sends nothing is
dropped after ``CLIENT_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coachcam.errors import CoachcamError
from coachcam.instance import permission_denied

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096  # a request or reply larger than this is cut (and so is not valid JSON)
LOG_CHARS = 160  # how much of a request or reply the journal gets


def printable(text: str | bytes, limit: int = LOG_CHARS) -> str:
    """``text`` safe for one log line: control characters (newlines, terminal escapes) as
    ``\\xNN``, cut to ``limit`` characters with the full length said."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[: limit + 1])
    if len(out) > limit:
        return f"{out[:limit]}... ({len(text)} chars)"
    return out


class ControlServer:
    MAX_PER_POLL = 4  # requests answered per frame
    MAX_CLIENTS = 8  # connections held waiting for their request
    BACKLOG = 16
    CLIENT_TIMEOUT_S = 2.0

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.sock: socket.socket | None = None
        self.clients: list[tuple[socket.socket, float]] = []
        self._bound: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we made

    def open(self) -> ControlServer:
        """Bind and listen. The caller holds the instance lock, so a socket already at ``path``
        is a dead daemon's and is replaced (atomically, already 0660: never a moment without
        the socket or with the wrong mode)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            sock.bind(str(tmp))
            os.chmod(tmp, 0o660)
            sock.listen(self.BACKLOG)
            sock.setblocking(False)
            os.replace(tmp, self.path)
            st = self.path.stat()
        except OSError as exc:
            sock.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            reason = exc.strerror or str(exc)
            raise CoachcamError(f"cannot open the control socket {self.path}: {reason}") from None
        self._bound = (st.st_dev, st.st_ino)
        self.sock = sock
        return self

    def poll(self, handle: Callable[[dict[str, Any]], str]) -> int:
        """Answer waiting requests with ``handle``'s one-line reply; returns how many."""
        if self.sock is None:
            return 0
        now = self.clock()
        while len(self.clients) < self.MAX_CLIENTS:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. out of file descriptors: try again next frame
                log.warning("control: accept failed: %s", exc.strerror)
                break
            conn.setblocking(False)
            self.clients.append((conn, now + self.CLIENT_TIMEOUT_S))
        answered = 0
        waiting: list[tuple[socket.socket, float]] = []
        for conn, deadline in self.clients:
            if answered >= self.MAX_PER_POLL:
                waiting.append((conn, deadline))
                continue
            try:
                data = conn.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                if now < deadline:
                    waiting.append((conn, deadline))
                else:
                    log.info("control: a client sent nothing for %.0f s", self.CLIENT_TIMEOUT_S)
                    conn.close()
                continue
            except OSError:
                conn.close()
                continue
            if data:
                answered += 1
                reply = self._answer(data, handle)
                with contextlib.suppress(OSError):
                    conn.send(reply.encode()[:MAX_MESSAGE])
            conn.close()
        self.clients = waiting
        return answered

    @staticmethod
    def _answer(data: bytes, handle: Callable[[dict[str, Any]], str]) -> str:
        try:
            request = json.loads(data.decode())
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
            reply = handle(request)
        except (ValueError, KeyError) as exc:
            reply = f"error: {printable(str(exc))}"
        log.info("control: %s -> %s", printable(data), printable(reply))
        return reply

    def close(self) -> None:
        """Stop listening and remove the socket, only if it is still the one we made."""
        for conn, _ in self.clients:
            conn.close()
        self.clients = []
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        with contextlib.suppress(OSError):
            st = self.path.stat()
            if (st.st_dev, st.st_ino) == self._bound:
                self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def send(path: Path, request: dict[str, Any], timeout: float = 5.0) -> str:
    """Send one request to the daemon and return its reply (one connection, no client path)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except PermissionError:
            raise permission_denied(path) from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise CoachcamError(
                f"no daemon listening on {path} (is coachcam running? see `coachcam status`)"
            ) from None
        except TimeoutError:
            raise CoachcamError(
                f"the daemon is busy: no connection on {path} within {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise CoachcamError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(json.dumps(request).encode())
            reply = sock.recv(MAX_MESSAGE)
        except TimeoutError:
            raise CoachcamError(
                f"the daemon did not answer on {path} within {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise CoachcamError(f"lost the connection to {path}: {exc.strerror or exc}") from None
        if not reply:
            raise CoachcamError(f"the daemon closed {path} without answering")
        return printable(reply, MAX_MESSAGE)
    finally:
        sock.close()
