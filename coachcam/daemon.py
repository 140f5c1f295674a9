"""The frame loop the robot runs, in simulation and on the Pi alike.

One step per captured frame: record where the head points, fold in any finished pose
detections (converted to room bearings with the pointing *at their capture time*), hand the
frame to the detector if it is idle, ask the tracker where to aim and the controller how to
move, command the servos, and pass the frame to the video outputs. Nothing here waits on the
network or on the pose model: inference runs beside the loop (``ThreadedInference``) or, in
simulation, on the simulated clock (``ScheduledInference``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from coachcam.clock import Clock
from coachcam.errors import ServoError
from coachcam.frame import Frame, FrameSource
from motor.controller import Controller
from motor.servo import PanTiltHead
from tracker.tracker import Aim, Tracker
from tracker.types import Detections, PoseDetector, Roi

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Where frames go after control: the encoder and its outputs."""

    def write(self, frame: Frame, aim: Aim, tracker: Tracker) -> None: ...

    def close(self) -> None: ...


class Inference(Protocol):
    def submit(self, frame: Frame, rois: Sequence[Roi] = ()) -> bool:
        """Start detecting on ``frame`` if idle; ``False`` if busy (the frame is skipped)."""
        ...

    def poll(self) -> list[Detections]:
        """Detections finished since the last poll."""
        ...

    def close(self) -> None: ...


class ScheduledInference:
    """A detector whose result becomes available ``latency_s`` after capture, on the injected
    clock; one frame at a time, like a model that takes that long on one core."""

    def __init__(self, detector: PoseDetector, latency_s: float, clock: Clock) -> None:
        self.detector = detector
        self.latency = latency_s
        self.clock = clock
        self._pending: tuple[float, Detections] | None = None

    def submit(self, frame: Frame, rois: Sequence[Roi] = ()) -> bool:
        if self._pending is not None:
            return False
        dets = self.detector.detect(frame, rois)
        self._pending = (frame.t_capture + self.latency, dets)
        return True

    def poll(self) -> list[Detections]:
        if self._pending is None or self.clock.now() < self._pending[0] - 1e-9:
            return []
        ready, dets = self._pending
        self._pending = None
        return [
            Detections(dets.t_capture, dets.frame_index, dets.poses, dets.width, dets.height, ready)
        ]

    def close(self) -> None:
        self.detector.close()


class ThreadedInference:
    """Runs a real detector on a worker thread; the loop never waits for it."""

    def __init__(self, detector: PoseDetector, clock: Clock) -> None:
        self.detector = detector
        self.clock = clock
        self._in: queue.Queue[tuple[Frame, Sequence[Roi]] | None] = queue.Queue(maxsize=1)
        self._out: queue.Queue[Detections | BaseException] = queue.Queue()
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None

    def _work(self) -> None:
        while (item := self._in.get()) is not None:
            frame, rois = item
            try:
                d = self.detector.detect(frame, rois)
                self._out.put(
                    Detections(
                        d.t_capture, d.frame_index, d.poses, d.width, d.height, self.clock.now()
                    )
                )
            except BaseException as exc:  # handed to the loop, which decides
                self._out.put(exc)
            finally:
                self._busy.clear()

    def submit(self, frame: Frame, rois: Sequence[Roi] = ()) -> bool:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="pose", daemon=True)
            self._thread.start()
        if self._busy.is_set():
            return False
        self._busy.set()
        self._in.put((frame, rois))
        return True

    def poll(self) -> list[Detections]:
        out: list[Detections] = []
        while True:
            try:
                item = self._out.get_nowait()
            except queue.Empty:
                return out
            if isinstance(item, BaseException):
                raise item
            out.append(item)

    def close(self) -> None:
        if self._thread is not None:
            self._in.put(None)
            self._thread.join(timeout=5.0)
            self._thread = None
        self.detector.close()


@dataclass(frozen=True, slots=True)
class Step:
    """What one loop step did (the simulation's report is built from these)."""

    frame: Frame
    t: float
    aim: Aim
    command: tuple[float, float]
    latencies: tuple[float, ...]  # capture → this command, for detections applied this step
    position: tuple[float, float] | None = None  # where the head was (read-back, else command)
    track_id: int | None = None  # the tracker's id of the followed track

    @property
    def latency_ms(self) -> float | None:
        """The trace's ``latency_ms``: the longest of ``latencies``, None without detections."""
        return max(self.latencies) * 1000.0 if self.latencies else None


class FrameLoop:
    def __init__(
        self,
        source: FrameSource,
        inference: Inference,
        tracker: Tracker,
        controller: Controller,
        head: PanTiltHead,
        clock: Clock,
        sinks: Sequence[FrameSink] = (),
        rois: Callable[[Tracker, float], Sequence[Roi]] | None = None,
    ) -> None:
        self.source = source
        self.inference = inference
        self.tracker = tracker
        self.controller = controller
        self.head = head
        self.clock = clock
        self.sinks = list(sinks)
        self.rois = rois
        self.servo_fault: ServoError | None = None
        self._resume = True  # the controller starts (again) from where the head is

    def interrupt(self) -> None:
        """Control was interrupted (camera lost, the head parked, servos reconnected): the next
        step resumes the controller from where the head is instead of carrying on."""
        self._resume = True

    def step(self) -> Step | None:
        frame = self.source.read()
        if frame is None:
            return None
        now = self.clock.now()
        position = None
        if self.servo_fault is None:
            try:
                position = self.head.sample()
            except ServoError as exc:
                log.error("servos stopped: %s", exc)
                self.servo_fault = exc
        captures = []
        for dets in self.inference.poll():
            pan, tilt = self.head.pointing_at(dets.t_capture)
            self.tracker.update(dets, pan, tilt, now)
            captures.append(dets.t_capture)
        self.inference.submit(frame, self.rois(self.tracker, now) if self.rois else ())
        aim = self.tracker.aim(now)
        head = self.head
        current = head.commanded or (head.pan_axis.home_deg, head.tilt_axis.home_deg)
        cmd = current
        try:
            if self.servo_fault is None:
                if self._resume:
                    self.controller.reset(now, current)
                    self._resume = False
                cmd = head.command(*self.controller.update(now, aim, current))
        except ServoError as exc:
            # The video must go on without the servos: report, and let the daemon reconnect.
            log.error("servos stopped: %s", exc)
            self.servo_fault = exc
        if self.servo_fault is not None:
            self._resume = True
        for sink in self.sinks:
            sink.write(frame, aim, self.tracker)
        t_cmd = self.clock.now()
        track = self.tracker.teacher_id if aim.mode in ("follow", "coast") else None
        latencies = tuple(t_cmd - t for t in captures)
        return Step(frame, now, aim, cmd, latencies, position, track)

    def close(self) -> None:
        """Stop everything; the servos park (``PanTiltHead.close``). Safe to call twice."""
        parts: list[FrameSink | Inference | FrameSource] = [
            *self.sinks,
            self.inference,
            self.source,
        ]
        for part in parts:
            try:
                part.close()
            except Exception:
                log.exception("error while closing %s", type(part).__name__)
        self.head.close()
