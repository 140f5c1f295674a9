"""Commands run by hand on the robot find the model and the media, or say where they looked and
how to fix it (issue 9 item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.errors import ConfigError, ModelError
from tracker import model_bundle
from tracker.model_bundle import BUNDLE_NAME, default_bundle_path, resolve_model


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A system cache dir and a user cache dir of our own, no env var."""
    system, user = tmp_path / "system", tmp_path / "user"
    monkeypatch.delenv("COACHCAM_MODELS_DIR", raising=False)
    monkeypatch.setattr(model_bundle, "SYSTEM_MODELS_DIR", system)
    monkeypatch.setattr(model_bundle, "user_models_dir", lambda: user)
    return system, user


def test_the_installed_robots_model_is_found_without_the_env_var(dirs: tuple[Path, Path]) -> None:
    system, _user = dirs
    system.mkdir()
    (system / BUNDLE_NAME).write_bytes(b"")
    assert default_bundle_path() == system / BUNDLE_NAME


def test_the_env_var_comes_first(
    dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system, _user = dirs
    system.mkdir()
    (system / BUNDLE_NAME).write_bytes(b"")
    monkeypatch.setenv("COACHCAM_MODELS_DIR", str(tmp_path / "env"))
    assert default_bundle_path() == tmp_path / "env" / BUNDLE_NAME


def test_the_user_cache_without_a_system_bundle(dirs: tuple[Path, Path]) -> None:
    _system, user = dirs
    assert default_bundle_path() == user / BUNDLE_NAME


def test_a_missing_model_says_where_it_looked_and_how_to_build_it(
    dirs: tuple[Path, Path],
) -> None:
    system, user = dirs
    with pytest.raises(ModelError) as ei:
        resolve_model("")
    msg = str(ei.value)
    assert str(system) in msg and str(user) in msg
    assert "COACHCAM_MODELS_DIR" in msg
    assert "python -m tracker.model_bundle build" in msg
    assert "\n" not in msg


def test_sim_media_option_missing_dir_says_how_to_point_at_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-media"
    rc = main(["sim", "--perception", "model", "--media", str(missing), "--seconds", "1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(missing) in err and "--media" in err and "COACHCAM_MEDIA_DIR" in err


def test_media_lookup_names_every_place_it_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coachcam.sim import cutouts

    monkeypatch.delenv("COACHCAM_MEDIA_DIR", raising=False)
    monkeypatch.setattr(cutouts, "media_candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError) as ei:
        cutouts.find_media_dir()
    msg = str(ei.value)
    assert str(tmp_path / "a") in msg and str(tmp_path / "b") in msg
    assert "--media" in msg and "COACHCAM_MEDIA_DIR" in msg


def test_media_env_var_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coachcam.sim import cutouts

    monkeypatch.setenv("COACHCAM_MEDIA_DIR", str(tmp_path))
    assert cutouts.find_media_dir() == tmp_path
