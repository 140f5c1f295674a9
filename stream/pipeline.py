"""The streaming pipeline, wired in one place from config.

    frame → apply_privacy → encoder → ThreadedOutput(SegmentWriter)   (always: local recording)
                                    → ThreadedOutput(publisher)       (if stream.url)
    Backfiller: recording + what the endpoint confirmed → HTTP PUT    (if stream.backfill.url)

``Streamer.push`` runs in the frame loop and never waits on disk or network: outputs queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.clock import Clock, MonotonicClock
from coachcam.errors import StreamError
from coachcam.frame import Frame
from coachcam.values import Pose
from stream.backfill import Backfiller, HttpPutTarget
from stream.config import StreamConfig
from stream.confirm import NginxRtmpStat, Span
from stream.encoder import Encoder, LibavEncoder, pick_codec
from stream.outputs import Confirmer, Output, Sink, ThreadedOutput
from stream.privacy import apply_privacy
from stream.recording import SegmentStore, SegmentWriter, default_recording_dir
from stream.secrets import fill_url, read_secret

log = logging.getLogger(__name__)

# An encoder that throws is restarted (one frame lost, the video resumes with a keyframe); one
# that keeps throwing is broken for good, and the daemon exits so systemd restarts it.
ENCODER_FAILURES = 3
ENCODER_FAILURE_WINDOW_S = 60.0


def status_report(st: dict[str, Any]) -> dict[str, str]:
    """``Streamer.status()`` as words, one key each (what the state file and ``STATUS=`` show):
    ``{"live": "refused (wrong stream key?)", "recording": "ok"}``, ``{"live": "connected",
    "confirmed": "0.4 s ago", "recording": "failing: disk full"}``."""
    out = {"live": st["live"] + (f" ({st['live_reason']})" if st.get("live_reason") else "")}
    ago = st.get("confirmed_ago_s")
    if ago is not None:
        out["confirmed"] = f"{ago:.1f} s ago"
    elif st["live"] == "connected":
        out["confirmed"] = "not yet" if st.get("stat_page") else "n/a (no stat_url)"
    rwhy = st.get("recording_reason", "")
    out["recording"] = st["recording"] + (f": {rwhy}" if rwhy else "")
    return out


def status_words(st: dict[str, Any]) -> str:
    """One line, e.g. "live refused (wrong stream key?), recording ok"."""
    return ", ".join(f"{k} {v}" for k, v in status_report(st).items())


def session_name(wall: float) -> str:
    """Sortable, unique per start: the UTC wall time the stream started."""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%S") + f"{wall % 1:.3f}"[1:]


class Streamer:
    """Privacy, encoding, recording, publishing and backfill for one run of the robot."""

    def __init__(
        self,
        cfg: StreamConfig,
        width: int,
        height: int,
        fps: float,
        *,
        clock: Clock | None = None,
        wall: Callable[[], float] = time.time,
        publisher: Callable[[], Sink] | None = None,
        confirmer: Confirmer | None = None,
        encoder_class: Callable[..., Encoder] = LibavEncoder,
        free_bytes: Callable[[Path], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.width, self.height, self.fps = width, height, fps
        self._clock = clock or MonotonicClock()
        self._wall = wall
        self._publisher = publisher
        self._confirmer = confirmer
        self._encoder_class = encoder_class
        self._encoder_failures: list[float] = []
        self._free = free_bytes
        self.store: SegmentStore | None = None
        self.recorder: ThreadedOutput | None = None
        self.network: ThreadedOutput | None = None
        self.backfill: Backfiller | None = None
        self.encoder: Encoder | None = None
        self._started = False

    def start(self) -> None:
        """Read secrets, build and start the outputs (the I/O the constructor does not do)."""
        if self._started:
            return
        cfg = self.cfg
        rec = cfg.recording
        session = session_name(self._wall())
        kwargs = {} if self._free is None else {"free_bytes": self._free}
        self.store = SegmentStore(
            Path(rec.dir) if rec.dir else default_recording_dir(),
            session,
            segment_s=rec.segment_s,
            quota_bytes=int(rec.quota_mb * 1e6),
            min_free_bytes=int(rec.min_free_mb * 1e6),
            **kwargs,
        )
        store = self.store
        bps = cfg.bitrate_kbps * 1000 / 8
        self.recorder = ThreadedOutput(
            "recording",
            lambda: SegmentWriter(store, bytes_per_s=bps),
            clock=self._clock,
            queue_packets=rec.queue_packets,
            backoff_min=cfg.reconnect_min_s,
            backoff_max=max(cfg.reconnect_max_s, cfg.reconnect_min_s),
            stall_timeout=3600.0,
        )
        outputs: list[Output] = [self.recorder]
        url = ""
        if cfg.enabled and (cfg.url or self._publisher is not None):
            secret = read_secret(cfg.credential)
            url = fill_url(cfg.url, secret)
            opener = self._publisher
            if opener is None:
                from stream.publish import publisher_for_url

                opener = publisher_for_url(
                    url,
                    ca_file=cfg.ca_file,
                    timeout=cfg.stall_timeout_s,
                    secret=secret,
                )
            confirmer = self._confirmer
            if confirmer is None and cfg.stat_url:
                confirmer = NginxRtmpStat(cfg.stat_url, url)
            self.network = ThreadedOutput(
                "live",
                opener,
                clock=self._clock,
                queue_packets=cfg.queue_packets,
                backoff_min=cfg.reconnect_min_s,
                backoff_max=max(cfg.reconnect_max_s, cfg.reconnect_min_s),
                stall_timeout=cfg.stall_timeout_s,
                confirmer=confirmer,
            )
            outputs.append(self.network)
        if cfg.backfill.url:
            bf = cfg.backfill
            target = HttpPutTarget(
                bf.url, auth=read_secret(bf.credential), ca_file=bf.ca_file, timeout=bf.timeout_s
            )
            self.backfill = Backfiller(
                store,
                target,
                confirmed=self.confirmed,
                horizon_us=self.horizon_us,
                settle_s=bf.settle_s,
                interval_s=bf.interval_s,
                tolerance_us=int(1.5e6 / self.fps),
            )
        self.encoder = self._encoder_class(
            self.width,
            self.height,
            self.fps,
            bitrate_kbps=cfg.bitrate_kbps,
            keyframe_interval_s=cfg.keyframe_interval_s,
            codec=pick_codec(cfg.encoder),
            outputs=outputs,
        )
        for out in outputs:
            out.start()
        if self.backfill is not None:
            self.backfill.start()
        self._started = True
        log.info("stream: session %s, recording to %s", session, store.dir)

    def push(
        self, frame: Frame, poses: Sequence[Pose] = (), teacher_index: int | None = None
    ) -> None:
        """Privacy, then encode; the outputs take it from there. Called by the frame loop."""
        if frame.image is None:
            return
        if not self._started:
            self.start()
        assert self.encoder is not None
        image: np.ndarray = apply_privacy(frame.image, poses, teacher_index, self.cfg.privacy)
        try:
            self.encoder.encode(image, frame.t_capture)
        except StreamError as exc:
            self._encoder_failed(exc)

    def _encoder_failed(self, exc: StreamError) -> None:
        assert self.encoder is not None
        now = self._clock.now()
        recent = [t for t in self._encoder_failures if now - t < ENCODER_FAILURE_WINDOW_S]
        self._encoder_failures = [*recent, now]
        if len(self._encoder_failures) >= ENCODER_FAILURES:
            raise StreamError(
                f"{exc} ({len(self._encoder_failures)} encoder failures in "
                f"{ENCODER_FAILURE_WINDOW_S:.0f} s; giving up)"
            ) from exc
        log.error("stream: %s; restarting the encoder (video resumes with a keyframe)", exc)
        self.encoder.restart()

    def status(self) -> dict[str, Any]:
        """What is really happening, as plain values for the state file and ``coachcam status``:

        ``live``: off | connecting | connected (the server accepted the publish, or its stat
        page confirmed data) | refused | unreachable | down, with ``live_reason``;
        ``confirmed_ago_s``: since the stat page last showed new data (None: never / no page);
        ``recording``: starting | ok | paused (below ``min_free_mb``) | failing, with
        ``recording_reason`` (read-only, disk full, ...).
        """
        cfg = self.cfg
        out: dict[str, Any] = {
            "live": "off",
            "live_reason": "disabled" if not cfg.enabled else "no URL",
            "confirmed_ago_s": None,
            "stat_page": bool(cfg.stat_url or self._confirmer is not None),
            "recording": "starting",
            "recording_reason": "",
        }
        net = self.network
        if net is not None:
            n = net.status()
            out["live"], out["live_reason"] = n["state"], n["reason"]
            out["confirmed_ago_s"] = n["confirmed_ago_s"]
        elif cfg.enabled and (cfg.url or self._publisher is not None):
            out["live"], out["live_reason"] = "connecting", ""
        rec = self.recorder
        if rec is not None:
            r = rec.status()
            state = r["state"]
            if state == "connected":
                out["recording"] = "ok"
            elif state != "connecting":
                out["recording"] = "paused" if r["paused"] else "failing"
                out["recording_reason"] = r["reason"]
        return out

    def confirmed(self) -> list[Span]:
        return self.network.confirmed() if self.network is not None else []

    def horizon_us(self) -> int | None:
        enc = self.encoder
        return getattr(enc, "last_pts_us", None)

    def close(self) -> None:
        """Flush the encoder, stop outputs and backfill. Safe twice."""
        if self.encoder is not None:
            self.encoder.close()
        for out in (self.network, self.recorder):
            if out is not None:
                out.close()
        if self.backfill is not None:
            self.backfill.close()
            try:
                self.backfill.run_once(final=True, upload=False)
            except OSError as exc:
                log.warning("backfill: could not record the final confirmations: %s", exc)
        self._started = False
        self.encoder = None

    def __enter__(self) -> Streamer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Faces = Callable[[Any, Frame], tuple[Sequence[Pose], int | None]]


class StreamSink:
    """Adapter to the frame loop's ``FrameSink`` (``write(frame, aim, tracker)``).

    ``faces(tracker, frame)`` returns the poses to consider for this frame (main-frame pixels) and
    the index of the teacher's among them (``None``: blur everyone); the tracker's API is the
    tracker's, so the daemon supplies it.
    """

    def __init__(self, streamer: Streamer, faces: Faces) -> None:
        self.streamer = streamer
        self.faces = faces
        self.frames = 0  # handed to the encoder: what the recording must hold

    def write(self, frame: Frame, aim: Any, tracker: Any) -> None:
        if frame.image is not None:
            self.frames += 1
        poses, teacher = self.faces(tracker, frame)
        self.streamer.push(frame, poses, teacher)

    def close(self) -> None:
        self.streamer.close()
        log.info("stream: %d frames handed to the encoder", self.frames)
