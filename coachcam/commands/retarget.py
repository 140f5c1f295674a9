"""``coachcam retarget ID|centre``: tell the running robot whom to follow."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "retarget",
        parents=[common],
        help="follow another person: a track id from `coachcam status`, or 'centre'",
    )
    p.add_argument(
        "who", help="a track id, or 'centre' for the person nearest the picture's centre"
    )
    p.add_argument(
        "--socket",
        type=Path,
        help="the daemon's control socket (default: the running daemon's, as `coachcam status`"
        " finds it: /run/coachcam/control.sock on the robot)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coachcam.control import printable, send
    from coachcam.errors import ConfigError
    from coachcam.instance import find_running

    who = args.who.strip().lower()
    if who in ("centre", "center"):
        request: dict[str, object] = {"retarget": "centre"}
    # ASCII digits (str.isdigit also says yes to '²', which int() refuses), at most 18 of them
    # (a track id fits 64 bits; int() refuses thousands of digits)
    elif who.isascii() and who.isdigit() and len(who) <= 18:
        request = {"retarget": int(who)}
    else:
        raise ConfigError(
            f"retarget {printable(repr(args.who))}: give a track id (a number of at most 18 "
            "digits, as `coachcam status` lists them) or 'centre'"
        )
    path = args.socket or find_running().socket
    reply = send(path, request)
    print(reply)
    return 1 if reply.startswith("error") else 0
