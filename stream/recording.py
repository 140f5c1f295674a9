"""Local recording: MPEG-TS segments in the state directory, within a disk quota.

Every encoded packet is written, whatever the network does. A segment starts on a keyframe
once ``segment_s`` has passed, is written as ``NAME.ts.part`` and renamed to ``NAME.ts`` with a
``NAME.json`` sidecar (stream-time span, frame count, sha256) when complete, so readers never
see a half-written file. Before a segment starts and on every keyframe, the oldest complete
segments are deleted until the quota and the free-space floor both hold; if nothing is left
to delete, writing stops with a ``StreamError`` (the output retries later) rather than filling
the disk.
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

from coachcam.errors import StreamError
from stream.h264 import mux_packet
from stream.outputs import Packet

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
        self.lock = threading.Lock()
        self.deleted: list[str] = []

    def prepare(self) -> None:
        """Create the directory and finish segments a crash left as ``.part`` (first use)."""
        if self._ready:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for part in sorted(self.dir.glob("*.ts.part")):
            name = part.name[: -len(".ts.part")]
            final = self.dir / f"{name}.ts"
            part.rename(final)
            session, _, seq = name.rpartition("-")
            info = SegmentInfo(
                name,
                session,
                int(seq or 0),
                None,
                None,
                0,
                final.stat().st_size,
                sha256_file(final),
            )
            self.write_sidecar(info)
            log.warning("recording: recovered unfinished segment %s", final.name)
        self._ready = True

    def next_name(self) -> tuple[str, int]:
        self._seq += 1
        return f"{self.session}-{self._seq:06d}", self._seq

    def write_sidecar(self, info: SegmentInfo) -> None:
        tmp = self.dir / f"{info.name}.json.tmp"
        tmp.write_text(json.dumps(asdict(info), indent=1))
        tmp.replace(self.dir / f"{info.name}.json")

    def segments(self) -> list[SegmentInfo]:
        """Complete segments, oldest first."""
        out = []
        for side in sorted(self.dir.glob("*.json")):
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

    def delete(self, info: SegmentInfo) -> None:
        for suffix in (".ts", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{info.name}{suffix}").unlink()
        self.deleted.append(info.name)

    def make_room(self, need: int, keep: str = "") -> None:
        """Delete oldest complete segments until ``need`` more bytes fit; else ``StreamError``."""
        with self.lock:
            while True:  # each pass deletes one segment or returns/raises
                used = self.used_bytes()
                free = self._free(self.dir)
                if used + need <= self.quota and free - need >= self.min_free:
                    return
                victims = [s for s in self.segments() if s.name != keep]
                if not victims:
                    raise StreamError(
                        f"recording: no room in {self.dir} (used {used} B of quota "
                        f"{self.quota} B, {free} B free); not writing"
                    )
                log.warning("recording: deleting oldest segment %s for space", victims[0].name)
                self.delete(victims[0])


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
        part.rename(final)
        info.bytes = final.stat().st_size
        info.sha256 = sha256_file(final)
        self._store.write_sidecar(info)
        self.finished.append(info)
        log.debug("recording: %s done, %d frames", info.filename, info.frames)

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        """Disk writes do not hang on a network; nothing to cut short."""
