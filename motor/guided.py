"""The guided (interactive) servo calibration a technician runs with ``coachcam calibrate axis
--guided``: centre trim, direction, pulse width per degree and mechanical limits of one axis.

Finding the limits may go past the config's degree limits (that is what it measures), never past
the servo's pulse range (``min_us``/``max_us``). Every move is small and slow (``speed_deg_s``,
in steps on the injected clock). At any prompt
``s`` (or Ctrl-C) stops at once: the caller releases the servos and nothing is saved. Prompts
and output go through ``ask``/``say`` so tests can script a session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coachcam.clock import Clock
from motor.calibration import AxisMap, Calibration, axis_map
from motor.config import MotorConfig

log = logging.getLogger(__name__)

STOP_WORDS = {"s", "stop"}


class Stop(Exception):
    """The technician asked to stop at once."""


@dataclass
class GuidedSession:
    backend: Any  # a ServoBackend; set_axis_map is used where the driver has it
    motor: MotorConfig
    cal: Calibration
    clock: Clock
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print
    speed_deg_s: float = 15.0
    step_s: float = 0.02
    trim_step_us: float = 5.0
    limit_step_deg: float = 2.0
    scale_probe_deg: float = 20.0
    pos: list[float] = field(default_factory=lambda: [0.0, 0.0])

    # -- plumbing -----------------------------------------------------------------------------
    def _axis_cfg(self, i: int) -> Any:
        return self.motor.pan if i == 0 else self.motor.tilt

    def _map(self, i: int, wide: bool = False) -> AxisMap:
        name = ("pan", "tilt")[i]
        m = axis_map(self._axis_cfg(i), self.cal.axis(name))
        if wide:  # finding the limits: only the pulse-width limits hold
            a, b = sorted((m.to_deg(m.min_us), m.to_deg(m.max_us)))
            m = AxisMap(a, b, min(b, max(a, m.home_deg)), m.centre_us, m.us_per_deg,
                        m.direction, m.min_us, m.max_us)  # fmt: skip
        return m

    def _push(self, i: int, wide: bool = False) -> AxisMap:
        m = self._map(i, wide)
        if hasattr(self.backend, "set_axis_map"):
            self.backend.set_axis_map(i, m)
        return m

    def prompt(self, text: str) -> str:
        answer = self.ask(text).strip()
        if answer.lower() in STOP_WORDS:
            raise Stop()
        return answer

    def move_to(self, i: int, deg: float) -> None:
        """Slowly, in small steps, to ``deg`` on axis ``i`` (the other axis holds)."""
        start = self.pos[i]
        n = max(1, math.ceil(abs(deg - start) / (self.speed_deg_s * self.step_s)))
        for k in range(1, n + 1):
            self.pos[i] = start + (deg - start) * k / n
            self.backend.write(self.pos[0], self.pos[1])
            self.clock.wait(self.step_s)

    def _update(self, i: int, **changes: Any) -> None:
        self.cal = self.cal.with_axis(("pan", "tilt")[i], **changes)

    # -- the steps ----------------------------------------------------------------------------
    def centre(self, i: int) -> None:
        name = ("pan", "tilt")[i]
        self._push(i)
        self.move_to(i, 0.0)
        self.say(f"{name}: the camera should now point straight ahead" +
                 (" and level." if i == 1 else "."))  # fmt: skip
        while True:
            c = self.cal.axis(name)
            ans = self.prompt(
                f"  centre {c.centre_us:.0f} us. '+'/'-' nudge {self.trim_step_us:g} us, "
                "'++'/'--' five times that, Enter = it is straight, s = stop: "
            )
            if not ans:
                return
            steps = {"+": 1, "-": -1, "++": 5, "--": -5}.get(ans)
            if steps is None:
                self.say("  (type +, -, ++, -- or press Enter)")
                continue
            self._update(i, centre_us=c.centre_us + steps * self.trim_step_us)
            self._push(i)
            self.backend.write(self.pos[0], self.pos[1])

    def direction(self, i: int) -> None:
        name = ("pan", "tilt")[i]
        way = "RIGHT (as seen from behind the camera)" if i == 0 else "UP"
        self._push(i)
        self.move_to(i, 5.0)
        ans = self.prompt(f"{name}: moved +5 deg. Did the camera turn {way}? [y/n, s = stop]: ")
        self.move_to(i, 0.0)  # back first: flipping in place would jump to the mirror position
        if ans.lower().startswith("n"):
            self._update(i, direction=-self.cal.axis(name).direction)
            self._push(i)
            self.say(f"  {name} direction reversed.")

    def scale(self, i: int) -> None:
        name = ("pan", "tilt")[i]
        probe = self.scale_probe_deg
        m = self._push(i)
        if not m.min_deg <= probe <= m.max_deg:
            probe = m.max_deg * 0.8
        self.move_to(i, probe)
        ans = self.prompt(
            f"{name}: should have turned {probe:g} deg from straight ahead. Measure it "
            f"(protractor or phone level) and type the real angle (Enter = {probe:g}, s = stop): "
        )
        self.move_to(i, 0.0)  # back first: a new scale in place would jump
        if ans:
            try:
                real = float(ans)
            except ValueError:
                real = probe
                self.say("  (not a number: keeping the pulse width per degree)")
            if real > 0.5:
                c = self.cal.axis(name)
                self._update(i, us_per_deg=c.us_per_deg * probe / real)
                self._push(i)

    def limits(self, i: int) -> None:
        name = ("pan", "tilt")[i]
        found = []
        for side, sign in (("lower (left)" if i == 0 else "lower (down)", -1.0),
                           ("upper (right)" if i == 0 else "upper (up)", 1.0)):  # fmt: skip
            m = self._push(i, wide=True)
            self.say(
                f"{name}: finding the {side} limit. Enter moves {self.limit_step_deg:g} deg "
                "further; type 'ok' where it may go no further (cables free, nothing touching)."
            )
            while True:
                ans = self.prompt(f"  at {self.pos[i]:+.1f} deg [Enter/ok/s]: ")
                if ans.lower() == "ok":
                    found.append(self.pos[i])
                    break
                nxt = self.pos[i] + sign * self.limit_step_deg
                if not m.min_deg <= nxt <= m.max_deg:
                    self.say("  that is the end of the servo's pulse range.")
                    found.append(self.pos[i])
                    break
                self.move_to(i, nxt)
            self.move_to(i, 0.0)
        lo, hi = sorted(found)
        if hi - lo < 1.0:
            self.say(f"  limits {lo:+.1f}..{hi:+.1f} are too close together: kept the old ones.")
        else:
            self._update(i, min_deg=round(lo, 2), max_deg=round(hi, 2))
        self._push(i)

    def run(
        self, i: int, steps: tuple[str, ...] = ("centre", "direction", "scale", "limits")
    ) -> Calibration:
        for step in steps:
            getattr(self, step)(i)
        self.move_to(i, 0.0)
        return self.cal
