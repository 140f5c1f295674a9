"""Render the config schema as a documented TOML file (``config/coachcam.toml`` is its output)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from coachcam.config import Config

HEADER = """\
# coachcam configuration — every key with its default and what it means.
# Generated from the schema by `coachcam config --defaults`; a test keeps this file equal to it.
# Copy it, keep the keys you change, and pass it with --config PATH. Unknown keys are rejected.
"""


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r} as TOML")


def _section(model: BaseModel, name: str, out: list[str]) -> None:
    cls = type(model)
    scalars: list[tuple[str, Any, Any]] = []
    subs: list[tuple[str, Any, Any]] = []
    for key, field in cls.model_fields.items():
        value = getattr(model, key)
        (subs if isinstance(value, BaseModel) else scalars).append((key, field, value))
    if scalars or not subs:
        out.append(f"\n[{name}]")
        for key, field, value in scalars:
            if field.description:
                out.append(f"# {field.description}")
            out.append(f"{key} = {_toml_value(value)}")
    for key, _field, value in subs:
        _section(value, f"{name}.{key}", out)


def render_defaults() -> str:
    cfg = Config()
    out: list[str] = [HEADER.rstrip("\n")]
    for key in Config.model_fields:
        _section(getattr(cfg, key), key, out)
    return "\n".join(out) + "\n"
