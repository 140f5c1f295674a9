"""Local recording: MPEG-TS segments in the state directory, within a disk quota.

Every encoded packet is written, whatever the network does. A segment starts on a keyframe
once ``segment_s`` has passed, is written as ``NAME.ts.part`` and renamed to ``NAME.ts`` with a
``NAME.json`` sidecar (stream-time span, frame count, sha256) when complete, so readers never
see a half-written file. Before a segment starts and on every keyframe, the oldest complete
segments are deleted until the quota and the free-space floor both hold; if nothing is left
to delete, writing stops with a ``NoRoom`` (the output retries later; status says why) rather
than filling the disk.

"Oldest" is the segment's time: its name is ``SESSION-SEQ`` where the session is the UTC time
the stream started, so names ordered by (session, seq as a number) are in time order, with or
without a sidecar. A full disk must leave nothing behind for ever: a failed sidecar write
removes its temp file, and on start-up (and after a writer failed) leftover temp files are
removed and a segment without sidecar gets one computed from its bytes, rather than being
quarantined: its bytes are valid MPEG-TS, and only a sidecar lets backfill deliver them (its
span is unknown, so backfill sends it rather than trust a confirmation).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coachcam.atomic import temp_glob, write_atomic
from coachcam.errors import StreamError
from stream.h264 import mux_packet
from stream.outputs import NoRoom, Packet

log = logging.getLogger(__name__)


def default_recording_dir() -> Path:
    """``$STATE_DIRECTORY/recordings`` under systemd (StateDirectory=), else the user state dir."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / "recordings"
    from platformdirs import user_state_dir

    return Path(user_state_dir("coachcam")) / "recordings"


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def segment_key(name: str) -> tuple[str, int, str]:
    """Time order of segment names ``SESSION-SEQ``: the session (UTC start time), then the
    sequence number as a number (so -1000000 comes after -999999)."""
    session, _, seq = name.rpartition("-")
    if seq.isdigit():
        return (session, int(seq), name)
    return (name, 0, name)


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class SegmentInfo:
    name: str
    session: str
    seq: int
    start_us: int | None
    end_us: int | None
    frames: int
    bytes: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.ts"


class SegmentStore:
    """The recording directory: names, sidecars, quota. Shared by successive writers."""

    def __init__(
        self,
        directory: Path,
        session: str,
        *,
        segment_s: float = 10.0,
        quota_bytes: int = 4_000_000_000,
        min_free_bytes: int = 500_000_000,
        free_bytes: Callable[[Path], int] = disk_free,
    ) -> None:
        self.dir = Path(directory)
        self.session = session
        self.segment_us = int(segment_s * 1e6)
        self.quota = quota_bytes
        self.min_free = min_free_bytes
        self._free = free_bytes
        self._seq = 0
        self._ready = False
        self._started = False
        self.lock = threading.Lock()
        self.deleted: list[str] = []

    def prepare(self) -> None:
        """Create the directory and repair what a crash or a full disk left (first use, and
        again after a writer failed: ``needs_repair``). Best effort: what cannot be repaired
        now (the disk is still full) is tried again before the next segment, and never stops
        the quota from deleting the oldest segments."""
        if self._ready:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        # at start-up every temp file is debris; later only a segment sidecar's (names end in
        # the sequence number; backfill may be writing its ledger's right now)
        pattern = "*.tmp" if not self._started else temp_glob("*[0-9].json")
        self._started = True
        done = True
        for tmp in self.dir.glob(pattern):  # a sidecar or ledger write cut short
            try:
                tmp.unlink(missing_ok=True)
                log.warning("recording: removed %s, left by an interrupted write", tmp.name)
            except OSError as exc:
                done = False
                log.warning("recording: cannot remove %s now: %s", tmp.name, exc)
        for part in sorted(self.dir.glob("*.ts.part")):
            try:
                part.rename(part.with_name(part.name[: -len(".part")]))
                log.warning("recording: recovered unfinished segment %s", part.name)
            except OSError as exc:
                done = False
                log.warning("recording: cannot recover %s now: %s", part.name, exc)
        for ts in self._files():
            if (self.dir / f"{ts.stem}.json").exists():
                continue
            session, _, seq = ts.stem.rpartition("-")
            try:
                info = SegmentInfo(
                    ts.stem,
                    session,
                    int(seq) if seq.isdigit() else 0,
                    None,
                    None,
                    0,
                    ts.stat().st_size,
                    sha256_file(ts),
                )
                self.write_sidecar(info)
            except OSError as exc:
                done = False
                log.warning("recording: %s has no sidecar; cannot write one now: %s", ts.name, exc)
                continue
            log.warning("recording: %s had no sidecar; wrote one (backfill will send it)", ts.name)
        self._ready = done

    def needs_repair(self) -> None:
        """A writer failed (e.g. the disk filled): repair before the next segment."""
        self._ready = False

    def _files(self) -> list[Path]:
        """Complete segment files, sidecar or not, oldest first."""
        return sorted(self.dir.glob("*.ts"), key=lambda p: segment_key(p.stem))

    def next_name(self) -> tuple[str, int]:
        self._seq += 1
        return f"{self.session}-{self._seq:06d}", self._seq

    def write_sidecar(self, info: SegmentInfo) -> None:
        # Durable: a sidecar torn by a power cut would keep its segment from backfill for good
        # (prepare only gives a sidecar to a segment without one); one fsync per segment_s.
        write_atomic(self.dir / f"{info.name}.json", json.dumps(asdict(info), indent=1))

    def segments(self) -> list[SegmentInfo]:
        """Complete segments, oldest first."""
        out = []
        for side in sorted(self.dir.glob("*.json"), key=lambda p: segment_key(p.stem)):
            try:
                data: dict[str, Any] = json.loads(side.read_text())
                info = SegmentInfo(**data)
            except (OSError, ValueError, TypeError):
                continue
            if (self.dir / info.filename).exists():
                out.append(info)
        return out

    def used_bytes(self) -> int:
        total = 0
        for p in self.dir.iterdir():
            if p.name.endswith((".ts", ".ts.part")):
                with contextlib.suppress(FileNotFoundError):
                    total += p.stat().st_size
        return total

    def delete(self, info: SegmentInfo | str) -> None:
        name = info if isinstance(info, str) else info.name
        for suffix in (".ts", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{name}{suffix}").unlink()
        self.deleted.append(name)

    def make_room(self, need: int, keep: str = "") -> None:
        """Delete the oldest segments (by time, sidecar or not) until ``need`` more bytes fit;
        else ``NoRoom``, saying whether the disk is full or only the floor stops us."""
        with self.lock:
            while True:  # each pass deletes one segment or returns/raises
                used = self.used_bytes()
                free = self._free(self.dir)
                if used + need <= self.quota and free - need >= self.min_free:
                    return
                victims = [p.stem for p in self._files() if p.stem != keep]
                if not victims:
                    raise self._no_room(used, free, need)
                log.warning("recording: deleting oldest segment %s for space", victims[0])
                self.delete(victims[0])

    def _no_room(self, used: int, free: int, need: int) -> NoRoom:
        floor = f"min_free_mb = {self.min_free / 1e6:g}"
        if used + need > self.quota:
            reason = f"quota_mb = {self.quota / 1e6:g} smaller than one segment"
            paused = False
        elif free >= need and self.min_free > 0:
            reason = f"free space below {floor} (free {_mb(free)})"
            paused = True
        else:
            reason = "disk full"
            paused = False
        what = "paused" if paused else "stopped"
        return NoRoom(
            f"recording {what}, no room: {reason} in {self.dir}; segments use {_mb(used)}, "
            "nothing older to delete",
            reason,
            paused=paused,
        )


class SegmentWriter:
    """A ``Sink`` writing packets into rolling segments of a ``SegmentStore``."""

    def __init__(self, store: SegmentStore, *, bytes_per_s: float = 2_500_000 / 8) -> None:
        self._store = store
        self._est = int(bytes_per_s * store.segment_us / 1e6 * 1.5)
        self._container: Any = None
        self._stream: Any = None
        self._file: Any = None
        self._info: SegmentInfo | None = None
        self._part: Path | None = None
        self.finished: list[SegmentInfo] = []

    def write(self, packet: Packet) -> None:
        info = self._info
        if info is None or (
            packet.keyframe and packet.timestamp_us - (info.start_us or 0) >= self._store.segment_us
        ):
            self._finish()
            self._begin(packet)
            info = self._info
            assert info is not None
        elif packet.keyframe:
            assert self._part is not None
            self._store.make_room(0, keep=info.name)
        mux_packet(self._container, self._stream, packet, "recording:")
        info.frames += 1
        info.end_us = packet.timestamp_us

    def _begin(self, packet: Packet) -> None:
        import av

        from stream.h264 import template_stream

        store = self._store
        store.prepare()
        store.make_room(self._est)
        name, seq = store.next_name()
        part = store.dir / f"{name}.ts.part"
        tin, template = template_stream(packet.data)
        try:
            self._file = part.open("wb")
            self._container = av.open(self._file, "w", format="mpegts")
            self._stream = self._container.add_stream_from_template(template, opaque=True)
        except OSError as exc:
            raise StreamError(f"recording: cannot create {part}: {exc}") from exc
        finally:
            tin.close()
        self._part = part
        self._info = SegmentInfo(name, store.session, seq, packet.timestamp_us, None, 0, 0, "")

    def _finish(self) -> None:
        info, part = self._info, self._part
        self._info = self._part = None
        if info is None or part is None:
            return
        try:
            self._container.close()
        except Exception as exc:  # e.g. ENOSPC on the trailer: keep what reached the disk
            log.warning("recording: closing %s: %s", part.name, exc)
        finally:
            self._file.close()
            self._container = self._file = None
        if info.frames == 0:  # opened but nothing written (e.g. closed at once): no segment
            part.unlink(missing_ok=True)
            return
        final = part.with_name(info.filename)
        try:
            part.rename(final)
            info.bytes = final.stat().st_size
            info.sha256 = sha256_file(final)
            self._store.write_sidecar(info)
        except OSError:
            self._store.needs_repair()  # the next segment's prepare() gives it its sidecar
            raise
        self.finished.append(info)
        log.debug("recording: %s done, %d frames", info.filename, info.frames)

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        """Disk writes do not hang on a network; nothing to cut short."""
