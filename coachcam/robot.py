"""The robot: every part wired from the config, and the loop ``coachcam run`` runs.

The parts are chosen here, in one place: the frame source (``[camera] source``), the pose detector
(``[tracker] detector``), the servo driver (``[motor] driver``) and the video outputs
(``[stream]``). ``coachcam run`` with the default config runs the simulated classroom in real
time (camera, perception and servos simulated), which is how the daemon is tested end to end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coachcam.clock import Clock
from coachcam.config import Config
from coachcam.control import ControlServer
from coachcam.daemon import FrameLoop, FrameSink
from coachcam.errors import CameraError, ServoError
from coachcam.frame import Frame, FrameSource
from coachcam.geometry import Intrinsics
from coachcam.health import Health, HealthReporter, Person
from coachcam.memory import HeapTrimmer
from coachcam.trace import RowMaker, TraceWriter, robot_row
from coachcam.wiring import assemble
from motor.servo import PanTiltHead, ServoBackend
from tracker.tracker import Tracker
from tracker.types import Pose, PoseDetector

log = logging.getLogger(__name__)

# How often a lost camera / servo controller is tried again. The camera's is short because
# every moment it is not read is video lost (a 5 s gap lost ~6 s at 2 s); the servos' is
# longer because each failed open of a serial port logs and takes its own time-out.
CAMERA_RETRY_S = 0.5
SERVO_RETRY_S = 2.0
SIM_RECORDS = 1000  # the simulated servos' records the daemon keeps (it reads none)
FOLLOWING_WORDS = {
    "follow": "following teacher",
    "coast": "following teacher (predicting)",
    "hold": "teacher lost, holding",
    "search": "searching for the teacher",
    "home": "teacher lost, at home position",
    "idle": "looking for the teacher",
}


def recent_poses(tracker: Tracker, frame: Frame) -> tuple[list[Pose], int | None]:
    """The poses the privacy filter should consider for ``frame``: every track seen in the last
    half second, and which of them is the teacher (``StreamSink``'s ``faces`` hook)."""
    poses: list[Pose] = []
    teacher: int | None = None
    for tr in tracker.tracks.values():
        if tr.last is None or frame.t_capture - tr.t_last > 0.5:
            continue
        if tr.id == tracker.teacher_id:
            teacher = len(poses)
        poses.append(tr.last.pose)
    return poses, teacher


class HeadPointing:
    """Where a head over a real servo driver points now, from its recorded history (no I/O)."""

    def __init__(self, head: PanTiltHead) -> None:
        self.head = head

    def true_position(self) -> tuple[float, float]:
        return self.head.pointing_at(self.head.clock.now())


@dataclass
class Robot:
    """The running robot: its ``FrameLoop`` (which holds the source, the tracker, the head and
    the sinks) and what the daemon needs beside it."""

    cfg: Config
    clock: Clock
    loop: FrameLoop
    streamer: Any = None
    # A fresh, unopened driver for reconnecting (a closed one stays closed); None for sim servos.
    new_servos: Callable[[], ServoBackend] | None = None
    trace_row: RowMaker = robot_row  # ``--trace``'s rows (with ground truth from the sim camera)

    @property
    def source(self) -> FrameSource:
        return self.loop.source

    @property
    def tracker(self) -> Tracker:
        return self.loop.tracker

    @property
    def head(self) -> PanTiltHead:
        return self.loop.head

    def close(self) -> None:
        self.loop.close()


@dataclass
class Camera:
    """The frame source ``[camera] source`` names and what goes with it (``open_camera``)."""

    source: FrameSource
    detector: PoseDetector
    latency_s: float | None  # None: the detector runs on a worker thread (see ``assemble``)
    crops: bool  # the detector looks at a crop around the teacher (the MediaPipe landmarker)
    trace_row: RowMaker = robot_row
    encoder_class: Callable[..., Any] | None = None  # None: the stream's own


def open_camera(
    cfg: Config, clock: Clock, head: PanTiltHead, intr: Intrinsics, undo: contextlib.ExitStack
) -> Camera:
    """Open the frame source and the pose detector ``[camera] source`` calls for (closed by
    ``undo`` if a later part fails). The one place the daemon chooses between the simulated
    classroom and a real camera."""
    if cfg.camera.source != "sim":
        from stream.sources import open_source
        from tracker.mediapipe_detector import MediaPipePoseDetector

        detector = MediaPipePoseDetector(cfg.tracker, clock=clock).open()
        undo.callback(detector.close)
        source: Any = open_source(cfg.camera, clock=clock)
        source.start()
        undo.callback(source.close)
        # crops around the teacher extend the model's range (see MediaPipePoseDetector)
        return Camera(source, detector, None, crops=True)
    # The simulated classroom (``camera.source = 'sim'``, the default): the daemon's one use of
    # the simulator (its camera, oracle, world and ground-truth trace rows), so it is imported
    # here, lazily, and nowhere else in the daemon (``preflight`` only loads the scenario file).
    from coachcam.sim.camera import SimCamera
    from coachcam.sim.oracle import OracleDetector
    from coachcam.sim.run import trace_row
    from coachcam.sim.scenario import load_scenario
    from coachcam.sim.world import Classroom
    from motor.sim import SimServos

    scenario = load_scenario(cfg.sim.scenario)
    room = Classroom(scenario, cfg.camera.height_m, cfg.sim.seed)
    # Real (or emulated) servos in front of the simulated classroom: the camera points where
    # the head last read back or was commanded.
    pointing = head.backend if isinstance(head.backend, SimServos) else HeadPointing(head)
    source = SimCamera(
        room, pointing, clock, intr.width, intr.height, cfg.camera.fps,
        duration_s=float("inf"), render=cfg.stream.enabled,
        hfov_deg=intr.hfov_deg, lores_width=cfg.camera.lores_width,
        faults=cfg.sim.faults,
    )  # fmt: skip
    oracle = OracleDetector(intr, cfg.sim, room.occluder_boxes(), cfg.camera.height_m, cfg.sim.seed)
    encoder_class = None
    if cfg.sim.faults.encoder_errors_at_s:
        from coachcam.sim.faults import FaultyEncoder

        errors = cfg.sim.faults.encoder_errors_at_s
        encoder_class = functools.partial(FaultyEncoder, errors_at_s=errors)
    latency = cfg.sim.inference_ms / 1000.0
    return Camera(
        source, oracle, latency, crops=False, trace_row=trace_row, encoder_class=encoder_class
    )


def build_robot(cfg: Config, clock: Clock, *, calibration: str | None = None) -> Robot:
    """Open every part (camera, model, servos, outputs). Raises a CoachcamError on failure."""
    from coachcam.preflight import preflight
    from motor.drivers import make_backend, make_head
    from motor.sim import SimServos

    cfg, cal = preflight(cfg, calibration)  # every check `coachcam config` makes, no hardware
    intr = Intrinsics(cfg.camera.width, cfg.camera.height, cfg.camera.hfov_deg)
    with contextlib.ExitStack() as undo:
        head = make_head(cfg, clock, cal)
        undo.callback(head.close)
        if isinstance(head.backend, SimServos):
            # bench/soak.py: the records grew the daemon by 1 MiB a minute
            head.backend.keep_last(SIM_RECORDS)
        camera = open_camera(cfg, clock, head, intr, undo)
        sinks: list[FrameSink] = []
        streamer = None
        if cfg.stream.enabled:
            from stream.pipeline import Streamer, StreamSink

            kwargs: dict[str, Any] = {}
            if camera.encoder_class is not None:
                kwargs["encoder_class"] = camera.encoder_class
            streamer = Streamer(
                cfg.stream, intr.width, intr.height, cfg.camera.fps, clock=clock, **kwargs
            )
            streamer.start()
            sinks.append(StreamSink(streamer, recent_poses))
        loop = assemble(
            cfg, clock, source=camera.source, detector=camera.detector, head=head,
            intrinsics=intr, camera_height_m=cfg.camera.height_m, latency_s=camera.latency_s,
            sinks=sinks, crops=camera.crops,
        )  # fmt: skip
        new_servos = None
        if not isinstance(head.backend, SimServos):

            def new_servos() -> ServoBackend:
                return make_backend(cfg, clock, cal, open_now=False)

        undo.pop_all()
    return Robot(cfg, clock, loop, streamer, new_servos, camera.trace_row)


def run_robot(
    robot: Robot,
    health: HealthReporter,
    stop: threading.Event,
    *,
    seconds: float | None = None,
    control_socket: Path | None = None,
    trace: TraceWriter | None = None,
) -> None:
    """The daemon's loop: until ``stop`` is set (SIGTERM), the source ends or ``seconds`` pass.
    ``trace`` gets one row per frame (``coachcam run --trace``).

    A lost camera is reopened every ``CAMERA_RETRY_S`` (the servos park meanwhile); a lost servo
    controller is reopened likewise while the video goes on. Both show in ``STATUS=``; while
    either lasts, the watchdog is not fed, so a fault that does not clear gets the service
    restarted by systemd.
    """
    control = None
    if control_socket is not None:
        control = ControlServer(control_socket).open()
    try:
        _run(robot, health, stop, seconds, control, trace)
    finally:
        if control is not None:
            control.close()


def handle_request(robot: Robot, request: dict[str, Any]) -> str:
    """A control request (see coachcam/control.py) applied to the running robot."""
    tracker, now = robot.tracker, robot.clock.now()
    who = request["retarget"]
    if who == "centre":
        pan, tilt = robot.head.pointing_at(now)
        tid = tracker.retarget_centre(pan, tilt, now)
        return "error: nobody is in view" if tid is None else f"following track {tid}"
    if isinstance(who, int) and not isinstance(who, bool):
        tracker.retarget(who, now)
        return f"following track {who}"
    raise ValueError(f"retarget: expected a track id or 'centre', not {who!r}")


def people(tracker: Tracker, now: float) -> tuple[Person, ...]:
    """The confirmed tracks as fields for the state file (``coachcam status`` renders them)."""
    out = []
    for tr in sorted(tracker.tracks.values(), key=lambda t: t.id):
        if tr.hits < tracker.cfg.confirm_hits:
            continue
        posture = "standing" if tr.standing else "seated" if tr.posture_known else "unknown"
        pan, tilt = (float(v) for v in tr.filt.x[:2])
        is_teacher = tr.id == tracker.teacher_id
        out.append(Person.at(tr.id, is_teacher, pan, tilt, posture, now - tr.t_updated))
    return tuple(out[:12])


def _run(
    robot: Robot,
    health: HealthReporter,
    stop: threading.Event,
    seconds: float | None,
    control: ControlServer | None,
    trace: TraceWriter | None = None,
) -> None:
    clock, loop = robot.clock, robot.loop
    intr = robot.tracker.intr  # build_robot's, the picture the trace rows are made in

    def handle(request: dict[str, Any]) -> str:
        try:
            return handle_request(robot, request)
        except KeyError as exc:  # Tracker.retarget: no such track
            return f"error: {exc.args[0] if exc.args else exc}"

    robot.head.soft_start()
    health.ready(Health("starting", servo_ok=True))
    trimmer = HeapTrimmer(clock)
    t_start = clock.now()
    frames: deque[float] = deque()
    camera_lost_at: float | None = None
    servo_retry_at = 0.0
    while not stop.is_set():
        now = clock.now()
        if seconds is not None and now - t_start >= seconds:
            break
        try:
            step = loop.step()
        except CameraError as exc:
            if camera_lost_at is None:
                camera_lost_at = now
                log.error("camera lost: %s; parking, retrying every %.1f s", exc, CAMERA_RETRY_S)
                with contextlib.suppress(ServoError):
                    robot.head.park()
                loop.interrupt()  # the controller resumes from the park position
            live, report = _stream_facts(robot.streamer)
            health.update(
                Health("camera lost", 0.0, live, 0, loop.servo_fault is None, stream=report)
            )
            if control is not None:
                control.poll(handle)  # retarget is answered while the camera is away, too
            stop.wait(CAMERA_RETRY_S)
            with contextlib.suppress(CameraError):
                _reopen(robot.source)
            continue
        if step is None:
            log.info("the frame source ended")
            break
        if trace is not None:
            trace.write(robot.trace_row(step, robot.tracker, intr))
        if camera_lost_at is not None:
            log.warning("camera back after %.1f s", clock.now() - camera_lost_at)
            camera_lost_at = None
        health.frame_done()
        trimmer.poll()
        if loop.servo_fault is None:
            health.control_done()
        elif now >= servo_retry_at:
            servo_retry_at = now + SERVO_RETRY_S
            _retry_servos(robot)
        if control is not None:
            control.poll(handle)
        frames.append(now)
        while now - frames[0] >= 2.0:
            frames.popleft()
        # built only when it is published (once a second), after the step: not before its updates
        health.update(functools.partial(_health, robot, step.aim.mode, frames))


def _health(robot: Robot, mode: str, frames: Sequence[float]) -> Health:
    """The running loop's ``Health``: ``mode`` in words, the frame rate over ``frames`` (the
    capture times of the last 2 s), the stream, the servos and the people in view."""
    fps = (len(frames) - 1) / (frames[-1] - frames[0]) if len(frames) > 1 else 0.0
    live, report = _stream_facts(robot.streamer)
    return Health(
        FOLLOWING_WORDS.get(mode, mode),
        fps,
        live,
        _pending(robot.streamer),
        robot.loop.servo_fault is None,
        people(robot.tracker, robot.clock.now()),
        stream=report,
    )


def _reopen(source: FrameSource) -> None:
    with contextlib.suppress(Exception):
        source.close()
    source.start()


def _retry_servos(robot: Robot) -> None:
    """Let go of the failed driver and try a fresh one (a closed driver stays closed)."""
    head = robot.head
    with contextlib.suppress(Exception):
        _let_go(head.backend)
    try:
        if robot.new_servos is not None:
            head.backend = robot.new_servos()
        head.backend.open()
        head.sample()
    except ServoError as exc:
        log.warning("servos still unavailable: %s", exc)
        return
    log.warning("servos back")
    robot.loop.servo_fault = None
    robot.loop.interrupt()


def _let_go(backend: ServoBackend) -> None:
    """Close without parking: a failed controller cannot park, and its command watchdog must
    not keep trying (each try would log a traceback)."""
    backend.close(park=False)


def _stream_facts(streamer: Any) -> tuple[bool, dict[str, str] | None]:
    """From one ``Streamer.status()``: streaming (the server accepted the publish, not
    "enabled"), and what the stream says is happening (live: connected / refused /
    unreachable / off, and the recording) in words, for STATUS= and the state file."""
    if streamer is None:
        return False, None
    from stream.pipeline import status_report

    st = streamer.status()
    return st["live"] == "connected", status_report(st)


def _pending(streamer: Any) -> int:
    if streamer is None or streamer.backfill is None:
        return 0
    return int(getattr(streamer.backfill, "pending_count", lambda: 0)())
