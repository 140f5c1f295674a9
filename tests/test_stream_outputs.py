"""Encoder and ThreadedOutput with fakes: keyframes, resume on keyframe, overflow, stalls."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from stream_helpers import FPS, H, W, make_image

from coachcam.clock import FakeClock
from stream.encoder import LibavEncoder
from stream.h264 import IDR, PPS, SPS, nal_types
from stream.outputs import MemoryOutput, Packet, ThreadedOutput
from stream.publish import MemoryPublisher


@pytest.fixture(scope="module")
def packets() -> list[Packet]:
    out = MemoryOutput()
    enc = LibavEncoder(W, H, FPS, bitrate_kbps=500, keyframe_interval_s=1.0, outputs=[out])
    for i in range(95):
        enc.encode(make_image(i), 100.0 + i / FPS)
    enc.close()
    return out.packets


def test_keyframe_every_second_with_sps_pps_and_capture_timestamps(packets: list[Packet]) -> None:
    assert len(packets) == 95
    keys = [i for i, p in enumerate(packets) if p.keyframe]
    assert keys == [0, 30, 60, 90]
    for i in keys:
        t = nal_types(packets[i].data)
        assert SPS in t and PPS in t and IDR in t
    assert [p.timestamp_us for p in packets[:3]] == [0, 33333, 66667]


Feed = Callable[[ThreadedOutput, list[Packet]], None]


@pytest.fixture
def feed(wait_until: Callable[..., None]) -> Feed:
    """Start the output, hand it ``packets``, and wait until its writer has dealt with every
    one (sent or dropped); the test fails if it has not within 10 s."""

    def feed(out: ThreadedOutput, packets: list[Packet]) -> None:
        out.start()
        for p in packets:
            out.outputframe(p.data, p.keyframe, p.timestamp_us)
        wait_until(
            lambda: out.stats.sent + out.stats.dropped >= len(packets) and out._q.empty(),
            lambda: (
                f"the writer deals with all {len(packets)} packets "
                f"(sent {out.stats.sent}, dropped {out.stats.dropped}, queued {out._q.qsize()})"
            ),
        )

    return feed


@pytest.fixture
def run_output(feed: Feed) -> Feed:
    """``feed``, then close the output."""

    def run_output(out: ThreadedOutput, packets: list[Packet]) -> None:
        feed(out, packets)
        out.close()

    return run_output


def test_a_broken_output_reconnects_and_resumes_on_a_keyframe(
    packets: list[Packet], run_output: Feed
) -> None:
    made: list[MemoryPublisher] = []

    def opener() -> MemoryPublisher:
        made.append(MemoryPublisher(fail_after=40 if not made else None))
        return made[-1]

    out = ThreadedOutput("t", opener, clock=FakeClock(), backoff_min=0.0, backoff_max=0.0)
    run_output(out, packets)
    assert len(made) == 2 and made[0].closed
    first, second = made
    assert [p.timestamp_us for p in first.packets] == [p.timestamp_us for p in packets[:40]]
    assert second.packets[0].keyframe and second.packets[0].timestamp_us == packets[60].timestamp_us
    assert [p.timestamp_us for p in second.packets] == [p.timestamp_us for p in packets[60:]]
    assert out.stats.failures == 1 and out.stats.connects == 2
    s = out.sessions()
    assert [(x.first_us, x.last_sent_us) for x in s] == [
        (0, packets[39].timestamp_us),
        (packets[60].timestamp_us, packets[-1].timestamp_us),
    ]


def test_outputframe_never_blocks_and_drops_to_the_next_keyframe(packets: list[Packet]) -> None:
    gate = threading.Event()

    class Slow(MemoryPublisher):
        def write(self, packet: Packet) -> None:
            gate.wait(5)
            super().write(packet)

    pub = Slow()
    out = ThreadedOutput("t", lambda: pub, clock=FakeClock(), queue_packets=10)
    out.start()
    for p in packets:  # the writer is stuck: this must still return at once
        out.outputframe(p.data, p.keyframe, p.timestamp_us)
    gate.set()
    out.close()
    got = [p.timestamp_us for p in pub.packets]
    assert out.stats.dropped > 0
    # what was written is a run from a keyframe, then whole runs from later keyframes
    assert pub.packets[0].keyframe
    idx = [next(i for i, p in enumerate(packets) if p.timestamp_us == t) for t in got]
    for a, b in itertools.pairwise(idx):
        assert b == a + 1 or packets[b].keyframe


class FakeConfirmer:
    def __init__(self) -> None:
        self.until: int | None = None

    def received_until_us(self) -> int | None:
        return self.until


def test_an_endpoint_that_confirms_nothing_new_is_stalled(
    packets: list[Packet], feed: Feed
) -> None:
    clock = FakeClock()
    conf = FakeConfirmer()
    pub = MemoryPublisher()
    out = ThreadedOutput(
        "t", lambda: pub, clock=clock, confirmer=conf, stall_timeout=2.0, poll_s=3600
    )
    feed(out, packets[:30])
    conf.until = packets[10].timestamp_us
    out.poll()  # progress
    clock.advance(1.5)
    out.poll()
    assert out.stats.stalls == 0
    clock.advance(1.0)  # 2.5 s without progress while packets 11..29 are unconfirmed
    out.poll()
    assert out.stats.stalls == 1
    assert out.confirmed() == [(0, packets[10].timestamp_us)]
    out.close()


def test_without_a_confirmer_only_what_is_well_past_counts(
    packets: list[Packet], run_output: Feed
) -> None:
    pub = MemoryPublisher()
    out = ThreadedOutput("t", lambda: pub, clock=FakeClock(), stall_timeout=1.0)
    run_output(out, packets)
    assert out.confirmed() == [(0, packets[-1].timestamp_us - 1_000_000)]


def test_stream_sink_applies_privacy_before_the_encoder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The frame loop's sink: the encoder (feeding live and recording) sees blurred frames."""
    import numpy as np

    from coachcam.frame import Frame
    from stream.config import StreamConfig
    from stream.pipeline import Streamer, StreamSink
    from tracker.types import Pose

    kp = np.zeros((33, 3))
    kp[:11] = (W / 2, H / 2, 1.0)
    student = Pose(kp)
    seen: list[np.ndarray] = []

    class Spy:
        def encode(self, image: np.ndarray, t_capture: float) -> None:
            seen.append(image)

        def close(self) -> None:
            pass

        def restart(self) -> None:
            pass

    cfg = StreamConfig.model_validate({"recording": {"dir": str(tmp_path), "min_free_mb": 0}})
    streamer = Streamer(cfg, W, H, FPS, encoder_class=lambda *a, **k: Spy())
    sink = StreamSink(streamer, lambda tracker, frame: ([student], None))
    img = make_image(3)
    img[H // 2 - 20 : H // 2 + 20, W // 2 - 20 : W // 2 + 20] = np.arange(40)[:, None, None] * 6
    sink.write(Frame(0, 0.0, W, H, img), aim=None, tracker=None)
    sink.close()
    assert len(seen) == 1 and not np.array_equal(seen[0], img)


def test_close_leaves_a_sink_stuck_in_a_write_to_its_writer(packets: list[Packet]) -> None:
    """Closing the sink under a write in progress raced it (an empty recording segment)."""
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    class Stuck(MemoryPublisher):
        def write(self, packet: Packet) -> None:
            entered.set()
            release.wait(10)
            order.append("write")
            super().write(packet)

        def abort(self) -> None:
            order.append("abort")

        def close(self) -> None:
            order.append("close")
            super().close()
            closed.set()

    pub = Stuck()
    out = ThreadedOutput("t", lambda: pub, clock=FakeClock())
    out.start()
    out.outputframe(packets[0].data, True, packets[0].timestamp_us)
    assert entered.wait(5)
    out.close(timeout=0.05)
    assert order == ["abort"], "close() returned without closing the sink under the write"
    release.set()
    assert closed.wait(5)
    assert order == ["abort", "write", "close"] and len(pub.packets) == 1


def test_a_refused_publish_says_so_and_is_retried_slowly(
    packets: list[Packet], feed: Feed, run_output: Feed
) -> None:
    """Each try at a refusing server starts a publishing process: not once a second."""
    from stream.outputs import REFUSED_RETRY_S, PublishRefused

    clock = FakeClock()
    made: list[MemoryPublisher] = []

    class Refusing(MemoryPublisher):
        def write(self, packet: Packet) -> None:
            raise PublishRefused("rtmp://x/live/… refused the publish: wrong key?", "wrong key?")

    def opener() -> MemoryPublisher:
        made.append(Refusing())
        return made[-1]

    out = ThreadedOutput("t", opener, clock=clock, backoff_min=0.0, backoff_max=0.0)
    feed(out, packets)
    assert len(made) == 1, "no second try before REFUSED_RETRY_S"
    assert (out.state, out.reason) == ("refused", "wrong key?")
    clock.advance(REFUSED_RETRY_S)
    run_output(out, packets)
    assert len(made) == 2 and out.stats.connects == 0 and out.state == "refused"
