"""The ``coachcam`` command line. Each command lives in its own module under
``coachcam.commands`` (``register(subparsers)`` adds it); ``coachcam bench`` subcommands live
under ``coachcam.benchmarks``. Heavy imports happen inside the commands, not here.

Every command takes ``--config PATH``. A ``CoachcamError`` becomes one line on stderr and the
error's exit code (2 for bad config or input), never a traceback; a reader that closes the pipe
early (``coachcam status | head``) ends the command quietly. Numbers and paths on the command
line are parsed by the shared types in ``coachcam.cliargs``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from coachcam.errors import CoachcamError


def modules_in(package: str) -> list[str]:
    """Names of the modules in a package (commands and benchmarks are found, not listed)."""
    pkg = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def common_parser(in_subcommand: bool = False) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name.

    In subcommands their default is SUPPRESS, so a value given before the command name is not
    overwritten by the subcommand's default (an argparse pitfall).
    """
    sup = argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        metavar="PATH",
        default=sup if in_subcommand else None,
        help="TOML config file (default: built-in defaults)",
    )
    p.add_argument(
        "--log-level",
        default=sup if in_subcommand else "warning",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default: warning)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coachcam",
        description="Teacher-following classroom camera robot.",
        parents=[common_parser()],
    )
    common = common_parser(in_subcommand=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules_in("coachcam.commands"):
        mod = importlib.import_module(f"coachcam.commands.{name}")
        mod.register(sub, common)
    return parser


def setup_logging(level: str) -> None:
    from coachcam.logs import configure

    configure(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        rc = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except CoachcamError as exc:
        print(f"coachcam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_closed()
    return int(rc or 0)


def _stdout_closed() -> int:
    """``coachcam status | head``: the reader left. Not an error worth a traceback; point stdout
    at /dev/null so the interpreter's final flush does not raise again (Python's docs recipe),
    and exit as a command killed by SIGPIPE would (128 + 13)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
