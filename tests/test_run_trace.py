"""``coachcam run --trace``: the daemon writes the per-frame trace of ``coachcam sim --trace``,
and the head it drives never moves faster than the speed limit, through a camera loss too."""

from __future__ import annotations

import csv
import itertools
import os
import subprocess
import sys
from pathlib import Path

from coachcam.trace import TRACE_COLUMNS
from motor.config import MotorConfig

M = MotorConfig()
# The trace's ``t`` is the frame's capture time and the head limits by the time between its
# commands; on a busy machine those differ by the loop's jitter, allowed here (60 ms, 7 deg at
# 120 deg/s: far below any swing).
JITTER_S = 0.06


def test_run_writes_the_sim_trace_columns_and_the_commands_respect_the_speed_limit(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "coachcam.toml"
    # Small frames; the camera is gone from 1.5 s to 3 s after its first frame: the head parks
    # meanwhile and must ramp from the park position when it is back.
    cfg.write_text(
        "[camera]\nwidth = 320\nheight = 240\nfps = 15.0\n"
        "[sim]\nscenario = 'board'\n[sim.faults]\ncamera_gap_s = [1.5, 3.0]\n"
    )
    out = tmp_path / "out.csv"
    (tmp_path / "run").mkdir()
    env = dict(os.environ, RUNTIME_DIRECTORY=str(tmp_path / "run"), HOME=str(tmp_path))
    env.pop("NOTIFY_SOCKET", None)
    cli = [sys.executable, "-m", "coachcam.cli", "run", "--config", str(cfg), "--seconds", "5"]
    r = subprocess.run(
        [*cli, "--trace", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == TRACE_COLUMNS
        rows = list(reader)
    assert len(rows) > 30
    for row in rows:
        for col in ("t", "pan_deg", "tilt_deg", "cmd_pan_deg", "cmd_tilt_deg", "mode"):
            assert row[col] != "", (col, row)
    vmax = M.control.max_speed_deg_s
    gaps = 0
    for a, b in itertools.pairwise(rows):
        dt = float(b["t"]) - float(a["t"])
        assert dt > 0
        if dt > 1.0:  # the camera gap: the head parked in between
            gaps += 1
            assert abs(float(b["cmd_pan_deg"]) - M.pan.home_deg) <= vmax * JITTER_S + 1e-3
            assert abs(float(b["cmd_tilt_deg"]) - M.tilt.home_deg) <= vmax * JITTER_S + 1e-3
            continue
        for col in ("cmd_pan_deg", "cmd_tilt_deg"):
            step = abs(float(b[col]) - float(a[col]))
            assert step <= vmax * (dt + JITTER_S) + 1e-3, (col, a["t"], b["t"], step)
    assert gaps == 1
    assert "camera back" in r.stderr
