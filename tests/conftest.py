"""Shared test set-up: deterministic Hypothesis profile, a path to the shared media."""

from __future__ import annotations

from pathlib import Path

import pytest
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
