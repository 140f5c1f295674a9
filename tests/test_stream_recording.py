"""Local MPEG-TS segments: complete and decodable, rolled on keyframes, within the quota."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from stream_helpers import FPS, H, W, decode_indices, make_image

from coachcam.errors import StreamError
from stream.encoder import LibavEncoder
from stream.outputs import MemoryOutput, Packet, ThreadedOutput
from stream.recording import SegmentStore, SegmentWriter, sha256_file


@pytest.fixture(scope="module")
def packets() -> list[Packet]:
    out = MemoryOutput()
    enc = LibavEncoder(W, H, FPS, bitrate_kbps=400, outputs=[out])
    for i in range(150):
        enc.encode(make_image(i), i / FPS)
    enc.close()
    return out.packets


def record(store: SegmentStore, packets: list[Packet]) -> SegmentWriter:
    w = SegmentWriter(store, bytes_per_s=0)
    for p in packets:
        w.write(p)
    w.close()
    return w


def test_segments_hold_every_frame_once_with_checksums(tmp_path: Path, packets: list[Packet]):
    store = SegmentStore(tmp_path, "S1", segment_s=1.0, min_free_bytes=0)
    record(store, packets)
    segs = store.segments()
    assert [s.seq for s in segs] == [1, 2, 3, 4, 5]
    got = [i for s in segs for i in decode_indices(tmp_path / s.filename)]
    assert got == list(range(150))
    for s in segs:
        assert s.sha256 == sha256_file(tmp_path / s.filename)
        assert s.frames == 30 and s.start_us is not None and s.end_us is not None
    assert not list(tmp_path.glob("*.part"))


def test_quota_deletes_oldest_first_and_is_never_exceeded(tmp_path: Path, packets: list[Packet]):
    one = SegmentStore(tmp_path / "probe", "P", segment_s=1.0, min_free_bytes=0)
    record(one, packets[:30])
    seg_size = one.segments()[0].bytes
    quota = int(seg_size * 2.6)
    store = SegmentStore(tmp_path / "q", "S", segment_s=1.0, quota_bytes=quota, min_free_bytes=0)
    w = SegmentWriter(store, bytes_per_s=0)
    for p in packets:
        w.write(p)
        assert store.used_bytes() <= quota + seg_size // 2  # only the open segment may overshoot
    w.close()
    names = [s.seq for s in store.segments()]
    assert names == sorted(names) and names[-1] == 5 and 1 not in names
    assert store.deleted[0].endswith("-000001")


def test_a_full_disk_stops_writing_instead_of_filling_it(tmp_path: Path, packets: list[Packet]):
    free = {"bytes": 10**9}
    store = SegmentStore(
        tmp_path, "S", segment_s=1.0, min_free_bytes=10**6, free_bytes=lambda _p: free["bytes"]
    )
    w = SegmentWriter(store, bytes_per_s=0)
    for p in packets[:60]:
        w.write(p)
    free["bytes"] = 10**5  # the disk filled up from elsewhere
    with pytest.raises(StreamError, match="no room"):
        for p in packets[60:]:
            w.write(p)
    w.close()
    assert store.deleted, "older segments went first"
    assert len(store.segments()) <= 1


def test_a_segment_left_by_a_crash_is_recovered(tmp_path: Path, packets: list[Packet]):
    store = SegmentStore(tmp_path, "S", segment_s=1.0, min_free_bytes=0)
    w = SegmentWriter(store, bytes_per_s=0)
    for p in packets[:20]:
        w.write(p)
    # no close: the process died; a new run finds the .part
    assert list(tmp_path.glob("*.ts.part"))
    store2 = SegmentStore(tmp_path, "T", segment_s=1.0, min_free_bytes=0)
    store2.prepare()
    [seg] = store2.segments()
    assert seg.start_us is None and seg.session == "S"
    meta = json.loads((tmp_path / f"{seg.name}.json").read_text())
    assert meta["sha256"] == sha256_file(tmp_path / seg.filename)


@pytest.fixture()
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 400 KiB tmpfs (root only); skipped where mounting is not allowed."""
    import subprocess

    d = tmp_path / "tiny"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(d)],
                       capture_output=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated full disk covers it")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def settle(out: ThreadedOutput, n: int) -> None:
    """Wait (bounded) until the output's writer has dealt with ``n`` packets."""
    ev = threading.Event()
    for _ in range(500):
        if out.stats.sent + out.stats.dropped >= n:
            return
        ev.wait(0.01)


@pytest.mark.parametrize("filler", [False, True])
def test_a_really_full_disk_never_stops_live_or_the_robot(
    tiny_disk: Path, packets: list[Packet], filler: bool
) -> None:
    """The recording keeps within the disk by deleting its oldest segments; when something
    else fills the disk (``filler``), writes fail with ENOSPC and recording pauses and resumes,
    while live gets every packet and the caller never sees an error."""
    import shutil

    from coachcam.clock import FakeClock
    from stream.config import StreamConfig
    from stream.pipeline import Streamer
    from stream.publish import MemoryPublisher

    live = MemoryPublisher()
    cfg = StreamConfig.model_validate(
        {
            "enabled": True,
            "bitrate_kbps": 400,
            "reconnect_min_s": 0.01,
            "reconnect_max_s": 0.01,
            "queue_packets": 1000,  # this test pushes 20 s of video at once
            "recording": {
                "dir": str(tiny_disk),
                "segment_s": 1.0,
                "min_free_mb": 0,
                "queue_packets": 1000,
            },
        }
    )
    s = Streamer(cfg, W, H, FPS, clock=FakeClock(), publisher=lambda: live)
    with s:
        assert s.recorder is not None and s.network is not None
        for rnd in range(4):  # 20 s of video, ~4x what the disk holds
            if filler and rnd == 2:
                settle(s.recorder, 2 * len(packets))
                free = shutil.disk_usage(tiny_disk).free
                (tiny_disk / "other-program.bin").write_bytes(b"x" * max(0, free - 8192))
            for p in packets:
                for out in (s.recorder, s.network):
                    out.outputframe(p.data, p.keyframe, p.timestamp_us + rnd * 5_000_000)
    assert len(live.packets) == 4 * len(packets), "live got every packet"
    assert s.store is not None and s.store.deleted, "oldest segments were deleted"
    newest = s.store.segments()[-1]
    assert decode_indices(tiny_disk / newest.filename)[-1] == 149, "the newest video is kept"
