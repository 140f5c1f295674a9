"""Backfill: deliver the recorded segments the live endpoint did not confirm, by HTTP PUT.

HTTP PUT is what WebDAV servers (nginx's dav module, Apache mod_dav, Nextcloud, most NAS
boxes) accept, so the school's own storage can receive the segments. Each segment is judged
once it has *settled* (``settle_s`` after it ends on the stream clock): if the endpoint's
confirmed spans cover it, it was seen live; otherwise it is uploaded as ``SESSION/NAME.ts``
plus ``NAME.ts.sha256`` (``sha256sum`` format) and checked with HEAD. A ledger in the
recording directory makes the work resumable across restarts and uploads each segment once;
a segment already on the server with the same checksum is not sent again.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from coachcam.atomic import write_atomic
from coachcam.errors import StreamError
from stream.confirm import Span, covered
from stream.recording import SegmentInfo, SegmentStore

log = logging.getLogger(__name__)


class HttpPutTarget:
    """PUT/HEAD/GET against a WebDAV-style base URL (stdlib only; one request at a time)."""

    def __init__(self, base_url: str, *, auth: str = "", ca_file: str = "", timeout: float = 30.0):
        self.base = base_url.rstrip("/") + "/"
        self._headers: dict[str, str] = {}
        if auth:
            token = base64.b64encode(auth.encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = timeout
        self._ca_file = ca_file
        self.sent_bytes = 0

    def _open(self, req: urllib.request.Request) -> Any:
        ctx = None
        if req.full_url.startswith("https:"):
            from stream.relay import tls_context

            ctx = tls_context(self._ca_file)
        for k, v in self._headers.items():
            req.add_header(k, v)
        return urllib.request.urlopen(req, timeout=self._timeout, context=ctx)

    def url(self, rel: str) -> str:
        return self.base + quote(rel)

    def size(self, rel: str) -> int | None:
        try:
            with self._open(urllib.request.Request(self.url(rel), method="HEAD")) as r:
                return int(r.headers.get("Content-Length", "-1"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def get_text(self, rel: str) -> str | None:
        try:
            with self._open(urllib.request.Request(self.url(rel))) as r:
                return str(r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def put_file(self, rel: str, path: Path, content_type: str) -> None:
        size = path.stat().st_size
        with path.open("rb") as f:
            req = urllib.request.Request(self.url(rel), data=f, method="PUT")
            req.add_header("Content-Length", str(size))
            req.add_header("Content-Type", content_type)
            with self._open(req):
                pass
        self.sent_bytes += size

    def put_bytes(self, rel: str, data: bytes, content_type: str) -> None:
        req = urllib.request.Request(self.url(rel), data=data, method="PUT")
        req.add_header("Content-Type", content_type)
        with self._open(req):
            pass
        self.sent_bytes += len(data)


class Backfiller:
    """Judges settled segments and uploads the unconfirmed ones; ``run_once`` or a thread."""

    def __init__(
        self,
        store: SegmentStore,
        target: HttpPutTarget,
        *,
        confirmed: Callable[[], list[Span]],
        horizon_us: Callable[[], int | None],
        settle_s: float = 8.0,
        tolerance_us: int = 100_000,
        interval_s: float = 5.0,
    ) -> None:
        self.store = store
        self.target = target
        self._confirmed = confirmed
        self._horizon = horizon_us
        self._settle = int(settle_s * 1e6)
        self._tol = tolerance_us
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ledger: dict[str, dict[str, str]] | None = None
        self.uploaded: list[str] = []
        self.errors = 0

    @property
    def ledger_path(self) -> Path:
        return self.store.dir / "backfill-ledger.json"

    def ledger(self) -> dict[str, dict[str, str]]:
        if self._ledger is None:
            try:
                self._ledger = json.loads(self.ledger_path.read_text())
            except FileNotFoundError:
                self._ledger = {}
            except (OSError, ValueError) as exc:
                log.warning("backfill: unreadable ledger (%s); starting a new one", exc)
                self._ledger = {}
        return self._ledger

    def _note(self, name: str, state: str, sha: str = "") -> None:
        led = self.ledger()
        led[name] = {"state": state, "sha256": sha}
        # Durable: a ledger lost to a power cut means sending again every segment it knew
        # about; it changes once per segment at most.
        write_atomic(self.ledger_path, json.dumps(led, indent=1, sort_keys=True))

    def judge(self, seg: SegmentInfo, confirmed: list[Span], horizon: int | None) -> str:
        """'wait', 'live' (the endpoint confirmed it) or 'upload'."""
        if seg.session != self.store.session or seg.start_us is None or seg.end_us is None:
            return "upload"  # an earlier run, or a crash-recovered segment: nobody confirmed it
        if horizon is None or seg.end_us + self._settle > horizon:
            return "wait"
        return "live" if covered((seg.start_us, seg.end_us), confirmed, self._tol) else "upload"

    def run_once(self, *, final: bool = False, upload: bool = True) -> list[str]:
        """One pass over the recording; returns the names uploaded.

        ``final``: the stream has ended, so every segment has settled (confirmations are all
        in). ``upload=False`` only records what was confirmed live (used at shutdown, so the
        next start does not re-send segments the endpoint already has).
        """
        confirmed = self._confirmed()
        horizon = self._horizon()
        if final:
            horizon = 2**62  # every segment has settled
        done: list[str] = []
        led = self.ledger()
        for seg in self.store.segments():
            if seg.name in led:
                continue
            verdict = self.judge(seg, confirmed, horizon)
            if verdict == "wait":
                continue
            if verdict == "live":
                self._note(seg.name, "live")
                continue
            if not upload:
                continue
            try:
                self._upload(seg)
            except (OSError, StreamError) as exc:  # network down: try again on the next pass
                self.errors += 1
                log.warning("backfill: %s not delivered yet: %s", seg.filename, exc)
                break
            self._note(seg.name, "uploaded", seg.sha256)
            done.append(seg.name)
            self.uploaded.append(seg.name)
            if self._stop.is_set():
                break
        return done

    def _upload(self, seg: SegmentInfo) -> None:
        rel = f"{seg.session}/{seg.filename}"
        path = self.store.dir / seg.filename
        sums = f"{seg.sha256}  {seg.filename}\n"
        if self.target.size(rel) == seg.bytes and self.target.get_text(rel + ".sha256") == sums:
            log.info("backfill: %s already delivered", seg.filename)
            return
        self.target.put_file(rel, path, "video/mp2t")
        self.target.put_bytes(rel + ".sha256", sums.encode(), "text/plain")
        got = self.target.size(rel)
        if got != seg.bytes:
            raise StreamError(f"backfill: server holds {got} B of {seg.filename}, not {seg.bytes}")
        log.info("backfill: delivered %s (%d B)", seg.filename, seg.bytes)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="backfill", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # never let the backfill thread die silently
                log.exception("backfill: pass failed")
            self._stop.wait(self._interval)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
