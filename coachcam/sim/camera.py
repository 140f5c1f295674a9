"""The simulated camera: a frame source whose frames carry the classroom's ground truth."""

from __future__ import annotations

from coachcam.clock import Clock
from coachcam.frame import Frame
from coachcam.geometry import Intrinsics
from coachcam.sim.render import render_view
from coachcam.sim.world import Classroom, Truth
from motor.sim import SimServos


class SimCamera:
    """Delivers frames at ``fps`` on the injected clock until ``duration_s`` has passed.

    With a ``FakeClock`` the simulation runs as fast as it can compute; with the real clock it
    runs in real time. The camera's true pointing comes from the simulated servos.
    """

    def __init__(
        self,
        classroom: Classroom,
        servos: SimServos,
        clock: Clock,
        width: int,
        height: int,
        fps: float,
        duration_s: float,
        render: bool = False,
        hfov_deg: float = 66.0,
        lores_width: int = 640,
    ) -> None:
        self.classroom = classroom
        self.servos = servos
        self.clock = clock
        self.width, self.height = width, height
        self.period = 1.0 / fps
        self.duration = duration_s
        self.index = 0
        self.t0: float | None = None
        self.render = render
        self.intr = Intrinsics(width, height, hfov_deg)
        self.lores_width = lores_width

    def read(self) -> Frame | None:
        now = self.clock.now()
        if self.t0 is None:
            self.t0 = now
        t_next = self.t0 + self.index * self.period
        if t_next > self.t0 + self.duration + 1e-9:
            return None
        self.clock.wait(t_next - now)
        t = self.clock.now()
        pan, tilt = self.servos.true_position()
        truth = Truth(
            t=t,
            cam_pan=pan,
            cam_tilt=tilt,
            people=self.classroom.people_at(t - self.t0),
            teacher_id=self.classroom.teacher_id,
            occluders=tuple(self.classroom.scenario.occluders),
        )
        image = lores = None
        if self.render:
            import cv2

            image = render_view(truth, self.intr, self.classroom.hues)
            lh = round(self.height * self.lores_width / self.width)
            lores = cv2.resize(image, (self.lores_width, lh), interpolation=cv2.INTER_AREA)
        frame = Frame(self.index, t, self.width, self.height, image, lores, truth)
        self.index += 1
        return frame

    def close(self) -> None:
        pass
