"""Stream keys and passwords: from a systemd credential or a file, never from the config text.

``read_secret`` registers what it reads with ``coachcam.logs.register_secret`` so it is
redacted from every log line; callers must not put it on a subprocess command line.
"""

from __future__ import annotations

import os
from pathlib import Path

from coachcam.errors import ConfigError
from coachcam.logs import register_secret


def secret_path(ref: str) -> Path:
    """A bare name is a credential in ``$CREDENTIALS_DIRECTORY``; anything else is a path."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY", "")
    if creds and "/" not in ref:
        return Path(creds) / ref
    return Path(ref).expanduser()


def read_secret(ref: str) -> str:
    """The secret named by ``ref`` (first line, stripped); ``""`` when ``ref`` is empty."""
    if not ref:
        return ""
    path = secret_path(ref)
    try:
        value = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except FileNotFoundError:
        raise ConfigError(f"credential {ref!r} not found (looked at {path})") from None
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise ConfigError(f"credential {ref!r} unreadable or empty ({path}): {exc}") from None
    if not value:
        raise ConfigError(f"credential {ref!r} is empty ({path})")
    register_secret(value)
    return value


def fill_url(url: str, secret: str) -> str:
    """Put the secret where the URL says ``{key}``; a URL asking for one needs one."""
    if "{key}" in url:
        if not secret:
            raise ConfigError("stream.url contains {key} but stream.credential names no secret")
        return url.replace("{key}", secret)
    return url
