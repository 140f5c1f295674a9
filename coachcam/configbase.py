"""Shared base for config sections: typed, validated once, unknown keys rejected (frigate's way).

TOML can spell ``nan`` and ``inf``; no setting, scenario or calibration value means either, so
every section refuses them (a NaN compares false with every bound and would pass unbounded
fields, e.g. a scenario waypoint).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )
