"""Scenario files: who is in the simulated classroom and how they move.

A scenario is TOML (the shape is documented in the README, "Scenario files")::

    name = "board-to-desks"
    duration_s = 60
    [[people]]
    role = "teacher"            # teacher | student | adult
    height_m = 1.70
    posture = "standing"        # standing | seated
    shirt_hue_deg = 210         # optional clothing colour (0-360); seeded if absent
    path = [[0, -2.0, 4.0], [4, 2.0, 4.0]]   # [t_s, x_m, y_m], linear between, held after
    [[occluders]]               # optional boxes that hide people
    x = [-0.5, 0.5]
    y = [2.9, 3.1]
    z = [0.0, 2.2]
    [camera]                    # optional overrides of the [camera] config section
    hfov_deg = 66
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from coachcam.config import format_validation_error, read_toml
from coachcam.configbase import Section
from coachcam.errors import ScenarioError


class Person(Section):
    role: Literal["teacher", "student", "adult"]
    height_m: float | None = Field(None, gt=0.8, lt=2.3, description="Body height (m).")
    posture: Literal["standing", "seated"] = "standing"
    shirt_hue_deg: float | None = Field(None, ge=0.0, lt=360.0)
    path: list[tuple[float, float, float]] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _times_increase(
        cls, path: list[tuple[float, float, float]]
    ) -> list[tuple[float, float, float]]:
        for i in range(1, len(path)):
            if path[i][0] <= path[i - 1][0]:
                raise ValueError(
                    f"waypoint {i} time {path[i][0]} must be after waypoint {i - 1} time "
                    f"{path[i - 1][0]} (path = [[t_s, x_m, y_m], ...])"
                )
        for i, (_, _, y) in enumerate(path):
            if y <= 0.3:
                raise ValueError(
                    f"waypoint {i} y = {y}: people must stand in front of the camera (y > 0.3 m)"
                )
        return path

    @property
    def body_height(self) -> float:
        if self.height_m is not None:
            return self.height_m
        return {"teacher": 1.70, "adult": 1.75, "student": 1.45}[self.role]

    def position(self, t: float) -> tuple[float, float]:
        ts = [p[0] for p in self.path]
        x = float(np.interp(t, ts, [p[1] for p in self.path]))
        y = float(np.interp(t, ts, [p[2] for p in self.path]))
        return x, y

    def speed(self, t: float) -> float:
        """Walking speed (m/s) at time t."""
        for i in range(1, len(self.path)):
            t0, x0, y0 = self.path[i - 1]
            t1, x1, y1 = self.path[i]
            if t0 <= t < t1:
                return math.hypot(x1 - x0, y1 - y0) / (t1 - t0)
        return 0.0


class Occluder(Section):
    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float] = (0.0, 2.5)

    @model_validator(mode="after")
    def _ordered(self) -> Occluder:
        for name in ("x", "y", "z"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name} = [{lo}, {hi}]: the first value must be the smaller")
        return self


class ScenarioCamera(Section):
    hfov_deg: float | None = Field(None, gt=10.0, lt=170.0)
    width: int | None = Field(None, ge=160, le=4608)
    height: int | None = Field(None, ge=120, le=2592)
    height_m: float | None = Field(None, gt=0.2, le=6.0)


class Scenario(Section):
    name: str
    description: str = ""
    duration_s: float = Field(gt=0.0, le=7200.0)
    people: list[Person] = Field(min_length=1)
    occluders: list[Occluder] = Field(default_factory=list)
    camera: ScenarioCamera = ScenarioCamera()

    @model_validator(mode="after")
    def _one_teacher(self) -> Scenario:
        n = sum(p.role == "teacher" for p in self.people)
        if n != 1:
            raise ValueError(
                f"a scenario needs exactly one person with role = 'teacher' (found {n})"
            )
        return self

    @property
    def teacher_index(self) -> int:
        return next(i for i, p in enumerate(self.people) if p.role == "teacher")


SCENARIO_DIR = "scenarios"


def builtin_names() -> list[str]:
    root = resources.files("coachcam.sim") / SCENARIO_DIR
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario TOML file by path."""
    path = Path(name_or_path)
    if name_or_path in builtin_names():
        res = resources.files("coachcam.sim") / SCENARIO_DIR / f"{name_or_path}.toml"
        with resources.as_file(res) as p:
            path = p
            data = read_toml(p, "scenario")
    elif path.suffix == ".toml" or path.exists():
        data = read_toml(path, "scenario")
    else:
        names = ", ".join(builtin_names())
        raise ScenarioError(
            f"unknown scenario '{name_or_path}': give a TOML file or one of {names}"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, str(path), Scenario, data)) from None
