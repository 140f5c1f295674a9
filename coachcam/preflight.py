"""Everything ``coachcam run`` would reject, checked without opening any hardware.

``coachcam config`` and ``build_robot`` (so ``coachcam run``) both call ``preflight``: a config
that ``config`` calls OK gets past every check ``run`` makes before it opens the camera, the
model, the servos and the network. What only hardware can tell (is the camera plugged in, does
the servo controller answer, does the server accept the key) stays with ``run``.

Checked here: combinations of keys (``tracker.detector`` against ``camera.source``), files the
config names (camera file, scenario, pose model bundle, stream/backfill credentials and CA
bundles, the calibration file) and the stream URL's form. Each failure is the usual one-line
``CoachcamError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from coachcam.config import Config, effective_detector
from coachcam.errors import ConfigError, StreamError

if TYPE_CHECKING:
    from motor.calibration import Calibration

log = logging.getLogger(__name__)


def preflight(cfg: Config, calibration: str | None = None) -> tuple[Config, Calibration | None]:
    """Check ``cfg`` as ``run`` would; return it with the calibration applied, and the
    calibration (``--calibration`` overrides ``[motor] calibration_file``)."""
    from motor.drivers import calibrated

    _camera_and_detector(cfg)
    _stream(cfg)
    return calibrated(cfg, calibration)


def _file(key: str, value: str) -> Path:
    """The file a config key names: it must exist and be readable."""
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(f"{key} = {value!r}: no such file")
    if not path.is_file():
        raise ConfigError(f"{key} = {value!r}: not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key} = {value!r}: cannot read it ({exc.strerror})") from None
    return path


def _camera_and_detector(cfg: Config) -> None:
    source, asked = cfg.camera.source, cfg.tracker.detector
    detector = effective_detector(cfg)
    if source == "sim":
        if detector != "oracle":
            raise ConfigError(
                f"tracker.detector = {asked!r}: camera.source = 'sim' works with "
                "tracker.detector = 'oracle' or 'auto'"
            )
        from coachcam.sim.scenario import load_scenario

        load_scenario(cfg.sim.scenario)
        return
    if detector == "oracle":
        raise ConfigError(
            f"tracker.detector = 'oracle' only works with camera.source = 'sim', not {source!r}; "
            "use 'auto' or 'mediapipe' with a real camera"
        )
    if source == "file":
        if not cfg.camera.file:
            raise ConfigError("camera.source = 'file' needs camera.file (the video to play)")
        _file("camera.file", cfg.camera.file)
    from tracker.model_bundle import resolve_model

    resolve_model(cfg.tracker.model)


def _stream(cfg: Config) -> None:
    s = cfg.stream
    if not s.enabled:
        return
    from stream.secrets import fill_url, read_secret

    if s.ca_file:
        _file("stream.ca_file", s.ca_file)
    if s.url:
        secret = _secret("stream.credential", s.credential, read_secret)
        url = fill_url(s.url, secret)
        from stream.publish import publisher_for_url

        try:
            publisher_for_url(url, ca_file=s.ca_file, secret=secret)
        except (StreamError, ValueError) as exc:
            # the message is the publisher's (redacted); the value shown is the unfilled URL
            raise ConfigError(f"stream.url = {s.url!r}: {exc}") from None
    bf = s.backfill
    if bf.url:
        if bf.ca_file:
            _file("stream.backfill.ca_file", bf.ca_file)
        _secret("stream.backfill.credential", bf.credential, read_secret)


def _secret(key: str, ref: str, read: Callable[[str], str]) -> str:
    """The secret ``ref`` names, read as ``run`` reads it; but a bare credential name outside
    systemd (no ``$CREDENTIALS_DIRECTORY``: ``sudo coachcam config`` by hand) is the unit's
    ``LoadCredential=`` to provide, so it is not looked for in the working directory."""
    if ref and "/" not in ref and not os.environ.get("CREDENTIALS_DIRECTORY"):
        log.warning(
            "%s = %r is a systemd credential name: only the service (LoadCredential=) can read "
            "it, so it is not checked here",
            key,
            ref,
        )
        return "credential-not-read"
    return read(ref)
