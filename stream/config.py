"""The ``[stream]`` config section."""

from __future__ import annotations

from pydantic import Field

from coachcam.configbase import Section


class StreamConfig(Section):
    enabled: bool = Field(False, description="Encode and publish video.")
    url: str = Field(
        "", description="Publish URL (rtmp://, rtmps://, rtsp://, srt://); empty = none."
    )
    bitrate_kbps: int = Field(2500, ge=100, le=50000, description="H.264 target bitrate.")
    keyframe_interval_s: float = Field(1.0, gt=0.0, le=10.0, description="Keyframe interval.")
