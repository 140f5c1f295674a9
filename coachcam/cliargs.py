"""Argument types every command shares: numbers that are finite and in range, a PAN,TILT pair,
and output paths checked for writability before the work starts.

argparse's own ``type=float`` takes ``nan`` and ``inf`` (``sim --seconds nan`` ran forever,
``check --degrees inf`` swung the head to its limits); these types reject them at parse time
with argparse's usual message and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from coachcam.errors import ConfigError


def finite_float(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
) -> Callable[[str], float]:
    """A float type: finite, ``lo <= x <= hi`` (``lo < x`` when ``lo_open``)."""
    allowed = _range(lo, hi, lo_open)
    tail = f"; {allowed}" if allowed else ""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number{tail}") from None
        if not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number{tail}")
        below = lo is not None and (x <= lo if lo_open else x < lo)
        if below or (hi is not None and x > hi):
            raise argparse.ArgumentTypeError(f"{text}: {allowed}")
        return x

    parse.__name__ = "number"  # argparse names the type in "invalid <name> value"
    return parse


def _range(lo: float | None, hi: float | None, lo_open: bool) -> str:
    """What is allowed, for the messages ("" when any finite number is)."""
    if lo is not None and hi is not None:
        return f"allowed {lo:g} {'<' if lo_open else '<='} value <= {hi:g}"
    if lo is not None:
        return f"allowed {'above' if lo_open else 'at least'} {lo:g}"
    if hi is not None:
        return f"allowed at most {hi:g}"
    return ""


# Seconds of run time: above 0, at most a day of (simulated) time.
seconds = finite_float(0.0, 86400.0, lo_open=True)
# Latency in ms (as [sim] inference_ms allows).
latency_ms = finite_float(0.0, 2000.0)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (random seeds: numpy refuses negative ones)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; allowed 0 <= value < 2**63"
        ) from None
    if n < 0 or n >= 2**63:
        raise argparse.ArgumentTypeError(f"{text}: allowed 0 <= value < 2**63")
    return n


def pan_tilt(text: str) -> tuple[float, float]:
    """``PAN,TILT`` in degrees, both finite and within +-180."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PAN,TILT in degrees, e.g. -20,0")
    deg = finite_float(-180.0, 180.0)
    try:
        pan, tilt = (deg(p.strip()) for p in parts)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected PAN,TILT in degrees, e.g. -20,0 ({exc})"
        ) from None
    return pan, tilt


def check_writable(path: Path | None, option: str) -> None:
    """Raise ``ConfigError`` unless ``path`` can be written (call before the long work).

    An existing file must be a file we may open for writing; a new one needs a folder in which
    a file can really be created (tried with a temporary file: permission bits do not tell for
    root, read-only mounts or full disks).
    """
    if path is None:
        return
    where = f"{option} {path}"
    if path.is_dir():
        raise ConfigError(f"{where}: is a folder; give a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{where}: the file is not writable")
        return
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConfigError(f"{where}: {parent} {what}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".coachcam-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write in {parent} ({exc.strerror})") from None
