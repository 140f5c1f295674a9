"""Backfill by HTTP PUT to a real WebDAV server (nginx dav): judged, resumable, checksummed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from stream_helpers import FPS, H, Nginx, W, make_image

from stream.backfill import Backfiller, HttpPutTarget
from stream.confirm import covered, merge
from stream.encoder import LibavEncoder
from stream.outputs import MemoryOutput
from stream.recording import SegmentInfo, SegmentStore, SegmentWriter


@pytest.fixture()
def store(tmp_path: Path) -> SegmentStore:
    out = MemoryOutput()
    enc = LibavEncoder(W, H, FPS, bitrate_kbps=400, outputs=[out])
    for i in range(90):
        enc.encode(make_image(i), i / FPS)
    enc.close()
    st = SegmentStore(tmp_path / "rec", "S", segment_s=1.0, min_free_bytes=0)
    w = SegmentWriter(st, bytes_per_s=0)
    for p in out.packets:
        w.write(p)
    w.close()
    return st


def seg(start: float, end: float, session: str = "S") -> SegmentInfo:
    return SegmentInfo("x", session, 1, int(start * 1e6), int(end * 1e6), 30, 1, "")


def test_judgement() -> None:
    st = SegmentStore(Path("/nonexistent"), "S")
    bf = Backfiller(
        st, HttpPutTarget("http://unused/"), confirmed=list, horizon_us=lambda: 0, settle_s=2.0
    )
    spans = [(0, 3_000_000), (6_000_000, 9_000_000)]
    assert bf.judge(seg(0, 1), spans, horizon=10_000_000) == "live"
    assert bf.judge(seg(2, 4), spans, horizon=10_000_000) == "upload"
    assert bf.judge(seg(4, 5), spans, horizon=10_000_000) == "upload"
    assert bf.judge(seg(7, 8.5), spans, horizon=10_000_000) == "wait", "not settled yet"
    assert bf.judge(seg(0, 1, session="OLD"), spans, horizon=10_000_000) == "upload"
    assert merge([(5, 9), (0, 3), (2, 6)]) == [(0, 9)]
    assert covered((1, 8), [(0, 4), (4, 9)]) and not covered((1, 8), [(0, 4), (5, 9)])


def test_unconfirmed_segments_are_put_once_with_checksums(store: SegmentStore, tmp_path: Path):
    segs = store.segments()
    assert len(segs) == 3
    confirmed = [(0, segs[0].end_us)]  # the endpoint confirmed only the first segment
    with Nginx(tmp_path / "dav", dav=True) as dav:
        target = HttpPutTarget(dav.dav_url)
        bf = Backfiller(store, target, confirmed=lambda: confirmed, horizon_us=lambda: None)
        assert bf.run_once(final=True) == [segs[1].name, segs[2].name]
        for s in segs[1:]:
            body = (dav.www / "S" / s.filename).read_bytes()
            assert hashlib.sha256(body).hexdigest() == s.sha256
            sums = (dav.www / "S" / f"{s.filename}.sha256").read_text()
            assert sums == f"{s.sha256}  {s.filename}\n"
        assert not (dav.www / "S" / segs[0].filename).exists()
        sent = target.sent_bytes

        # a restart reads the ledger: nothing is sent again
        again = Backfiller(store, target, confirmed=lambda: confirmed, horizon_us=lambda: None)
        assert again.run_once(final=True) == [] and target.sent_bytes == sent

        # the ledger lost (crash between PUT and ledger write): the server's copy is recognised
        again.ledger_path.unlink()
        fresh = Backfiller(store, target, confirmed=lambda: confirmed, horizon_us=lambda: None)
        fresh.run_once(final=True)
        assert target.sent_bytes == sent


def test_server_down_then_up_delivers_later(store: SegmentStore, tmp_path: Path) -> None:
    dav = Nginx(tmp_path / "dav", dav=True)
    target = HttpPutTarget(dav.dav_url, timeout=2.0)
    bf = Backfiller(store, target, confirmed=list, horizon_us=lambda: None)
    assert bf.run_once(final=True) == [] and bf.errors == 1
    assert bf.ledger() == {}
    with dav:
        assert len(bf.run_once(final=True)) == 3
        assert len(list((dav.www / "S").glob("*.ts"))) == 3


def test_basic_auth_from_a_credential(store: SegmentStore, tmp_path: Path) -> None:
    from stream.secrets import read_secret

    cred = tmp_path / "dav-cred"
    cred.write_text("coach:pa55-w0rd-x\n")
    with Nginx(tmp_path / "dav", dav=True, dav_user=("coach", "pa55-w0rd-x")) as dav:
        anonymous = Backfiller(
            store, HttpPutTarget(dav.dav_url), confirmed=list, horizon_us=lambda: None
        )
        assert anonymous.run_once(final=True) == [] and anonymous.errors == 1
        target = HttpPutTarget(dav.dav_url, auth=read_secret(str(cred)))
        bf = Backfiller(store, target, confirmed=list, horizon_us=lambda: None)
        assert len(bf.run_once(final=True)) == 3
