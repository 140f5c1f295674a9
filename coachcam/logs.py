"""Logging to stderr in a journald-friendly form, with secrets redacted.

Any string registered with ``register_secret`` (stream keys, passwords) is replaced by ``***``
in every log record, whichever logger emits it.
"""

from __future__ import annotations

import logging
import sys

_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in _SECRETS:
        text = text.replace(s, "***")
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "warning") -> None:
    handler = logging.StreamHandler(sys.stderr)
    # No timestamp: journald adds its own; the level and logger name make lines greppable.
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
