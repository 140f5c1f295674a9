"""``coachcam bench perception`` runs end to end on a tiny budget and prints its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from perception_helpers import MEDIA, needs_media, require_bundle

from coachcam.cli import main


@needs_media
def test_bench_perception_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    require_bundle()
    argv = ["bench", "perception", "--media", str(MEDIA), "--frames", "4", "--heights", "120"]
    assert main([*argv, "--media-step", "90"]) == 0
    out = capsys.readouterr().out
    assert "podium_speaker_720p30.mp4" in out and "two_people_bridge_1080p24.mp4" in out
    assert "steady teacher%" in out and "recall % by apparent height" in out
    assert "People side by side" in out


def test_bench_perception_refuses_a_missing_media_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "perception", "--media", str(tmp_path)]) == 2
    assert "shared media are not there" in capsys.readouterr().err
