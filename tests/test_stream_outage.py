"""Outages against real servers: the ingest stops, or stalls (SIGSTOP), mid-stream.

Every frame carries its index as a barcode, so the checks decode what the servers hold: the
local recording has every frame once; live resumes after the outage with no frame twice; the
segments backfilled by HTTP PUT to a WebDAV server (a second nginx) fill exactly the gap.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from stream_helpers import FPS, H, Nginx, Pacer, W, decode_indices, make_image

from coachcam.frame import Frame
from stream.config import StreamConfig
from stream.pipeline import Streamer


def outage_cfg(tmp: Path, ng: Nginx, dav: Nginx) -> StreamConfig:
    return StreamConfig.model_validate(
        {
            "enabled": True,
            "url": ng.url("room12"),
            "stat_url": ng.stat_url,
            "bitrate_kbps": 600,
            "stall_timeout_s": 1.5,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "recording": {"dir": str(tmp / "rec"), "segment_s": 1.0, "min_free_mb": 0},
            "backfill": {"url": dav.dav_url, "settle_s": 2.0, "interval_s": 0.5},
            "privacy": {"enabled": False},
        }
    )


def push(s: Streamer, frames: range, pacer: Pacer) -> None:
    for i in frames:
        s.push(Frame(i, pacer.next(), W, H, make_image(i)))


def check(
    s: Streamer, ng: Nginx, dav: Nginx, total: int, *, stalled: bool = False
) -> tuple[list[int], list[int]]:
    """The common assertions; returns (live indices, backfilled indices)."""
    assert s.store is not None and s.backfill is not None
    s.backfill.run_once(final=True)
    segs = s.store.segments()
    local = [i for seg in segs for i in decode_indices(s.store.dir / seg.filename)]
    assert local == list(range(total)), "the local recording holds every frame, once, in order"

    live: list[int] = []
    for flv in ng.recordings():
        live += decode_indices(flv)
    assert len(live) == len(set(live)), "no frame reaches the live endpoint twice"

    got = sorted(dav.www.rglob("*.ts"))
    back: list[int] = []
    for ts in got:
        sums = ts.with_name(ts.name + ".sha256").read_text()
        assert sums == f"{hashlib.sha256(ts.read_bytes()).hexdigest()}  {ts.name}\n"
        back += decode_indices(ts)
    assert len(got) == len({p.name for p in got}), "each segment is delivered once"
    missing = set(range(total)) - set(live)
    assert missing <= set(back), "backfill delivers every frame the live endpoint lacks"
    # Only segments touching unconfirmed time go: at most the gap plus the segments around
    # its ends and the confirmation lag (segments are 1-2 s here, the stat poll 0.5 s, but a
    # loaded machine delays the poll: once seen, 2-3 s at each end).
    # A stalled server may still read its buffers after we gave up on it: that was never
    # confirmed, so it is sent again, rightly; the bound holds for a server that went away.
    if not stalled:
        assert len(back) <= len(missing) + 8 * FPS, "backfill re-sent what the endpoint had"
    return live, back


def test_server_down_then_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with Nginx(tmp_path / "ng") as ng, Nginx(tmp_path / "dav", dav=True) as dav:
        s = Streamer(outage_cfg(tmp_path, ng, dav), W, H, FPS)
        pacer = Pacer()
        with s:
            push(s, range(0, 75), pacer)
            ng.stop()
            push(s, range(75, 165), pacer)  # 3 s with the server down
            ng.start()
            push(s, range(165, 300), pacer)
        live, back = check(s, ng, dav, 300)
        assert s.network is not None and s.network.stats.failures >= 1
        assert max(live) == 299, "live resumed after the server came back"
        assert not set(range(80, 160)) & set(live), "nothing was live while the server was down"
        assert set(range(80, 160)) <= set(back)
        assert s.status()["live"] == "connected"
        said = [r.getMessage() for r in caplog.records]
        backs = [m for m in said if m.startswith("live: back after")]
        deads = [m for m in said if m.startswith("live: output dead")]
        assert 1 <= len(backs) <= len(deads), "'back after' once per outage, when accepted again"


def test_stalled_server_is_detected(tmp_path: Path) -> None:
    with Nginx(tmp_path / "ng") as ng, Nginx(tmp_path / "dav", dav=True) as dav:
        s = Streamer(outage_cfg(tmp_path, ng, dav), W, H, FPS)
        pacer = Pacer()
        with s:
            push(s, range(0, 60), pacer)
            ng.pause()  # SIGSTOP: connections stay open, nothing is read, no error
            push(s, range(60, 180), pacer)
            ng.resume()
            push(s, range(180, 300), pacer)
        assert s.network is not None and s.network.stats.stalls >= 1
        live, _ = check(s, ng, dav, 300, stalled=True)
        assert max(live) == 299


@pytest.mark.slow
def test_twenty_second_outage_resumes_within_two_seconds(tmp_path: Path) -> None:
    with Nginx(tmp_path / "ng") as ng, Nginx(tmp_path / "dav", dav=True) as dav:
        s = Streamer(outage_cfg(tmp_path, ng, dav), W, H, FPS)
        pacer = Pacer()
        with s:
            push(s, range(0, 150), pacer)
            ng.stop()
            push(s, range(150, 750), pacer)
            ng.start()
            push(s, range(750, 900), pacer)
        live, back = check(s, ng, dav, 900)
        assert set(range(160, 740)) <= set(back)
        resumed = min(i for i in live if i >= 750)
        lag_s = (resumed - 750) / FPS
        print(f"live resumed {lag_s:.2f} s after the server returned")
        assert lag_s <= 2.0, "the issue asks for live within 2 s of the server's return"
