"""srt:// and rtsp:// publishing, each received by Debian's ffmpeg listening on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from stream_helpers import FPS, H, Pacer, W, decode_indices, make_image, need

from coachcam.errors import StreamError
from coachcam.frame import Frame
from stream.config import StreamConfig
from stream.pipeline import Streamer
from stream.publish import publisher_for_url


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listen(args: list[str], out: Path) -> subprocess.Popen[bytes]:
    ffmpeg = need("ffmpeg")
    return subprocess.Popen(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args, "-c", "copy", str(out)],
        stdin=subprocess.DEVNULL,
    )


def publish(tmp: Path, url: str, n: int) -> Streamer:
    cfg = StreamConfig.model_validate(
        {
            "enabled": True,
            "url": url,
            "bitrate_kbps": 600,
            "recording": {"dir": str(tmp / "rec"), "segment_s": 1.0, "min_free_mb": 0},
            "privacy": {"enabled": False},
        }
    )
    s = Streamer(cfg, W, H, FPS)
    pacer = Pacer()
    with s:
        for i in range(n):
            s.push(Frame(i, pacer.next(), W, H, make_image(i)))
    return s


def wait_listening(proc: subprocess.Popen[bytes], port: int, udp: bool) -> None:
    """ffmpeg listens within a moment of starting; wait for that (polling ``ss``: a listener
    has no event to wait on), and fail if it does not within 10 s or ffmpeg exits."""
    deadline = time.monotonic() + 10.0
    while True:
        cmd = ["ss", "-lun" if udp else "-ltn"]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        if f":{port} " in out:
            return
        assert proc.poll() is None, "ffmpeg listener exited"
        if time.monotonic() > deadline:
            pytest.fail(f"ffmpeg not listening on port {port} within 10 s", pytrace=False)
        time.sleep(0.02)


def test_srt_is_received_by_an_ffmpeg_listener(tmp_path: Path) -> None:
    port = udp_port()
    out = tmp_path / "srt.ts"
    proc = listen(["-f", "mpegts", "-i", f"srt://127.0.0.1:{port}?mode=listener"], out)
    try:
        wait_listening(proc, port, udp=True)
        s = publish(tmp_path, f"srt://127.0.0.1:{port}", 60)
        proc.wait(10)
    finally:
        proc.kill()
    assert s.network is not None and s.network.stats.failures == 0
    assert decode_indices(out) == list(range(60))


def test_srt_with_a_secret_is_refused_rather_than_shown_in_ps() -> None:
    with pytest.raises(StreamError, match="ps"):
        publisher_for_url("srt://127.0.0.1:9000?passphrase=hunter2hunter2", secret="hunter2hunter2")


def test_rtsp_is_received_by_an_ffmpeg_listener(tmp_path: Path) -> None:
    port = tcp_port()
    out = tmp_path / "rtsp.ts"
    args = ["-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{port}/live/cam"]
    proc = listen(args, out)
    try:
        wait_listening(proc, port, udp=False)
        s = publish(tmp_path, f"rtsp://127.0.0.1:{port}/live/cam", 60)
        proc.wait(10)
    finally:
        proc.kill()
    assert s.network is not None and s.network.stats.failures == 0
    got = decode_indices(out)
    assert got == list(range(60))
