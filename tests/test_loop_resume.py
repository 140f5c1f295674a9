"""The frame loop through a servo fault: when the servos come back, the controller resumes from
where the head was left, and the head moves at most at the speed limit (issue 9, item 6)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from motor_helpers import FlakyServos

from coachcam.clock import FakeClock
from coachcam.daemon import FrameLoop
from coachcam.frame import Frame
from motor.config import MotorConfig
from motor.controller import RoomController
from motor.servo import PanTiltHead
from tracker.tracker import Aim
from tracker.types import Detections, Roi

M = MotorConfig()
FPS = 30.0


class Frames:
    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.index = clock, 0

    def read(self) -> Frame:
        self.clock.advance(1 / FPS)
        self.index += 1
        return Frame(self.index, self.clock.now(), 64, 48)

    def close(self) -> None:
        pass


class NoDetections:
    def submit(self, frame: Frame, rois: Sequence[Roi] = ()) -> bool:
        return True

    def poll(self) -> list[Detections]:
        return []

    def close(self) -> None:
        pass


class Teacher:
    """A tracker that follows a teacher standing at ``pan``."""

    teacher_id = 1

    def __init__(self) -> None:
        self.pan = 30.0

    def aim(self, now: float) -> Aim:
        return Aim("follow", self.pan, 0.0, t_ref=now - 0.12, track_id=1)


def test_servos_back_after_a_fault_resume_without_a_jump() -> None:
    clock = FakeClock()
    servos = FlakyServos(clock)
    vmax = M.control.max_speed_deg_s
    head = PanTiltHead(servos, M.pan, M.tilt, clock, max_speed_deg_s=vmax)
    teacher = Teacher()
    ctrl = RoomController(M.control, M.pan, M.tilt, 15.0, M.park_speed_deg_s)
    loop = FrameLoop(Frames(clock), NoDetections(), teacher, ctrl, head, clock)  # type: ignore[arg-type]
    head.command(M.pan.home_deg, M.tilt.home_deg)
    for _ in range(int(3 * FPS)):
        loop.step()
    before = head.commanded
    assert before is not None and abs(before[0] - 30.0) < 2.0
    servos.gone = True  # unplugged for 5 s; meanwhile the teacher walks to the other side
    teacher.pan = -60.0
    for _ in range(int(5 * FPS)):
        loop.step()
    assert loop.servo_fault is not None
    servos.gone = False  # what the daemon does when a reconnect works (robot._retry_servos)
    loop.servo_fault = None
    loop.interrupt()
    n_before = len(servos.writes)
    for _ in range(int(2 * FPS)):
        loop.step()
    first = servos.writes[n_before]
    assert abs(first[1] - before[0]) <= vmax / FPS + 1e-6, first
    for (t0, p0, q0), (t1, p1, q1) in itertools.pairwise(servos.writes):
        assert abs(p1 - p0) <= vmax * (t1 - t0) + 1e-6 and abs(q1 - q0) <= vmax * (t1 - t0) + 1e-6
    assert servos.writes[-1][1] < 0.0  # and it went on following
