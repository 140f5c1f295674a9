"""``coachcam status``: what the running daemon says about itself, in plain words.

It reads the state file the daemon's ``HealthReporter`` rewrites every second (on the robot
``/run/coachcam/status.json``), found where every client finds the daemon
(``coachcam.instance.find_running``). The exit status says how it is (``EXIT_CODES``), the same
for the plain and the ``--json`` form; ``--json`` always prints one JSON object, also when the
daemon is down.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coachcam.cliargs import finite_float
from coachcam.errors import CoachcamError

# state -> exit status. "running": ready, frames and servo control flowing.
EXIT_CODES = {
    "running": 0,
    "down": 1,  # no state file: not started, or stopped by systemd
    "stopped": 1,  # it said it was stopping, or its pid has exited
    "unknown": 1,  # the state file cannot be read
    "starting": 3,  # camera, model and servos not ready yet
    "stalled": 3,  # running, but frames or servo control stopped
    "stale": 3,  # its process is there but has not written its state: hung
}
EPILOG = """exit status (plain and --json alike):
  0  running: frames and servo control flowing
  1  not running (down or stopped), or the state cannot be read
  2  bad command line
  3  running but not healthy: starting up, stalled, or hung (state not updated)
--json always prints one object; its "state" is one of running, starting, stalled, stale,
stopped, down, unknown, and "healthy" is true only for running."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "status",
        parents=[common],
        help="show what the running daemon is doing",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        type=finite_float(0.0, 3600.0, lo_open=True),
        default=None,
        help="call the state stale after S seconds (default: 5, or 3 write periods)",
    )
    p.set_defaults(func=run)


class NotHealthy(CoachcamError):
    """The daemon is down, stopped, hung or its state unreadable: ``state`` says which."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.exit_code = EXIT_CODES[state]


def find_state_file(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    from coachcam.instance import find_running

    try:
        return find_running().state_file
    except CoachcamError as exc:
        raise NotHealthy("down", str(exc)) from None


def read_state(path: Path) -> dict[str, Any]:
    from coachcam.instance import permission_denied

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotHealthy("down", f"the daemon is not running: no state file at {path}") from None
    except PermissionError:
        raise NotHealthy("unknown", str(permission_denied(path))) from None
    except OSError as exc:
        raise NotHealthy("unknown", f"cannot read state file {path}: {exc.strerror}") from None
    except ValueError:
        raise NotHealthy("unknown", f"state file {path} is not valid JSON") from None
    if not isinstance(data, dict) or "updated" not in data or "pid" not in data:
        raise NotHealthy("unknown", f"state file {path} is not a coachcam state file")
    bad = _bad_field(data)
    if bad is not None:
        raise NotHealthy(
            "unknown",
            f"state file {path} is not a coachcam state file: {bad} = {_one_line(repr(data[bad]))}",
        )
    return data


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bad_field(data: Mapping[str, Any]) -> str | None:
    """The first field ``status`` reads as a number that is not one (a damaged or foreign
    file is then one line, not a traceback), else None."""
    if not isinstance(data["pid"], int) or isinstance(data["pid"], bool):
        return "pid"
    for key in ("updated", "fps", "segments_pending", "write_every_s"):
        if key in data and not _number(data[key]):
            return key
    if data.get("started") is not None and not _number(data["started"]):
        return "started"  # null until READY
    people = data.get("people") or []
    if not isinstance(people, list) or not all(_person_ok(p) for p in people):
        return "people"
    return None


def _person_ok(p: object) -> bool:
    """Fields with numbers where ``person_line`` reads them, or text (an older daemon's)."""
    if isinstance(p, Mapping):
        return all(_number(p[k]) for k in ("pan_deg", "seen_s_ago") if k in p)
    return isinstance(p, str)


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
    """Raise ``NotHealthy`` if the daemon is not running or hung; otherwise the state's age."""
    age = now - float(state["updated"])
    if state.get("stopping"):
        raise NotHealthy(
            "stopped",
            f"the daemon is not running: it stopped {ago(age)} ({state.get('state', 'stopping')})",
        )
    if not alive:
        raise NotHealthy(
            "stopped",
            f"the daemon is not running: pid {state['pid']} has exited; last update {ago(age)}",
        )
    limit = max_age if max_age is not None else max(5.0, 3 * float(state.get("write_every_s", 1)))
    if age > limit:
        raise NotHealthy(
            "stale",
            f"the daemon's state is stale: last update {ago(age)} (pid {state['pid']} is still"
            " there: loop hung or camera gone? see journalctl -u coachcam)",
        )
    return age


def condition(state: Mapping[str, Any]) -> str:
    """A running daemon's state: running, starting or stalled."""
    if not state.get("ready"):
        return "starting"
    if state.get("flowing"):
        return "running"
    # "stalled" is the daemon's own judgement (it knows when READY was sent); a state file
    # without it (an older daemon) is judged by the flow alone
    return "stalled" if state.get("stalled", True) else "starting"


def ago(seconds: float) -> str:
    if seconds < 0.05:  # also clock skew between the daemon and us: not "-0.0 s ago"
        return "just now"
    return f"{duration(seconds)} ago"


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0) + 0.0
    s = int(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _one_line(value: object) -> str:
    from coachcam.control import printable

    return printable(str(value), 200)


def person_line(p: Mapping[str, Any] | str) -> str:
    """One tracked person, from the state file's fields (text from an older daemon as is)."""
    if isinstance(p, str):
        return _one_line(p)
    who = " <- following" if p.get("teacher") else ""
    posture = p.get("posture", "unknown")
    posture = "posture unknown" if posture == "unknown" else posture
    seen = float(p.get("seen_s_ago", 0.0))
    return (
        f"track {p.get('id')}: {posture}, pan {float(p.get('pan_deg', 0.0)):+.1f} deg,"
        f" seen {ago(seen)}{who}"
    )


def stream_line(state: Mapping[str, Any]) -> str:
    n = int(state.get("segments_pending", 0))
    pending = f"{n} recorded segment{'' if n == 1 else 's'} to send"
    stream = state.get("stream")
    if isinstance(stream, Mapping) and stream:
        said = ", ".join(f"{_one_line(k)} {_one_line(v)}" for k, v in stream.items())
        return f"{said}; {pending}"
    streaming = "streaming" if state.get("streaming") else "not streaming"
    return f"{streaming}, {pending}"


def render(state: dict[str, Any], age: float, now: float) -> str:
    lines = []
    started = state.get("started")
    up = f", up {duration(now - float(started))}" if started else ""
    lines.append(f"coachcam is running (pid {state['pid']}{up}; updated {ago(age)})")
    how = condition(state)
    if how == "starting":
        lines.append("  starting up: camera, model and servos not ready yet")
    elif how == "stalled":
        lines.append("  STALLED: frames or servo control stopped; systemd will restart it")
    lines.append(f"  doing:   {state.get('state', '?')}")
    lines.append(f"  camera:  {float(state.get('fps', 0.0)):.1f} fps")
    lines.append(f"  stream:  {stream_line(state)}")
    lines.append(f"  servos:  {'ok' if state.get('servo_ok', True) else 'FAULT'}")
    people = state.get("people") or []
    if people:
        lines.append("  people:  (follow another with `coachcam retarget ID` or `retarget centre`)")
        lines += [f"    {person_line(p)}" for p in people]
    return "\n".join(lines)


def as_json(state: dict[str, Any], how: str, **extra: Any) -> dict[str, Any]:
    """The daemon's state file with ``state`` = how it is and ``doing`` = what it does."""
    out = {k: v for k, v in state.items() if k != "state"}
    return {
        "state": how,
        "healthy": EXIT_CODES[how] == 0,
        "doing": state.get("state"),
        **out,
        **extra,
    }


def run(args: argparse.Namespace) -> int:
    path: Path | None = args.state_file
    state: dict[str, Any] = {}
    try:
        path = find_state_file(args.state_file)
        state = read_state(path)
        now = time.time()
        age = check(state, now, args.max_age, pid_alive(int(state["pid"])))
    except NotHealthy as exc:
        if not args.json:
            raise
        where = None if path is None else str(path)
        doc = as_json(state, exc.state, reason=str(exc), state_file=where)
        print(json.dumps(doc, indent=1))
        return exc.exit_code
    how = condition(state)
    if args.json:
        print(json.dumps(as_json(state, how, age_s=round(age, 3), state_file=str(path)), indent=1))
    else:
        print(render(state, age, now))
    return EXIT_CODES[how]
