"""Shared base for config sections: typed, validated once, unknown keys rejected (frigate's way)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
