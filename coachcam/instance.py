"""Where the running daemon is, and one instance per robot.

Every client (``status``, ``retarget``, the coming ``lesson`` commands) finds the daemon with
``find_running()``; the daemon itself uses ``own_runtime_dir()``. Both mean the same directory:
the unit's ``RuntimeDirectory`` (``/run/coachcam``) on the robot, the user's state directory on a
laptop. It holds ``status.json``, ``control.sock`` and ``coachcam.lock``.

``coachcam run``, ``check`` and ``calibrate`` hold ``one_instance()`` while they may move the
servos or own the control socket. It is ``flock(2)`` on ``coachcam.lock``: the kernel drops it
when the process dies, ``kill -9`` included, so unlike a PID file it can never outlive its holder
or name a recycled PID, and unlike an ``fcntl`` record lock closing some other descriptor of the
file does not silently release it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import logging
import os
import pwd
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from coachcam.errors import CoachcamError

log = logging.getLogger(__name__)

ROBOT_RUNTIME_DIR = Path("/run/coachcam")  # the unit's RuntimeDirectory=coachcam
SERVICE_USER = "coachcam"  # the unit's User= and Group=
STATE_FILE_NAME = "status.json"
SOCKET_NAME = "control.sock"
LOCK_NAME = "coachcam.lock"


class AlreadyRunning(CoachcamError):
    """Another coachcam process holds this robot's instance lock."""

    exit_code = 6


@dataclass(frozen=True)
class RuntimeDir:
    """The directory a daemon shares with its clients."""

    path: Path

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE_NAME

    @property
    def socket(self) -> Path:
        return self.path / SOCKET_NAME

    @property
    def lock(self) -> Path:
        return self.path / LOCK_NAME


def own_runtime_dir(env: Mapping[str, str] | None = None) -> RuntimeDir:
    """Where this process puts its state, socket and lock when it is the daemon: the unit's
    ``$RUNTIME_DIRECTORY`` (tmpfs: no SD-card wear, gone when the service stops), else
    ``$STATE_DIRECTORY``, else the user's state directory (``coachcam run`` on a laptop)."""
    env = os.environ if env is None else env
    for var in ("RUNTIME_DIRECTORY", "STATE_DIRECTORY"):
        value = env.get(var, "")
        if value:
            # systemd joins several directories with ':'; ours is the first.
            return RuntimeDir(Path(value.split(":")[0]))
    from platformdirs import user_state_dir

    return RuntimeDir(Path(user_state_dir("coachcam")))


def candidates(env: Mapping[str, str] | None = None) -> list[RuntimeDir]:
    """Where a client looks, in order: the daemon's own choice in this environment, then the
    robot's (an admin's shell has no ``$RUNTIME_DIRECTORY``)."""
    own = own_runtime_dir(env)
    robot = RuntimeDir(ROBOT_RUNTIME_DIR)
    return [own] if own == robot else [robot, own]


def _exists(path: Path) -> bool:
    """``Path.exists`` that reports a path it may not look at as there (the caller then gets
    the permission error with the path, rather than 'not running')."""
    try:
        path.stat()
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def find_running(env: Mapping[str, str] | None = None) -> RuntimeDir:
    """The runtime directory of the running daemon: the first candidate that holds a state
    file or a control socket. Raises the one line that says it is not running."""
    dirs = candidates(env)
    for d in dirs:
        if _exists(d.state_file) or _exists(d.socket):
            return d
    raise CoachcamError(
        "the daemon is not running: no state file at "
        + " or ".join(str(d.state_file) for d in dirs)
        + " (try: systemctl status coachcam)"
    )


def permission_denied(path: Path) -> CoachcamError:
    """The one line for a user outside the service's group."""
    group = SERVICE_USER
    with contextlib.suppress(OSError, KeyError):
        group = grp.getgrgid(path.stat().st_gid).gr_name
    return CoachcamError(
        f"permission denied on {path}: run as root or as a member of group {group}"
    )


def lock_dir(env: Mapping[str, str] | None = None) -> RuntimeDir:
    """The directory whose lock ``one_instance`` takes: the daemon's own under systemd; from a
    shell on the robot (``sudo coachcam check``) the robot's, made now if root and the service
    user exists (so a daemon systemd starts meanwhile sees the lock); else the user's."""
    env = os.environ if env is None else env
    if env.get("RUNTIME_DIRECTORY"):
        return own_runtime_dir(env)
    robot = RuntimeDir(ROBOT_RUNTIME_DIR)
    if robot.path.is_dir():
        return robot
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(SERVICE_USER)
        except KeyError:  # not an installed robot (a laptop, CI)
            return own_runtime_dir(env)
        with contextlib.suppress(FileExistsError):
            robot.path.mkdir(mode=0o750)
            os.chown(robot.path, pw.pw_uid, pw.pw_gid)  # systemd would chown it on start too
        return robot
    return own_runtime_dir(env)


def _holder(path: Path, fd: int) -> str:
    """Who holds the lock: the kernel's record (/proc/locks), else the PID its holder wrote."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and dev in fields:
                pid = fields[fields.index(dev) - 1]
                if pid.isdigit() and pid != "0":
                    return f"pid {pid}"
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(path.read_text().split()[0])}"
    return "a process whose pid is not visible here"


@contextlib.contextmanager
def one_instance(what: str, where: RuntimeDir | None = None) -> Iterator[Path]:
    """Hold this robot's instance lock for the ``with`` body, or raise ``AlreadyRunning``
    naming the holder. Non-blocking: a second instance is told at once, never waits."""
    d = where if where is not None else lock_dir()
    path = d.lock
    try:
        d.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            writable = True
        except PermissionError:  # a group member: the daemon's file, readable is enough
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            writable = False
    except PermissionError:
        raise permission_denied(path) from None
    except OSError as exc:
        raise CoachcamError(f"cannot open the instance lock {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise CoachcamError(f"cannot lock {path}: {exc.strerror}") from None
            raise AlreadyRunning(
                f"cannot {what}: coachcam is already running on this robot ({_holder(path, fd)}"
                f" holds {path}); stop it first (sudo systemctl stop coachcam)"
            ) from None
        if writable:
            with contextlib.suppress(OSError):
                dir_st, st = d.path.stat(), os.fstat(fd)
                if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (dir_st.st_uid, dir_st.st_gid):
                    # `sudo coachcam check` made it: the service (the directory's owner) must
                    # still be able to open it when systemd starts it next.
                    os.fchown(fd, dir_st.st_uid, dir_st.st_gid)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        log.debug("holding %s", path)
        yield path
    finally:
        os.close(fd)  # the lock goes with the last descriptor (and with the process)
