from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.config import Config, load_config
from coachcam.configdoc import render_defaults
from coachcam.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_documented_defaults_file_matches_the_schema() -> None:
    assert (REPO / "config" / "coachcam.toml").read_text() == render_defaults()


def test_documented_defaults_file_loads_to_the_defaults() -> None:
    assert load_config(REPO / "config" / "coachcam.toml") == Config()


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        ("[motor.pan]\nmax_deg = 500\n", ["motor.pan.max_deg", "500", "180"]),
        ("[motor]\nbogus = 1\n", ["unknown key 'motor.bogus'", "driver"]),
        ("[camera]\nsource = 'webcam'\n", ["camera.source", "'webcam'", "v4l2"]),
        ("[motor.pan]\nmin_deg = 50\nmax_deg = 40\n", ["motor.pan", "min_deg"]),
        ("[camera\n", ["not valid TOML"]),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, must_contain: list[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(path) in msg
    for s in must_contain:
        assert s in msg


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[sim]\nseed = -3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "coachcam.cli", "--config", str(path), "sim", "--seconds", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "sim.seed" in lines[0] and "-3" in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_config_file_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--config", "/nonexistent/coachcam.toml"]) == 2
    assert "/nonexistent/coachcam.toml" in capsys.readouterr().err
