"""What ``Streamer.status()`` says, against real servers: connected only when the server
accepted the publish; refused (with the server's reason when it gives one); unreachable; off;
and the recording ok or failing (read-only, disk full, below the free-space floor)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import BASE, Daemon, NotifySocket, is_status, recording
from stream_helpers import FPS, H, Nginx, Pacer, W, free_port, make_image

from coachcam.frame import Frame
from stream.config import StreamConfig
from stream.pipeline import Streamer, status_words


def cfg(tmp: Path, url: str, **kw: Any) -> StreamConfig:
    rec = {"dir": str(tmp / "rec"), "segment_s": 1.0, "min_free_mb": 0}
    rec.update(kw.pop("recording", {}))
    data: dict[str, Any] = {
        "enabled": True,
        "url": url,
        "bitrate_kbps": 400,
        "stall_timeout_s": 3.0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.3,
        "recording": rec,
        "privacy": {"enabled": False},
    }
    data.update(kw)
    return StreamConfig.model_validate(data)


def push_until(
    s: Streamer, cond: Callable[[dict[str, Any]], bool], pacer: Pacer, *, bound_s: float = 30.0
) -> dict[str, Any]:
    """Push real-time frames until ``cond(s.status())``; FAIL if that does not come within
    ``bound_s`` of frames (generous: a loaded 2-core machine is slow, never 10x slow)."""
    for _ in range(int(bound_s * FPS)):
        t = pacer.next()
        s.push(Frame(pacer.n, t, W, H, make_image(pacer.n)))
        st = s.status()
        if cond(st):
            return st
    raise AssertionError(f"status never got there; last: {s.status()}")


def back_after_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "back after" in r.getMessage()]


def test_no_url_is_off_and_recording_ok(tmp_path: Path) -> None:
    s = Streamer(cfg(tmp_path, ""), W, H, FPS)
    with s:
        st = push_until(s, lambda st: st["recording"] == "ok", Pacer())
    assert st["live"] == "off"
    assert status_words(st) == "live off (no URL), recording ok"
    disabled = Streamer(StreamConfig.model_validate({"enabled": False}), W, H, FPS)
    assert disabled.status()["live"] == "off"


def test_accepted_key_is_connected_and_confirmed_by_the_stat_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with Nginx(tmp_path / "ng", publish_keys=("good",)) as ng:
        s = Streamer(cfg(tmp_path, ng.url("good"), stat_url=ng.stat_url), W, H, FPS)
        with s:
            st = push_until(s, lambda st: st["confirmed_ago_s"] is not None, Pacer())
            assert st["live"] == "connected"
            assert status_words(st).startswith("live connected, confirmed ")
        assert ng.recordings()


def test_a_refused_key_is_refused_never_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """nginx-rtmp asks on_publish, gets 403 and closes the connection: no reason given."""
    caplog.set_level(logging.INFO)
    with Nginx(tmp_path / "ng", publish_keys=("good",)) as ng:
        s = Streamer(cfg(tmp_path, ng.url("wrong"), stat_url=ng.stat_url), W, H, FPS)
        with s:
            pacer = Pacer()
            st = push_until(s, lambda st: st["live"] == "refused", pacer)
            # keep going through a reconnect (10 s later: REFUSED_RETRY_S): still refused
            assert s.network is not None
            tries = s.network.stats.failures
            st = push_until(s, lambda st: s.network.stats.failures > tries, pacer)  # type: ignore[union-attr]
            assert st["live"] == "refused", st
            assert st["confirmed_ago_s"] is None
            assert "stream key" in st["live_reason"]
            assert status_words(st).startswith("live refused (")
        assert back_after_lines(caplog) == []
        assert s.network.stats.connects == 0, "a refused publish is no connection"
        assert not any(p.stat().st_size > 0 and "wrong" in p.name for p in ng.recordings())


def test_already_publishing_is_refused_with_the_servers_reason(tmp_path: Path) -> None:
    with Nginx(tmp_path / "ng", publish_keys=("good",)) as ng:
        first = Streamer(cfg(tmp_path / "a", ng.url("good")), W, H, FPS)
        second = Streamer(cfg(tmp_path / "b", ng.url("good")), W, H, FPS)
        with first, second:
            pacer = Pacer()
            push_until(first, lambda st: st["live"] == "connected", pacer)

            def both(st: dict[str, Any]) -> bool:
                t = pacer.next()
                first.push(Frame(pacer.n, t, W, H, make_image(pacer.n)))
                return bool(st["live"] == "refused")

            st = push_until(second, both, pacer)
            assert "Already publishing" in st["live_reason"], st
            assert first.status()["live"] == "connected"


def test_nothing_listening_is_unreachable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = Streamer(cfg(tmp_path, f"rtmp://127.0.0.1:{free_port()}/live/x"), W, H, FPS)
    with s:
        st = push_until(s, lambda st: st["live"] == "unreachable", Pacer())
    assert "connection refused" in st["live_reason"].lower()
    assert back_after_lines(caplog) == []
    assert status_words(st).startswith("live unreachable (")


@pytest.fixture()
def mounted(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Real tmpfs mounts (root only); skipped where mounting is not allowed."""
    mounts: list[Path] = []

    def mount(opts: str) -> Path:
        d = tmp_path / f"mnt{len(mounts)}"
        d.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True
        )
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounts.append(d)
        return d

    try:
        yield mount
    finally:
        for d in mounts:
            subprocess.run(["umount", "-l", str(d)], check=False)


def test_a_read_only_recordings_folder_is_recording_failing(
    tmp_path: Path, mounted: Callable[[str], Path]
) -> None:
    d = mounted("size=1m")
    (d / "rec").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
    s = Streamer(cfg(tmp_path, "", recording={"dir": str(d / "rec")}), W, H, FPS)
    with s:
        st = push_until(s, lambda st: st["recording"] == "failing", Pacer())
    assert st["recording_reason"] == "read-only"
    assert status_words(st) == "live off (no URL), recording failing: read-only"


def test_a_full_disk_is_recording_failing(tmp_path: Path, mounted: Callable[[str], Path]) -> None:
    d = mounted("size=400k")
    (d / "other-program.bin").write_bytes(b"x" * (400 * 1024 - 8192))
    s = Streamer(cfg(tmp_path, "", recording={"dir": str(d)}), W, H, FPS)
    with s:
        st = push_until(s, lambda st: st["recording"] == "failing", Pacer())
    assert st["recording_reason"] == "disk full", st


def test_below_the_free_space_floor_says_paused_and_names_the_floor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    s = Streamer(
        cfg(tmp_path, "", recording={"min_free_mb": 300}),
        W,
        H,
        FPS,
        free_bytes=lambda _p: 120_000_000,
    )
    with s:
        st = push_until(s, lambda st: st["recording"] == "paused", Pacer())
    reason = st["recording_reason"]
    assert "min_free_mb = 300" in reason and "free 120 MB" in reason, reason
    assert status_words(st) == f"live off (no URL), recording paused: {reason}"
    assert any("min_free_mb = 300" in r.getMessage() for r in caplog.records)


def test_the_daemons_status_line_says_refused_not_streaming(
    tmp_path: Path, notify: NotifySocket
) -> None:
    """``coachcam run`` publishing with a key the server refuses: STATUS= says so, the state
    file holds the stream's words, and the log never claims the stream came back."""
    with Nginx(tmp_path / "ng", publish_keys=("good",)) as ng:
        d = Daemon(tmp_path, notify, BASE + recording(tmp_path, ng.url("wrong")))
        try:
            notify.wait_for(lambda m: "READY=1" in m)
            msg = notify.wait_for(lambda m: is_status(m, "live refused ("))
            assert "recording ok" in msg and "streaming" not in msg, msg
            for _ in range(6):  # several reconnects, refused each time
                notify.wait_for(lambda m: "WATCHDOG=1" in m)
            rc = d.terminate()
        finally:
            d.kill()
    log = d.log()
    assert rc == 0, log
    assert "refused the publish" in log and "back after" not in log, log
