"""The simulated camera: a frame source whose frames carry the classroom's ground truth."""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Protocol

from coachcam.clock import Clock
from coachcam.errors import CameraError
from coachcam.frame import Frame
from coachcam.geometry import Intrinsics
from coachcam.sim.render import render_view
from coachcam.sim.world import Classroom, Truth

if TYPE_CHECKING:
    from coachcam.config import SimFaultsConfig

log = logging.getLogger(__name__)


class Pointing(Protocol):
    """Where the camera truly points: ``SimServos``, or the daemon's view of a real head."""

    def true_position(self) -> tuple[float, float]: ...


class SimCamera:
    """Delivers frames at ``fps`` on the injected clock until ``duration_s`` has passed.

    With a ``FakeClock`` the simulation runs as fast as it can compute; with the real clock it
    runs in real time. The camera's true pointing comes from the simulated servos.

    ``faults`` (``[sim.faults]``) makes it fail for a while (``read`` raises ``CameraError``,
    then frames resume from the present, as a reconnected camera's do) or hang for good.
    """

    def __init__(
        self,
        classroom: Classroom,
        servos: Pointing,
        clock: Clock,
        width: int,
        height: int,
        fps: float,
        duration_s: float,
        render: bool = False,
        hfov_deg: float = 66.0,
        lores_width: int = 640,
        faults: SimFaultsConfig | None = None,
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
        self.faults = faults
        self._lost = False
        self._hang = threading.Event()  # never set: what a hung driver call looks like

    def _inject(self, now: float, t0: float) -> None:
        f = self.faults
        if f is None:
            return
        if 0.0 < f.hang_at_s <= now - t0:
            log.error("sim fault: the camera hangs (%.1f s after its first frame)", f.hang_at_s)
            self._hang.wait()
        start, end = f.camera_gap_s
        if start < end and start <= now - t0 < end:
            self._lost = True
            raise CameraError(f"simulated camera unplugged ({start:g}-{end:g} s)")
        if self._lost:  # back: frames resume from now, not with a burst of the missed ones
            self._lost = False
            self.index = max(self.index, math.ceil((now - t0) / self.period))

    def start(self) -> None:
        """Nothing to open (``FrameSource``)."""

    def read(self) -> Frame | None:
        now = self.clock.now()
        if self.t0 is None:
            self.t0 = now
        self._inject(now, self.t0)
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
