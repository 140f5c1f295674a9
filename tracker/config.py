"""The ``[tracker]`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from coachcam.configbase import Section


class TrackerConfig(Section):
    detector: Literal["oracle", "mediapipe"] = Field(
        "oracle",
        description="Pose source: 'oracle' = the simulated classroom's ground truth with noise "
        "(simulation only); 'mediapipe' = the real MediaPipe pose landmarker.",
    )
    model: str = Field(
        "",
        description="Pose landmarker .task bundle. Empty = the bundle built offline at set-up "
        "(see README); or a path to an official pose_landmarker_*.task.",
    )
    max_people: int = Field(
        6, ge=1, le=20, description="Most poses the detector reports per frame."
    )
    min_visibility: float = Field(
        0.5, ge=0.0, le=1.0, description="A keypoint counts as seen above this visibility."
    )
    max_match_deg: float = Field(
        6.0, gt=0.0, le=45.0, description="Largest bearing jump (deg) to associate to a track."
    )
    confirm_hits: int = Field(3, ge=1, le=30, description="Detections before a track is confirmed.")
    drop_after_s: float = Field(
        2.0, gt=0.0, le=60.0, description="A track unseen this long is dropped."
    )
    coast_s: float = Field(
        0.8, ge=0.0, le=10.0, description="After losing the teacher, keep following the prediction."
    )
    hold_s: float = Field(3.0, ge=0.0, le=60.0, description="Then hold still this long.")
    search_s: float = Field(8.0, ge=0.0, le=120.0, description="Then sweep to search this long.")
    search_speed_deg_s: float = Field(
        15.0, gt=0.0, le=90.0, description="Pan speed while searching."
    )
    appearance_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="Weight of clothing colour in identity decisions."
    )
