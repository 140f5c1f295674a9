"""Publishing to a real nginx-rtmp on 127.0.0.1: rtmp, rtmps with a verified certificate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from stream_helpers import (
    FPS,
    H,
    Nginx,
    Pacer,
    W,
    decode_indices,
    make_ca_and_cert,
    make_image,
    self_signed,
)

from coachcam.errors import StreamError
from coachcam.frame import Frame
from stream.config import StreamConfig
from stream.outputs import Packet
from stream.pipeline import Streamer
from stream.publish import RelayedPublisher


def stream_cfg(tmp: Path, url: str, **kw: object) -> StreamConfig:
    data: dict = {
        "enabled": True,
        "url": url,
        "bitrate_kbps": 600,
        "stall_timeout_s": 1.5,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "recording": {"dir": str(tmp / "rec"), "segment_s": 1.0, "min_free_mb": 0},
        "privacy": {"enabled": False},
    }
    data.update(kw)
    return StreamConfig.model_validate(data)


def push(streamer: Streamer, first: int, n: int, pacer: Pacer) -> None:
    for i in range(first, first + n):
        t = pacer.next()
        streamer.push(Frame(i, t, W, H, make_image(i)))


def test_rtmp_server_receives_every_frame_decodable(tmp_path: Path) -> None:
    with Nginx(tmp_path / "ng") as ng:
        cfg = stream_cfg(tmp_path, ng.url("room12"))
        s = Streamer(cfg, W, H, FPS)
        with s:
            push(s, 0, 45, Pacer())
        assert s.network is not None and s.network.stats.failures == 0
    [flv] = ng.recordings()
    assert decode_indices(flv) == list(range(45))


def test_rtmps_verifies_the_server_certificate(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    with Nginx(tmp_path / "ng", tls=(cert, key)) as ng:
        url = f"rtmps://127.0.0.1:{ng.tls_port}/live/secure"
        s = Streamer(stream_cfg(tmp_path, url, ca_file=str(ca)), W, H, FPS)
        with s:
            push(s, 0, 30, Pacer())
        assert s.network is not None and s.network.stats.failures == 0
        [flv] = ng.recordings()
        assert decode_indices(flv) == list(range(30))


def refused_unverified(pub: RelayedPublisher, wait_until: Callable[..., None]) -> None:
    """The relay's TLS check fails either on the first write or while the child connects;
    then the next write says so. Waits on that (not a fixed sleep) and fails if neither."""
    kf = _keyframe()
    with pytest.raises(StreamError, match="not verified"):
        pub.write(kf)
        relay, proc = pub._relay, pub._proc
        assert relay is not None and proc is not None
        wait_until(
            lambda: relay.error is not None or proc.poll() is not None,
            "the relay gives up on the server's certificate",
        )
        pub.write(kf)


def test_rtmps_refuses_a_self_signed_server(
    tmp_path: Path, wait_until: Callable[..., None]
) -> None:
    ca, _, _ = make_ca_and_cert(tmp_path)
    cert, key = self_signed(tmp_path)
    with Nginx(tmp_path / "ng", tls=(cert, key)) as ng:
        url = f"rtmps://127.0.0.1:{ng.tls_port}/live/secure"
        pub = RelayedPublisher(url, ca_file=str(ca), timeout=2.0)
        refused_unverified(pub, wait_until)
        pub.close()
        assert ng.recordings() == []


def _keyframe() -> Packet:
    from stream.encoder import LibavEncoder
    from stream.outputs import MemoryOutput

    out = MemoryOutput()
    enc = LibavEncoder(W, H, FPS, outputs=[out])
    enc.encode(make_image(0), 0.0)
    enc.close()
    return out.packets[0]


def test_rtmps_refuses_a_certificate_for_another_host(
    tmp_path: Path, wait_until: Callable[..., None]
) -> None:
    """Signed by the trusted CA, but for 127.0.0.1, while the URL names localhost."""
    ca, cert, key = make_ca_and_cert(tmp_path)
    with Nginx(tmp_path / "ng", tls=(cert, key)) as ng:
        pub = RelayedPublisher(f"rtmps://localhost:{ng.tls_port}/live/x", ca_file=str(ca))
        refused_unverified(pub, wait_until)
        pub.close()
        assert ng.recordings() == []
