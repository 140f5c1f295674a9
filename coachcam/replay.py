"""Replay: real footage in the robot's loop, through a virtual pan/tilt camera.

A recorded wide video stands for the room. The virtual camera's picture is a *window* moving
over each source frame; the window's centre follows the simulated servos' true pan/tilt. The
real pose detector (MediaPipe), the tracker, the room-angle controller and the simulated servos
run exactly as in the robot's ``FrameLoop``, wired by the robot's ``coachcam.wiring.assemble``,
on a ``FakeClock`` that advances one source frame period per frame, with inference on
``ScheduledInference`` (its result appears ``latency_s`` after capture) — so a replay is
reproducible and runs as fast as the model computes.

**Mapping (angles ↔ source pixels).** The window is the virtual camera's whole picture, so the
window has the configured lens (``camera.hfov_deg`` across ``win_w``) and the tracker uses the
pinhole intrinsics ``Intrinsics(win_w, win_h, hfov)``. The source frame is treated as a
panorama that is linear in angle, with ``ppd = fx * pi / 180`` source pixels per degree on both
axes, where ``fx`` is that lens's focal length in pixels: at the centre of the picture, where the
controller settles, a bearing the tracker computes from a pixel moves the window exactly onto
that pixel (a ``win_w / hfov`` mapping would make the loop gain 13 % too high near the centre
with a 66° lens). Pan 0 / tilt 0 puts the window's centre on the source's centre; pan positive
moves it right, tilt positive up. The window is clamped inside the source frame, so the servo
limits are set from the source's span: pan within ``±(src_w - win_w) / 2 / ppd``, tilt within
``±(src_h - win_h) / 2 / ppd``. The crop is 1:1 in source pixels (no resampling).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.clock import FakeClock
from coachcam.config import Config
from coachcam.errors import CameraError, ConfigError, StreamError
from coachcam.frame import Frame
from coachcam.geometry import Intrinsics, angle_between
from coachcam.metrics import FOLLOWING, reversal_times
from coachcam.wiring import assemble, simulated_head
from motor.config import AxisConfig
from motor.sim import SimServos
from tracker.tracker import SEEN_RECENTLY_S, Aim, Tracker, torso_target_px
from tracker.types import Detections, Pose, PoseDetector, Roi

log = logging.getLogger(__name__)

TRACE_COLUMNS = (
    "frame", "t", "win_x", "win_y", "win_w", "win_h", "followed_id", "box_x0", "box_y0",
    "box_x1", "box_y1", "torso_x", "torso_y", "pan_deg", "tilt_deg", "mode", "tracks",
)  # fmt: skip

# BlazePose's skeleton (keypoint index pairs), without the face mesh's small details.
SKELETON = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (0, 7), (0, 8), (9, 10),
)  # fmt: skip


# -- geometry -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayGeometry:
    """The virtual camera over a source video (see the module docstring for the mapping)."""

    source_w: int
    source_h: int
    win_w: int
    win_h: int
    hfov_deg: float

    def __post_init__(self) -> None:
        if not (0 < self.win_w <= self.source_w and 0 < self.win_h <= self.source_h):
            raise ConfigError(
                f"--window {self.win_w}x{self.win_h} must fit inside the source video "
                f"({self.source_w}x{self.source_h})"
            )

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics(self.win_w, self.win_h, self.hfov_deg)

    @property
    def ppd(self) -> float:
        """Source pixels per degree of pan or tilt."""
        return self.intrinsics.fx * math.pi / 180.0

    @property
    def pan_span_deg(self) -> float:
        return (self.source_w - self.win_w) / 2.0 / self.ppd

    @property
    def tilt_span_deg(self) -> float:
        return (self.source_h - self.win_h) / 2.0 / self.ppd

    def axes(self, pan: AxisConfig, tilt: AxisConfig) -> tuple[AxisConfig, AxisConfig]:
        """The configured axes with their limits set from the source's span, home at 0."""
        out = []
        for axis, span in ((pan, self.pan_span_deg), (tilt, self.tilt_span_deg)):
            span = max(span, 1e-3)  # a window as large as the source cannot move at all
            out.append(axis.model_copy(update={"min_deg": -span, "max_deg": span, "home_deg": 0.0}))
        return out[0], out[1]

    def window_at(self, pan: float, tilt: float) -> tuple[int, int]:
        """Top-left corner (source px) of the window for a pointing, clamped to the source."""
        cx = self.source_w / 2.0 + pan * self.ppd
        cy = self.source_h / 2.0 - tilt * self.ppd
        x0 = round(cx - self.win_w / 2.0)
        y0 = round(cy - self.win_h / 2.0)
        return (
            min(max(x0, 0), self.source_w - self.win_w),
            min(max(y0, 0), self.source_h - self.win_h),
        )


def parse_window(text: str) -> tuple[int, int]:
    """``"640x360"`` → ``(640, 360)``; anything else is a ``ConfigError``."""
    parts = text.lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--window {text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    if w < 64 or h < 64:
        raise ConfigError(f"--window {text!r}: at least 64x64 pixels")
    return w, h


@dataclass(frozen=True, slots=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int | None  # as the container states it; None if unknown


def probe_video(path: Path) -> VideoInfo:
    """Size, rate and length of a video file; a missing or unreadable one is a one-line error."""
    if not path.exists():
        raise ConfigError(f"video file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"not a video file: {path}")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CameraError(f"no video stream in {path}")
            s = container.streams.video[0]
            rate = s.average_rate or s.guessed_rate
            if not rate or s.codec_context.width <= 0:
                raise CameraError(f"cannot tell the frame size and rate of {path}")
            return VideoInfo(
                path,
                s.codec_context.width,
                s.codec_context.height,
                Fraction(rate),
                int(s.frames) or None,
            )
    except (av.FFmpegError, OSError) as exc:
        raise CameraError(f"cannot read video file {path}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- the frame source ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    frame: int
    t: float
    x0: int
    y0: int
    pan: float  # the servos' true pointing when the frame was captured
    tilt: float


class WindowFrameSource:
    """Decodes a video and delivers, per source frame, the window the virtual camera sees.

    ``t_capture`` of frame ``i`` is ``t0 + i / fps`` on the injected ``FakeClock`` (which this
    source advances). The window's position comes from ``servos.true_position()`` at that time.
    Every window is kept (``windows``, ``at_time``) so traces and overlays can map window pixels
    back to source pixels. Opens the file on the first ``read``; a context manager.
    """

    def __init__(
        self,
        info: VideoInfo,
        geometry: ReplayGeometry,
        servos: SimServos,
        clock: FakeClock,
        *,
        lores_width: int = 640,
        max_frames: int | None = None,
    ) -> None:
        self.info = info
        self.geometry = geometry
        self.servos = servos
        self.clock = clock
        self.period = 1.0 / float(info.fps)
        self.lores_width = min(lores_width, geometry.win_w)
        self.max_frames = max_frames
        self.windows: list[Window] = []
        self.at_time: dict[float, Window] = {}
        self._container: Any = None
        self._frames: Any = None
        self._t0: float | None = None
        self._cv2: Any = None

    def _open(self) -> None:
        import av
        import cv2

        self._cv2 = cv2
        try:
            self._container = av.open(str(self.info.path))
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError) as exc:
            raise CameraError(
                f"cannot open video file {self.info.path}: {_first_line(exc)}"
            ) from None
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        self._t0 = self.clock.now()

    def start(self) -> None:
        if self._container is None:
            self._open()

    def read(self) -> Frame | None:
        import av

        index = len(self.windows)
        if self.max_frames is not None and index >= self.max_frames:
            return None
        if self._container is None:
            self._open()
        assert self._t0 is not None
        try:
            vf = next(self._frames, None)
        except av.FFmpegError as exc:
            raise CameraError(f"decoding {self.info.path}: {_first_line(exc)}") from None
        if vf is None:
            return None
        t = self._t0 + index * self.period
        self.clock.set(max(t, self.clock.now()))
        t = self.clock.now()
        pan, tilt = self.servos.true_position()
        g = self.geometry
        x0, y0 = g.window_at(pan, tilt)
        src = vf.to_ndarray(format="bgr24")
        if src.shape[1] != g.source_w or src.shape[0] != g.source_h:
            raise CameraError(
                f"{self.info.path}: frame {index} is {src.shape[1]}x{src.shape[0]}, "
                f"not {g.source_w}x{g.source_h}"
            )
        image = np.ascontiguousarray(src[y0 : y0 + g.win_h, x0 : x0 + g.win_w])
        lores = image
        if self.lores_width < g.win_w:
            lh = max(1, round(g.win_h * self.lores_width / g.win_w))
            lores = self._cv2.resize(
                image, (self.lores_width, lh), interpolation=self._cv2.INTER_AREA
            )
        w = Window(index, t, x0, y0, pan, tilt)
        self.windows.append(w)
        self.at_time[t] = w
        return Frame(index, t, g.win_w, g.win_h, image, lores)

    def close(self) -> None:
        c, self._container = self._container, None
        self._frames = None
        if c is not None:
            c.close()

    def __enter__(self) -> WindowFrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the operator and the detector's cost ----------------------------------------------------


OPERATOR_WAIT_S = 1.0  # the tracker has this long to choose on its own once someone is confirmed


def operator_pick(tracker: Tracker, cam: tuple[float, float], now: float) -> int | None:
    """What a technician does at the start of a lesson when the robot follows nobody: re-target
    to the confirmed person nearest the centre of the picture (``Tracker.retarget``).

    Only before the first lock, and only once a confirmed track has been seen for
    ``OPERATOR_WAIT_S`` without the tracker choosing: the tracker's own rule (a standing person
    at the front) needs the legs in view, which a speaker behind a lectern never shows.
    """
    if tracker.ever_locked or tracker.teacher_id is not None:
        return None
    confirmed = [
        tr
        for tr in tracker.tracks.values()
        if tr.hits >= tracker.cfg.confirm_hits and tr.t_last - tr.t_first >= OPERATOR_WAIT_S
    ]
    if not confirmed:
        return None
    best = min(confirmed, key=lambda tr: angle_between(tr.filt.x[0], tr.filt.x[1], *cam))
    tracker.retarget(best.id, now)
    log.info("operator pick: track %s, nearest the centre", best.id)
    return best.id


class TimedDetector:
    """Wraps a detector to count its calls and their wall time (for the report only)."""

    def __init__(self, detector: PoseDetector) -> None:
        self.detector = detector
        self.calls = 0
        self.seconds = 0.0

    def detect(self, frame: Frame, rois: Sequence[Roi] = ()) -> Detections:
        start = time.perf_counter()
        dets = self.detector.detect(frame, rois)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return dets

    def close(self) -> None:
        self.detector.close()


# -- the video with overlays ------------------------------------------------------------------


class OverlayVideo:
    """A ``FrameSink``: the window's view with every tracked skeleton (the followed person
    highlighted) and the controller's dead zone, encoded with PyAV libx264 to an mp4 file.

    Skeletons come from each track's newest pose, moved from the window it was seen in to the
    current one, so they stay on the person while the window moves. Opens on the first frame.
    """

    def __init__(
        self,
        path: Path,
        source: WindowFrameSource,
        dead_zone_deg: float,
        min_visibility: float,
        *,
        crf: int = 23,
    ) -> None:
        g = source.geometry
        if g.win_w % 2 or g.win_h % 2:
            raise ConfigError(f"--video needs an even window size, not {g.win_w}x{g.win_h}")
        self.path = path
        self.source = source
        self.dead_px = dead_zone_deg * g.ppd
        self.min_visibility = min_visibility
        self.crf = crf
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._cv2: Any = None

    def _open(self) -> None:
        import av
        import cv2

        self._cv2 = cv2
        g = self.source.geometry
        try:
            self._container = av.open(str(self.path), "w")
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"cannot write video {self.path}: {_first_line(exc)}") from None
        stream = self._container.add_stream("libx264", rate=self.source.info.fps)
        stream.width, stream.height = g.win_w, g.win_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(self.crf)}
        self._stream = stream

    def write(self, frame: Frame, aim: Aim, tracker: Tracker) -> None:
        import av

        if frame.image is None:
            return
        if self._container is None:
            self._open()
        img = self.draw(frame, aim, tracker)
        vf = av.VideoFrame.from_ndarray(img, format="bgr24")
        vf.pts = frame.index
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def draw(self, frame: Frame, aim: Aim, tracker: Tracker) -> np.ndarray:
        cv2 = self._cv2
        assert frame.image is not None
        img = frame.image.copy()
        g = self.source.geometry
        now = self.source.windows[frame.index]
        cx, cy = g.win_w / 2.0, g.win_h / 2.0
        d = self.dead_px
        cv2.rectangle(
            img, (round(cx - d), round(cy - d)), (round(cx + d), round(cy + d)), (0, 200, 255), 1
        )
        followed = tracker.teacher_id if aim.mode in FOLLOWING else None
        for tr in tracker.tracks.values():
            if tr.last is None or frame.t_capture - tr.t_last > SEEN_RECENTLY_S:
                continue
            seen = self.source.at_time.get(tr.last.t)
            if seen is None:
                continue
            shift = np.array([seen.x0 - now.x0, seen.y0 - now.y0], dtype=float)
            colour = (0, 255, 0) if tr.id == followed else (200, 160, 60)
            self._skeleton(img, tr.last.pose, shift, colour, 3 if tr.id == followed else 1)
            b = tr.last.pose.bbox(self.min_visibility)
            if b is not None:
                cv2.putText(
                    img, f"#{tr.id}", (round(b[0] + shift[0]), max(12, round(b[1] + shift[1]) - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA,
                )  # fmt: skip
        label = f"{frame.index} {aim.mode}" + (f" #{followed}" if followed is not None else "")
        cv2.putText(img, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        return img

    def _skeleton(
        self, img: np.ndarray, pose: Pose, shift: np.ndarray, colour: tuple, thick: int
    ) -> None:
        cv2 = self._cv2
        kp = pose.keypoints
        vis = kp[:, 2] >= self.min_visibility
        pts = np.round(kp[:, :2] + shift).astype(int)
        for a, b in SKELETON:
            if vis[a] and vis[b]:
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
        for i in np.flatnonzero(vis):
            cv2.circle(img, tuple(pts[i]), 2 + thick, colour, -1, cv2.LINE_AA)

    def close(self) -> None:
        c, self._container = self._container, None
        if c is None:
            return
        try:
            for packet in self._stream.encode(None):
                c.mux(packet)
        finally:
            c.close()


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayRow:
    frame: int
    t: float
    win_x: int
    win_y: int
    win_w: int
    win_h: int
    followed_id: int | None
    box: tuple[float, float, float, float] | None  # followed person, source px
    torso: tuple[float, float] | None  # followed person's torso centre, source px
    pan_deg: float
    tilt_deg: float
    mode: str
    tracks: int


@dataclass
class ReplayResult:
    info: VideoInfo
    geometry: ReplayGeometry
    rows: list[ReplayRow] = field(default_factory=list)
    switches: list = field(default_factory=list)
    wall_s: float = 0.0
    detect_calls: int = 0
    detect_s: float = 0.0
    video_frames: int = 0


def default_window(info: VideoInfo) -> tuple[int, int]:
    """Half the source (rounded down to even sizes, for H.264)."""
    return (info.width // 2) // 2 * 2, (info.height // 2) // 2 * 2


def _row(
    step_frame: Frame, aim: Aim, src: WindowFrameSource, tracker: Tracker, min_vis: float
) -> ReplayRow:
    w = src.windows[step_frame.index]
    g = src.geometry
    followed = tracker.teacher_id if aim.mode in FOLLOWING else None
    box = torso = None
    tr = tracker.teacher if followed is not None else None
    if tr is not None and tr.last is not None and (seen := src.at_time.get(tr.last.t)):
        b = tr.last.pose.bbox(min_vis)
        if b is not None:
            box = (b[0] + seen.x0, b[1] + seen.y0, b[2] + seen.x0, b[3] + seen.y0)
        c = torso_target_px(tr.last.pose, min_vis)
        if c is not None:
            torso = (c[0] + seen.x0, c[1] + seen.y0)
    return ReplayRow(
        w.frame, w.t, w.x0, w.y0, g.win_w, g.win_h, followed, box, torso, w.pan, w.tilt,
        aim.mode, len(tracker.tracks),
    )  # fmt: skip


def run_replay(
    cfg: Config,
    video: Path,
    *,
    window: tuple[int, int] | None = None,
    seconds: float | None = None,
    latency_ms: float | None = None,
    start: tuple[float, float] = (0.0, 0.0),
    crops: bool = True,
    pick: str = "centre",
    video_out: Path | None = None,
    detector: PoseDetector | None = None,
    seed: int | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> ReplayResult:
    """Run the robot's loop over a recorded video through the virtual pan/tilt window.

    ``start`` is where the window starts (pan, tilt in degrees; clamped to the source's span).
    ``detector`` defaults to the MediaPipe landmarker of ``cfg.tracker``. ``pick``: "auto"
    leaves the choice of whom to follow to the tracker; "centre" also lets an operator step in
    (``operator_pick``) when the tracker has chosen nobody a second after someone was confirmed.
    """
    if pick not in ("auto", "centre"):
        raise ConfigError(f"--pick {pick!r}: expected 'auto' or 'centre'")
    info = probe_video(video)
    w, h = window or default_window(info)
    geom = ReplayGeometry(info.width, info.height, w, h, cfg.camera.hfov_deg)
    intr = geom.intrinsics
    pan_axis, tilt_axis = geom.axes(cfg.motor.pan, cfg.motor.tilt)
    start = (
        min(max(start[0], pan_axis.min_deg), pan_axis.max_deg),
        min(max(start[1], tilt_axis.min_deg), tilt_axis.max_deg),
    )
    pan_axis = pan_axis.model_copy(update={"home_deg": start[0]})
    tilt_axis = tilt_axis.model_copy(update={"home_deg": start[1]})
    seed = cfg.sim.seed if seed is None else seed
    fps = float(info.fps)
    max_frames = None if seconds is None else max(1, math.ceil(seconds * fps - 1e-9))
    total = min(n for n in (max_frames, info.frames, 10**9) if n is not None)

    # The axes the window can move over, home where it starts: the head's and the controller's.
    motor = cfg.motor.model_copy(update={"pan": pan_axis, "tilt": tilt_axis})
    cfg = cfg.model_copy(update={"motor": motor})
    clock = FakeClock(0.0)
    servos, head = simulated_head(cfg, clock, seed=seed)
    source = WindowFrameSource(
        info, geom, servos, clock, lores_width=cfg.camera.lores_width, max_frames=max_frames
    )
    if detector is None:
        from tracker.mediapipe_detector import MediaPipePoseDetector

        detector = MediaPipePoseDetector(cfg.tracker, clock=clock)
    timed = TimedDetector(detector)
    latency = (cfg.sim.inference_ms if latency_ms is None else latency_ms) / 1000.0
    sinks = []
    overlay = None
    if video_out is not None:
        overlay = OverlayVideo(
            video_out, source, cfg.motor.control.dead_zone_deg, cfg.tracker.min_visibility
        )
        sinks.append(overlay)
    # No mount height: nobody knows where the recording camera stood.
    loop = assemble(
        cfg, clock, source=source, detector=timed, head=head, intrinsics=intr,
        camera_height_m=None, latency_s=latency, sinks=sinks, crops=crops,
    )  # fmt: skip
    tracker = loop.tracker
    result = ReplayResult(info, geom)
    min_vis = cfg.tracker.min_visibility
    wall0 = time.perf_counter()
    with head:
        try:
            head.command(*start)
            while (step := loop.step()) is not None:
                if pick == "centre":
                    operator_pick(tracker, head.pointing_at(step.t), step.t)
                result.rows.append(_row(step.frame, step.aim, source, tracker, min_vis))
                if progress is not None and step.frame.index % 15 == 0:
                    progress(step.frame.index, total)
        finally:
            loop.close()
    result.wall_s = time.perf_counter() - wall0
    result.switches = list(tracker.switches)
    result.detect_calls, result.detect_s = timed.calls, timed.seconds
    result.video_frames = overlay.frames if overlay is not None else 0
    if not result.rows:
        raise CameraError(f"no frames decoded from {video}")
    log.info("replay of %s: %d frames in %.1f s", video, len(result.rows), result.wall_s)
    return result


# -- report and trace -------------------------------------------------------------------------


def compute_report(result: ReplayResult) -> dict[str, Any]:
    """Frames, followed %, offset of the followed torso from the window centre (in window
    widths), torso-in-window %, reversals/min, identity switches, ms per frame."""
    rows = result.rows
    n = len(rows)
    t = np.array([r.t for r in rows]) - rows[0].t
    pan = np.array([r.pan_deg for r in rows])
    followed = [r.followed_id is not None for r in rows]
    first = next((i for i, f in enumerate(followed) if f), None)
    offsets, inside = [], []
    for r in rows:
        if r.torso is None:
            continue
        dx = r.torso[0] - (r.win_x + r.win_w / 2.0)
        dy = r.torso[1] - (r.win_y + r.win_h / 2.0)
        offsets.append(math.hypot(dx, dy) / r.win_w)
        inside.append(abs(dx) <= r.win_w / 2.0 and abs(dy) <= r.win_h / 2.0)
    duration_min = max(float(t[-1]), 1e-9) / 60.0
    g = result.geometry
    return {
        "video": result.info.path.name,
        "source": f"{g.source_w}x{g.source_h}",
        "window": f"{g.win_w}x{g.win_h}",
        "px_per_deg": round(g.ppd, 3),
        "frames": n,
        "duration_s": round(float(t[-1]), 3),
        "followed_pct": round(100.0 * float(np.mean(followed)), 2),
        "acquire_s": None if first is None else round(float(t[first]), 3),
        "offset_mean_w": round(float(np.mean(offsets)), 4) if offsets else None,
        "offset_p95_w": round(float(np.percentile(offsets, 95)), 4) if offsets else None,
        "torso_in_window_pct": round(100.0 * float(np.mean(inside)), 2) if inside else 0.0,
        "reversals_per_min": round(len(reversal_times(t, pan)) / duration_min, 2),
        "identity_switches": len(result.switches),
        "detections": result.detect_calls,
        "ms_per_frame": round(1000.0 * result.wall_s / n, 2),
        "detect_ms_mean": (
            round(1000.0 * result.detect_s / result.detect_calls, 2)
            if result.detect_calls
            else None
        ),
    }


SUMMARY_KEYS = (
    ("frames", "frames"),
    ("followed_pct", "followed %"),
    ("acquire_s", "acquire s"),
    ("offset_mean_w", "torso offset mean (window widths)"),
    ("offset_p95_w", "torso offset p95 (window widths)"),
    ("torso_in_window_pct", "torso in window % (of followed)"),
    ("reversals_per_min", "reversals/min"),
    ("identity_switches", "identity switches"),
    ("detections", "detections"),
    ("detect_ms_mean", "detect ms (mean)"),
    ("ms_per_frame", "ms per frame"),
)


def format_summary(report: dict[str, Any]) -> str:
    width = max(len(label) for _, label in SUMMARY_KEYS)
    head = (
        f"replay {report['video']} ({report['source']}, window {report['window']}, "
        f"{report['duration_s']:.1f} s)"
    )
    return "\n".join([head] + [f"  {lbl:<{width}}  {report[k]}" for k, lbl in SUMMARY_KEYS])


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def write_trace(rows: Sequence[ReplayRow], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        for r in rows:
            box = r.box or (None, None, None, None)
            torso = r.torso or (None, None)
            cells = (
                r.frame, r.t, r.win_x, r.win_y, r.win_w, r.win_h, r.followed_id, *box, *torso,
                r.pan_deg, r.tilt_deg, r.mode, r.tracks,
            )  # fmt: skip
            w.writerow([_cell(v) for v in cells])
