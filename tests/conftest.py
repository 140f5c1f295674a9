"""Shared test set-up: deterministic Hypothesis profile, a path to the shared media, a notify
socket for the daemon tests, a tiny real tmpfs for full-disk tests, and ``wait_until`` for the
few tests that must poll a real thread or process (it fails, saying what did not happen, instead
of letting the test go on)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_helpers import NotifySocket
from hypothesis import settings

settings.register_profile("coachcam", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("coachcam")

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "data" / "media"


@pytest.fixture
def media_dir() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"shared media not found at {MEDIA} (clone with shared/ beside the repo)")
    return MEDIA


@pytest.fixture(autouse=True)
def _restore_logging():
    """A CLI test installs a stderr handler on the root logger; pytest closes that stderr after
    the test, and a thread logging later would print '--- Logging error ---'."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Off the robot, ``run``/``check``/``calibrate`` hold their one-instance lock in the user's
    state directory (coachcam/instance.py): each test gets its own, so two test runs at once
    never refuse each other."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    """A datagram socket bound where ``NOTIFY_SOCKET`` points the daemon (as systemd does)."""
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tiny_tmpfs(size, covered_by="")``: a real tmpfs of ``size`` (``mount -o size=``, e.g.
    "64k") for a disk that really fills up. Root only: skipped where mounting is not allowed,
    saying what covers the case instead (``covered_by``). Unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str, covered_by: str = "") -> Path:
        d = tmp_path / f"tiny{len(mounted)}"
        d.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True
        )
        if r.returncode != 0:
            pytest.skip(
                "cannot mount a tmpfs here (needs root)" + (f"; {covered_by}" if covered_by else "")
            )
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], check=False)


def _wait_until(
    condition: Callable[[], object],
    what: str | Callable[[], str],
    timeout: float = 10.0,
    every: float = 0.01,
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` if it does not within ``timeout`` s
    (a callable ``what`` is called then, so the message shows the state at the failure).

    Only for real threads and processes, which have no event to wait on from outside; the
    bound is generous because it is a failure bound, not a gate on how fast things happen.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            pytest.fail(f"not within {timeout:g} s: {said}", pytrace=False)
        time.sleep(every)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """``wait_until(condition, what, timeout=10.0)``: see ``_wait_until``."""
    return _wait_until
