"""Stream keys come from a systemd credential, reach the server, and never logs or `ps`."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pytest
from stream_helpers import FPS, H, Nginx, Pacer, W, decode_indices, make_image

from coachcam.errors import ConfigError
from coachcam.frame import Frame
from coachcam.logs import redact
from stream.config import StreamConfig
from stream.pipeline import Streamer
from stream.secrets import fill_url, read_secret

KEY = "k3y-S3cr3t-0042"


def all_cmdlines() -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
    return out


def test_key_from_credentials_directory_reaches_the_server_not_ps_or_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "stream-key").write_text(KEY + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    caplog.set_level(logging.DEBUG)
    with Nginx(tmp_path / "ng") as ng:
        cfg = StreamConfig.model_validate(
            {
                "enabled": True,
                "url": f"rtmp://127.0.0.1:{ng.rtmp_port}/live/{{key}}",
                "credential": "stream-key",
                "recording": {"dir": str(tmp_path / "rec"), "min_free_mb": 0},
                "privacy": {"enabled": False},
                "reconnect_min_s": 0.1,
            }
        )
        s = Streamer(cfg, W, H, FPS)
        pacer = Pacer()
        seen_in_ps = []
        with s:
            for i in range(45):
                s.push(Frame(i, pacer.next(), W, H, make_image(i)))
                if i % 10 == 5:
                    seen_in_ps += [c for c in all_cmdlines() if KEY in c]
            ng.stop()  # errors get logged now: they must not carry the key
            for i in range(45, 60):
                s.push(Frame(i, pacer.next(), W, H, make_image(i)))
        [flv] = ng.recordings()
    assert flv.name.startswith(KEY), "the server got the stream under the key"
    assert decode_indices(flv)[:30] == list(range(30))
    assert seen_in_ps == []
    assert KEY not in caplog.text
    out, err = capfd.readouterr()
    assert KEY not in out and KEY not in err
    assert redact(f"url rtmp://x/live/{KEY}") == "url rtmp://x/live/***"


def test_secret_from_a_file_path_and_missing_ones(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("abcd1234\nignored\n")
    assert read_secret(str(f)) == "abcd1234"
    assert read_secret("") == ""
    with pytest.raises(ConfigError, match="not found"):
        read_secret(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="credential"):
        fill_url("rtmp://h/app/{key}", "")
    assert fill_url("rtmp://h/app/{key}", "abcd1234") == "rtmp://h/app/abcd1234"
