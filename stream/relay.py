"""A local TCP relay in front of an ingest server: verified TLS and a socket we can time out.

PyAV (FFmpeg inside its wheel) was measured here accepting a self-signed rtmps:// server with
``tls_verify=1`` and a wrong ``ca_file``, and a blocked FFmpeg socket write cannot be cut short
from Python. So FFmpeg talks plain RTMP/RTSP to this relay on 127.0.0.1 and the relay talks to
the real server with Python's ``ssl`` (certificate chain *and* host name verified) or plain TCP,
with a send timeout. ``abort()`` closes both sockets so a blocked FFmpeg write fails at once.

TLS runs through ``ssl.MemoryBIO`` (``_TlsStream``), not an ``SSLSocket``: the relay reads and
writes the server connection from two threads, and one ``SSLSocket`` used that way was seen here
to report a spurious end of stream under load (nginx logged *our* side closing after the RTMP
handshake's first 1537 bytes). OpenSSL does not allow concurrent read and write on one SSL object.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from typing import Protocol

from coachcam.errors import StreamError

log = logging.getLogger(__name__)


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """A client context that verifies the chain and the host name (system CAs or ``ca_file``)."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _Stream(Protocol):
    def recv(self, n: int, /) -> bytes: ...
    def sendall(self, data: bytes, /) -> None: ...
    def shutdown(self, how: int, /) -> None: ...
    def close(self) -> None: ...


class _TlsStream:
    """Client TLS over a plain socket; one thread may read while another writes.

    The ``SSLObject`` is touched only under a lock, and never while blocked on the network, so
    a reader waiting for the server does not hold up a writer; sends also happen under the lock,
    which keeps TLS records in order whichever thread produced them.
    """

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext, host: str) -> None:
        self._raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_hostname=host)
        self._lock = threading.Lock()

    def handshake(self) -> None:
        """Before any other use, from one thread; raises ``ssl.SSLError`` like ``wrap_socket``."""
        while True:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                data = self._raw.recv(65536)
                if not data:
                    raise ConnectionResetError(
                        "server closed the connection in the TLS handshake"
                    ) from None
                self._in.write(data)
            else:
                self._flush()
                return

    def _flush(self) -> None:
        out = self._out.read()
        if out:
            self._raw.sendall(out)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                view = view[self._obj.write(view) :]
                self._flush()

    def recv(self, n: int) -> bytes:
        """Plain text from the server; ``b""`` at its end; ``TimeoutError`` as the socket's."""
        while True:
            with self._lock:
                try:
                    data = self._obj.read(n)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
                self._flush()  # reading may have produced a reply (a key update)
            if data is not None:
                return data
            raw = self._raw.recv(65536)
            if not raw:
                return b""
            with self._lock:
                self._in.write(raw)

    def settimeout(self, timeout: float) -> None:
        self._raw.settimeout(timeout)

    def shutdown(self, how: int) -> None:
        self._raw.shutdown(how)

    def close(self) -> None:
        self._raw.close()


class TcpRelay:
    """Accepts one local connection and forwards it to ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 6.0,
        name: str = "relay",
    ) -> None:
        self.host, self.port = host, port
        self._tls = tls
        self._timeout = timeout
        self._name = name
        self._listener: socket.socket | None = None
        self._upstream: socket.socket | _TlsStream | None = None
        self._socks: list[_Stream] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self.error: Exception | None = None
        self.bytes_up = 0

    def start(self) -> int:
        """Connect to the server (TLS verified), then listen on 127.0.0.1; return the port.

        Connecting first means an unreachable or unverifiable server fails here, at once and
        with its reason, before anything (a publisher process) is started to use the relay.
        """
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self._timeout)
        except OSError as exc:
            self.error = exc
            self.check()
            raise
        upstream: socket.socket | _TlsStream = raw
        if self._tls is not None:
            upstream = _TlsStream(raw, self._tls, self.host)
            try:
                upstream.handshake()
            except (OSError, ssl.SSLError) as exc:
                raw.close()
                self.error = exc
                self.check()
                raise
        upstream.settimeout(self._timeout)
        self._upstream = upstream
        lst = socket.create_server(("127.0.0.1", 0))
        lst.settimeout(self._timeout)
        self._listener = lst
        t = threading.Thread(target=self._accept, name=f"{self._name}-accept", daemon=True)
        self._threads.append(t)
        t.start()
        return int(lst.getsockname()[1])

    def _accept(self) -> None:
        assert self._listener is not None and self._upstream is not None
        upstream = self._upstream
        try:
            local, _ = self._listener.accept()
        except OSError as exc:
            if not self._closed.is_set():
                self.error = exc
            upstream.close()
            return
        finally:
            self._listener.close()
        local.settimeout(None)
        with self._lock:
            if self._closed.is_set():
                local.close()
                upstream.close()
                return
            self._socks = [local, upstream]
        for src, dst, up in ((local, upstream, True), (upstream, local, False)):
            t = threading.Thread(
                target=self._pump, args=(src, dst, up), name=f"{self._name}-pump", daemon=True
            )
            self._threads.append(t)
            t.start()

    def _pump(self, src: _Stream, dst: _Stream, up: bool) -> None:
        try:
            while True:  # ends when a socket closes or times out, not by polling
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue  # a quiet reader is fine; only a send that cannot proceed is a stall
                if not data:
                    break
                dst.sendall(data)
                if up:
                    self.bytes_up += len(data)
        except (OSError, ssl.SSLError) as exc:
            if not self._closed.is_set():
                self.error = exc
                log.info("%s: connection ended: %s", self._name, exc)
        finally:
            self.abort()

    def abort(self) -> None:
        """Close everything; safe from any thread and safe twice."""
        with self._lock:
            self._closed.set()
            socks, self._socks = self._socks, []
        if self._listener is not None:
            self._listener.close()
        if self._upstream is not None and self._upstream not in socks:
            socks.append(self._upstream)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    close = abort

    def join(self, timeout: float = 2.0) -> None:
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def check(self) -> None:
        """Raise a ``StreamError`` naming why the upstream side failed, if it did."""
        if isinstance(self.error, ssl.SSLCertVerificationError):
            raise StreamError(
                f"TLS certificate of {self.host}:{self.port} not verified: "
                f"{self.error.verify_message}"
            )
        if self.error is not None:
            raise StreamError(f"{self.host}:{self.port}: {self.error}")
