"""Local MPEG-TS segments: complete and decodable, rolled on keyframes, within the quota."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from stream_helpers import FPS, H, W, decode_indices, make_image

from coachcam.errors import StreamError
from stream.encoder import LibavEncoder
from stream.outputs import MemoryOutput, Packet
from stream.recording import SegmentInfo, SegmentStore, SegmentWriter, sha256_file


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


@pytest.mark.parametrize("filler", [False, True])
def test_a_really_full_disk_never_stops_live_or_the_robot(
    tiny_tmpfs: Callable[..., Path],
    packets: list[Packet],
    filler: bool,
    wait_until: Callable[..., None],
) -> None:
    """The recording keeps within the disk by deleting its oldest segments; when something
    else fills the disk (``filler``), writes fail with ENOSPC and recording pauses and resumes,
    while live gets every packet and the caller never sees an error."""
    import shutil

    tiny_disk = tiny_tmpfs("400k", covered_by="the simulated full disk covers it")

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
                rec, n = s.recorder, 2 * len(packets)
                wait_until(
                    lambda rec=rec, n=n: rec.stats.sent + rec.stats.dropped >= n,
                    f"the recorder deals with the first {n} packets before the disk fills",
                )
                free = shutil.disk_usage(tiny_disk).free
                (tiny_disk / "other-program.bin").write_bytes(b"x" * max(0, free - 8192))
            for p in packets:
                for out in (s.recorder, s.network):
                    out.outputframe(p.data, p.keyframe, p.timestamp_us + rnd * 5_000_000)
    assert len(live.packets) == 4 * len(packets), "live got every packet"
    assert s.store is not None and s.store.deleted, "oldest segments were deleted"
    newest = s.store.segments()[-1]
    assert decode_indices(tiny_disk / newest.filename)[-1] == 149, "the newest video is kept"


def test_a_failed_sidecar_write_leaves_no_temp_file(tiny_tmpfs: Callable[..., Path]) -> None:
    tiny_disk = tiny_tmpfs("400k", covered_by="the simulated full disk covers it")
    store = SegmentStore(tiny_disk, "S", segment_s=1.0, min_free_bytes=0)
    store.prepare()
    import shutil

    (tiny_disk / "filler.bin").write_bytes(b"x" * shutil.disk_usage(tiny_disk).free)
    info = SegmentInfo("S-000001", "S", 1, 0, 1, 1, 1, "0" * 64 + "x" * 4000)
    with pytest.raises(OSError):
        store.write_sidecar(info)
    assert not list(tiny_disk.glob("*.tmp")), "the failed write removed its temp file"


def test_start_up_removes_debris_and_gives_an_orphan_segment_its_sidecar(
    tmp_path: Path, packets: list[Packet]
) -> None:
    store = SegmentStore(tmp_path, "20260101T000000.000", segment_s=1.0, min_free_bytes=0)
    record(store, packets[:60])
    first, second = store.segments()
    (tmp_path / f"{first.name}.json").unlink()  # the disk filled as its sidecar was written
    # what coachcam.atomic leaves (.NAME.RANDOM.tmp), and the fixed names older versions left
    (tmp_path / f".{first.name}.json.0badc0de.tmp").write_text('{"name": "trunc')
    (tmp_path / ".backfill-ledger.json.0badc0de.tmp").write_text("{")
    (tmp_path / f"{first.name}.json.tmp").write_text('{"name": "trunc')
    (tmp_path / "backfill-ledger.tmp").write_text("{")
    again = SegmentStore(tmp_path, "20260101T000100.000", segment_s=1.0, min_free_bytes=0)
    again.prepare()
    assert not list(tmp_path.glob("*.tmp")), "leftover temp files are removed at start-up"
    recovered, kept = again.segments()
    assert recovered.name == first.name and kept == second
    assert recovered.sha256 == first.sha256 and recovered.bytes == first.bytes
    assert recovered.start_us is None, "span unknown: backfill sends it, trusting no confirmation"
    assert decode_indices(tmp_path / recovered.filename) == list(range(30))


def test_quota_deletes_the_oldest_segment_first_sidecar_or_not(
    tmp_path: Path, packets: list[Packet]
) -> None:
    old = SegmentStore(tmp_path, "20260101T000000.000", segment_s=1.0, min_free_bytes=0)
    record(old, packets[:30])
    [orphan] = old.segments()
    (tmp_path / f"{orphan.name}.json").unlink()  # cannot be recovered: the disk is full
    newer = SegmentStore(tmp_path, "20260102T000000.000", segment_s=1.0, min_free_bytes=0)
    record(newer, packets[:60])
    size = orphan.bytes
    # a quota that holds two segments: one must go, and it must be the oldest
    newer.quota = 2 * size + size // 2
    newer.make_room(0)
    assert newer.deleted == [orphan.name]
    assert not (tmp_path / orphan.filename).exists()
    assert [s.session for s in newer.segments()] == ["20260102T000000.000"] * 2


def test_quota_orders_by_the_segments_time_not_by_name_text(
    tmp_path: Path, packets: list[Packet]
) -> None:
    """Sequence numbers past 999999 or another session's name must not reorder the queue."""
    a = SegmentStore(tmp_path, "20260101T000000.000", segment_s=1.0, min_free_bytes=0)
    a._seq = 999_999
    record(a, packets[:60])  # -> ...-1000000, ...-1000001 (7 digits)
    names = [s.name for s in a.segments()]
    assert [s.seq for s in a.segments()] == [1_000_000, 1_000_001], names
    b = SegmentStore(tmp_path, "20260101T000000.000", segment_s=1.0, min_free_bytes=0)
    b._seq = 999_997
    record(b, packets[:30])  # -> ...-999998: older than both
    assert [s.seq for s in b.segments()] == [999_998, 1_000_000, 1_000_001]
    b.quota = sum(s.bytes for s in b.segments()) - 1
    b.make_room(0)
    assert b.deleted == ["20260101T000000.000-999998"]


def test_below_the_floor_the_error_names_it(tmp_path: Path, packets: list[Packet]) -> None:
    store = SegmentStore(
        tmp_path, "S", segment_s=1.0, min_free_bytes=300_000_000, free_bytes=lambda _p: 120_000_000
    )
    with pytest.raises(StreamError, match=r"min_free_mb = 300.*free 120 MB"):
        record(store, packets[:5])


def test_a_full_disk_at_start_up_still_deletes_the_oldest_and_records(
    tiny_tmpfs: Callable[..., Path], packets: list[Packet]
) -> None:
    """The orphan's sidecar cannot be written (the disk is full): that must not stop the new
    run from deleting the oldest segments, the orphan first, and recording."""
    import shutil

    tiny_disk = tiny_tmpfs("400k", covered_by="the simulated full disk covers it")

    old = SegmentStore(tiny_disk, "20260101T000000.000", segment_s=1.0, min_free_bytes=0)
    record(old, packets[:60])
    orphan, second = old.segments()
    (tiny_disk / f"{orphan.name}.json").unlink()
    (tiny_disk / "other-program.bin").write_bytes(b"x" * shutil.disk_usage(tiny_disk).free)
    new = SegmentStore(tiny_disk, "20260102T000000.000", segment_s=1.0, min_free_bytes=0)
    w = SegmentWriter(new, bytes_per_s=orphan.bytes)  # room for 1.5 segments is asked for
    for p in packets[:30]:
        w.write(p)
    w.close()
    assert new.deleted[:2] == [orphan.name, second.name], "oldest first, sidecar or not"
    [seg] = new.segments()
    assert seg.session == "20260102T000000.000" and seg.frames == 30
    assert not list(tiny_disk.glob("*.tmp")) and not list(tiny_disk.glob("*.part"))
