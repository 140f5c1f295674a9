"""``coachcam status``: what the running daemon says about itself, in plain words.

It reads the state file the daemon's ``HealthReporter`` rewrites every second (on the robot
``/run/coachcam/status.json``). No file, a daemon that said it was stopping, a dead pid, or a
file older than a few seconds each give one clear line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from coachcam.errors import CoachcamError
from coachcam.health import state_file_candidates


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="show what the running daemon is doing")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.add_argument(
        "--state-file",
        metavar="PATH",
        type=Path,
        help="state file to read (default: /run/coachcam/status.json, else the user's)",
    )
    p.add_argument(
        "--max-age",
        metavar="S",
        type=float,
        default=None,
        help="call the state stale after S seconds (default: 5, or 3 write periods)",
    )
    p.set_defaults(func=run)


def find_state_file(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    candidates = state_file_candidates()
    for path in candidates:
        if path.exists():
            return path
    raise CoachcamError(
        "the daemon is not running: no state file at "
        + " or ".join(str(p) for p in candidates)
        + " (try: systemctl status coachcam)"
    )


def read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CoachcamError(f"the daemon is not running: no state file at {path}") from None
    except OSError as exc:
        raise CoachcamError(f"cannot read state file {path}: {exc.strerror}") from None
    except ValueError:
        raise CoachcamError(f"state file {path} is not valid JSON") from None
    if not isinstance(data, dict) or "updated" not in data or "pid" not in data:
        raise CoachcamError(f"state file {path} is not a coachcam state file")
    return data


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user (the daemon runs as 'coachcam')
    except (OverflowError, ValueError):
        return False
    return True


def check(state: dict[str, Any], now: float, max_age: float | None, alive: bool) -> float:
    """Raise the one-line reason the daemon is not running; otherwise the state's age."""
    age = now - float(state["updated"])
    if state.get("stopping"):
        raise CoachcamError(
            f"the daemon is not running: it stopped {ago(age)} ({state.get('state', 'stopping')})"
        )
    if not alive:
        raise CoachcamError(
            f"the daemon is not running: pid {state['pid']} has exited; last update {ago(age)}"
        )
    limit = max_age if max_age is not None else max(5.0, 3 * float(state.get("write_every_s", 1)))
    if age > limit:
        raise CoachcamError(
            f"the daemon's state is stale: last update {ago(age)} (pid {state['pid']} is still"
            " there: loop hung or camera gone? see journalctl -u coachcam)"
        )
    return age


def ago(seconds: float) -> str:
    if seconds < 0:
        return "just now"
    return f"{duration(seconds)} ago"


def duration(seconds: float) -> str:
    s = int(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def render(state: dict[str, Any], age: float, now: float) -> str:
    lines = []
    started = state.get("started")
    up = f", up {duration(now - float(started))}" if started else ""
    lines.append(f"coachcam is running (pid {state['pid']}{up}; updated {ago(age)})")
    if not state.get("ready"):
        lines.append("  starting up: camera, model and servos not ready yet")
    elif not state.get("flowing"):
        lines.append("  STALLED: frames or servo control stopped; systemd will restart it")
    lines.append(f"  doing:   {state.get('state', '?')}")
    lines.append(f"  camera:  {float(state.get('fps', 0.0)):.1f} fps")
    n = int(state.get("segments_pending", 0))
    streaming = "streaming" if state.get("streaming") else "not streaming"
    lines.append(f"  stream:  {streaming}, {n} recorded segment{'' if n == 1 else 's'} to send")
    lines.append(f"  servos:  {'ok' if state.get('servo_ok', True) else 'FAULT'}")
    people = state.get("people") or []
    if people:
        lines.append("  people:  (follow another with `coachcam retarget ID` or `retarget centre`)")
        lines += [f"    {p}" for p in people]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = find_state_file(args.state_file)
    state = read_state(path)
    now = time.time()
    age = check(state, now, args.max_age, pid_alive(int(state["pid"])))
    if args.json:
        print(json.dumps({**state, "age_s": round(age, 3), "state_file": str(path)}, indent=1))
    else:
        print(render(state, age, now))
    return 0
