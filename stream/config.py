"""The ``[stream]`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from coachcam.configbase import Section


class RecordingConfig(Section):
    dir: str = Field(
        "",
        description="Directory for the local MPEG-TS segments. Empty = "
        "$STATE_DIRECTORY/recordings (systemd StateDirectory=) or the user state directory.",
    )
    segment_s: float = Field(10.0, ge=1.0, le=600.0, description="Segment length (s).")
    quota_mb: float = Field(
        4000.0, ge=1.0, le=1e7, description="Most disk the segments may use; oldest go first."
    )
    min_free_mb: float = Field(
        250.0,
        ge=0.0,
        le=1e6,
        description="Delete oldest segments to keep this much disk free; with nothing left to "
        "delete, recording pauses (status and log say so). 250 MB keeps room for the journal "
        "and a package upgrade, yet lets a nearly full small SD card still record.",
    )
    queue_packets: int = Field(
        900, ge=10, le=100000, description="Encoded packets buffered for the disk writer."
    )


class BackfillConfig(Section):
    url: str = Field(
        "",
        description="HTTP(S)/WebDAV base URL to PUT segments the endpoint did not confirm "
        "(e.g. https://files.school.example/coachcam/room12/); empty = no backfill.",
    )
    credential: str = Field(
        "",
        description="'user:password' for the backfill URL: a credential name in "
        "$CREDENTIALS_DIRECTORY (systemd LoadCredential=) or a file path; empty = none.",
    )
    ca_file: str = Field("", description="Extra CA bundle for https; empty = system CAs.")
    interval_s: float = Field(5.0, gt=0.0, le=3600.0, description="How often to look for work.")
    settle_s: float = Field(
        8.0,
        ge=0.0,
        le=600.0,
        description="A segment is judged (confirmed live or to upload) this long after it ends.",
    )
    timeout_s: float = Field(30.0, gt=0.0, le=3600.0, description="Per-request HTTP timeout.")


class PrivacyConfig(Section):
    enabled: bool = Field(True, description="Blur and mask before encoding (live and recording).")
    blur_faces: bool = Field(True, description="Blur the faces of everyone but the teacher.")
    min_visibility: float = Field(
        0.2, ge=0.0, le=1.0, description="Head keypoints at or above this visibility count."
    )
    face_margin: float = Field(
        0.8, ge=0.0, le=5.0, description="Grow each face box by this fraction of its size."
    )
    min_face_frac: float = Field(
        0.03, ge=0.0, le=1.0, description="Smallest face box side, as a fraction of frame height."
    )
    block_px: int = Field(
        12, ge=2, le=200, description="Pixelation block size of the blur (px); larger = coarser."
    )
    zones: list[list[float]] = Field(
        default_factory=list,
        description="Privacy zones masked solid: [[x0, y0, x1, y1], ...] as fractions of the "
        "frame (0..1), e.g. student seating.",
    )

    @field_validator("zones")
    @classmethod
    def _zones_valid(cls, v: list[list[float]]) -> list[list[float]]:
        for z in v:
            if len(z) != 4 or not all(0.0 <= c <= 1.0 for c in z) or z[0] >= z[2] or z[1] >= z[3]:
                raise ValueError(f"zone {z} must be [x0, y0, x1, y1] in 0..1 with x0<x1, y0<y1")
        return v


class StreamConfig(Section):
    enabled: bool = Field(False, description="Encode and publish video.")
    url: str = Field(
        "",
        description="Publish URL (rtmp://, rtmps://, rtsp://, srt://); empty = record only. "
        "'{key}' in it is replaced by the secret named by 'credential'.",
    )
    bitrate_kbps: int = Field(2500, ge=100, le=50000, description="H.264 target bitrate.")
    keyframe_interval_s: float = Field(1.0, gt=0.0, le=10.0, description="Keyframe interval.")
    encoder: Literal["auto", "libx264", "h264_v4l2m2m"] = Field(
        "auto",
        description="H.264 encoder: libx264 (software), h264_v4l2m2m (the Pi 4's hardware "
        "encoder, the one picamera2 uses); auto = hardware when present.",
    )
    credential: str = Field(
        "",
        description="Stream key: a credential name in $CREDENTIALS_DIRECTORY (systemd "
        "LoadCredential=) or a file path; empty = none.",
    )
    ca_file: str = Field(
        "", description="CA bundle that must verify an rtmps:// server; empty = system CAs."
    )
    stat_url: str = Field(
        "",
        description="nginx-rtmp stat page (rtmp_stat all) of the endpoint: what it confirms "
        "receiving decides backfill and detects a stalled endpoint; empty = judge from sending.",
    )
    stall_timeout_s: float = Field(
        6.0,
        gt=0.0,
        le=120.0,
        description="An endpoint that confirms nothing new (or a socket that accepts nothing) "
        "this long is treated as down.",
    )
    reconnect_min_s: float = Field(0.25, gt=0.0, le=60.0, description="First reconnect delay.")
    reconnect_max_s: float = Field(
        1.0, gt=0.0, le=600.0, description="Longest reconnect delay (backoff doubles up to it)."
    )
    queue_packets: int = Field(
        150, ge=10, le=10000, description="Encoded packets buffered per network output."
    )
    recording: RecordingConfig = RecordingConfig()
    backfill: BackfillConfig = BackfillConfig()
    privacy: PrivacyConfig = PrivacyConfig()
