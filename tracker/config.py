"""The ``[tracker]`` config section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from coachcam.configbase import Section

_TileCount = Annotated[int, Field(ge=1, le=6)]


class TrackerConfig(Section):
    detector: Literal["auto", "oracle", "mediapipe"] = Field(
        "auto",
        description="Pose source: 'oracle' = the simulated classroom's ground truth with noise "
        "(camera.source = 'sim' only); 'mediapipe' = the real MediaPipe pose landmarker; "
        "'auto' = the oracle for the simulated camera, mediapipe for a real one.",
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
        3.0, gt=0.0, le=60.0, description="A track unseen this long is dropped."
    )
    coast_s: float = Field(
        2.5, ge=0.0, le=10.0, description="After losing the teacher, keep following the prediction."
    )
    hold_s: float = Field(3.0, ge=0.0, le=60.0, description="Then hold still this long.")
    search_s: float = Field(8.0, ge=0.0, le=120.0, description="Then sweep to search this long.")
    search_speed_deg_s: float = Field(
        15.0, gt=0.0, le=90.0, description="Pan speed while searching."
    )
    filter_alpha: float = Field(
        0.8, gt=0.0, le=1.0, description="Bearing filter position gain (alpha-beta filter)."
    )
    filter_beta: float = Field(
        0.5, ge=0.0, le=1.0, description="Bearing filter velocity gain (alpha-beta filter)."
    )
    appearance_accept: float = Field(
        0.35,
        gt=0.0,
        le=1.0,
        description="Clothing-colour distance below which a re-found "
        "person is taken to be the teacher.",
    )
    appearance_gate: float = Field(
        0.6,
        gt=0.0,
        le=1.0,
        description="Clothing-colour distance above which a detection is "
        "never joined to a track, however close.",
    )
    badge_id: int = Field(
        -1, ge=-1, le=999, description="ArUco badge id the teacher wears; -1 = no badge."
    )
    appearance_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="Weight of clothing colour in identity decisions."
    )
    # --- the MediaPipe detector (tracker/mediapipe_detector.py) ---
    detect_width: int = Field(
        640,
        ge=128,
        le=1920,
        description="Width whole-frame detection runs at when a frame carries no lores copy.",
    )
    min_pose_score: float = Field(
        0.5, ge=0.0, le=1.0, description="Landmarker detection/presence/tracking confidence."
    )
    crop_px: int = Field(
        384,
        ge=128,
        le=1024,
        description="A crop around the tracked teacher (or a tile) is scaled to this long side "
        "before the landmarker sees it, so small, far people look large.",
    )
    roi_margin: float = Field(
        0.25, ge=0.0, le=2.0, description="Crops grow by this fraction of their size on each side."
    )
    crop_poses: int = Field(
        1, ge=1, le=4, description="Most poses looked for in one crop around the teacher."
    )
    crop_fallback: bool = Field(
        True,
        description="When the crops around the tracked people find nobody, look at the whole "
        "frame in the same call (faster re-acquisition, twice the cost on such frames).",
    )
    extra_passes: int = Field(
        0,
        ge=0,
        le=5,
        description="Whole-frame search: grey out the people found and look again, up to this "
        "many times (BlazePose reports fewer people than stand side by side). Off by default: "
        "it also finds poses in flags and coats (bench perception).",
    )
    reacquire: Literal["off", "tiles"] = Field(
        "tiles",
        description="With nobody tracked, also scan one tile of the full-resolution frame per "
        "frame (round robin) to find people too small for whole-frame detection.",
    )
    tile_grid: tuple[_TileCount, _TileCount] = Field(
        (3, 2), description="Tiles across and down for re-acquisition (they overlap by a quarter)."
    )
    badge_dictionary: str = Field(
        "DICT_4X4_50",
        description="OpenCV ArUco dictionary of the teacher's badge (used when badge_id >= 0).",
    )
