"""One exception tree for coachcam (gpiozero's ``exc.py`` is the model).

Every class also inherits the matching builtin so callers that catch e.g. ``ValueError``
keep working. The CLI turns any ``CoachcamError`` into one line and an exit code, never a
traceback.
"""

from __future__ import annotations


class CoachcamError(Exception):
    """Base of every error coachcam raises on purpose."""

    exit_code = 1


class ConfigError(CoachcamError, ValueError):
    """Bad configuration: names the key, the value and what is allowed."""

    exit_code = 2


class ScenarioError(ConfigError):
    """A simulated-classroom scenario file is invalid."""


class CalibrationError(CoachcamError, ValueError):
    """A calibration file is missing, invalid, or a calibration step failed."""

    exit_code = 2


class HardwareError(CoachcamError, OSError):
    """A hardware part (servo controller, camera, GPIO) failed or is absent."""

    exit_code = 3


class ServoError(HardwareError):
    """The servo controller did not answer, answered garbage, or reported an error."""


class DeviceClosed(HardwareError, RuntimeError):
    """A closed device (the pan/tilt head, a servo driver) was used: closed stays closed (open a
    new one)."""


class ServosClosed(DeviceClosed, ServoError):
    """A closed servo driver was used; a ``ServoError`` too, so the frame loop's servo-fault
    path (which catches ``ServoError``) still sees it."""


class CameraError(HardwareError):
    """The camera could not be opened or stopped delivering frames."""


class ModelError(CoachcamError, RuntimeError):
    """The pose model is missing, corrupt, or failed to load."""

    exit_code = 4


class StreamError(CoachcamError, OSError):
    """Encoding or publishing video failed."""

    exit_code = 5
