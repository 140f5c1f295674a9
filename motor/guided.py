"""The guided (interactive) servo calibration a technician runs with ``coachcam calibrate axis
--guided``: centre trim, direction, pulse width per degree and mechanical limits of one axis.

Finding the limits may go past the config's degree limits (that is what it measures), never past
the servo's pulse range (``min_us``/``max_us``). Every move is small and slow (``speed_deg_s``,
in steps on the injected clock). At any prompt ``s`` stops at once (``Stop``: the caller
releases the servos); the end of input is ``EndOfInput`` and the caller parks the head slowly
with ``park()`` (as for Ctrl-C). Answers are strict: y/yes/n/no, numbers finite and in range,
asked again otherwise. Prompts and output go through ``ask``/``say`` so tests script a session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coachcam.clock import Clock
from coachcam.errors import CalibrationError
from motor.calibration import US_PER_DEG_RANGE, AxisMap, Calibration, axis_map
from motor.config import MotorConfig
from motor.watchdog import WatchedServos

log = logging.getLogger(__name__)

STOP_WORDS = {"s", "stop"}
YES, NO = {"y", "yes"}, {"n", "no"}
# Found limits narrower than this are refused: pan must turn far enough to follow a teacher
# across the room (a third of the 66 deg view either way), tilt to frame standing and sitting.
MIN_SPAN_DEG = {"pan": 20.0, "tilt": 10.0}
# A measured scale probe outside [probe / 3, probe * 3] is a misreading, not a servo.
SCALE_FACTOR = 3.0


class Stop(Exception):
    """The technician asked to stop at once."""


class EndOfInput(Exception):
    """The prompts' input ended (stdin closed, or Ctrl-D)."""


@dataclass
class GuidedSession:
    backend: Any  # a ServoBackend; a pulse driver (WatchedServos) gets the map being calibrated
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
        if isinstance(self.backend, WatchedServos):  # pulse drivers; the sim takes degrees
            self.backend.set_axis_map(i, m)
        return m

    def prompt(self, text: str) -> str:
        try:
            answer = self.ask(text).strip()
        except EOFError:
            raise EndOfInput() from None
        if answer.lower() in STOP_WORDS:
            raise Stop()
        return answer

    def yes_no(self, text: str) -> bool:
        """Only y/yes/n/no (any case) answer; anything else asks again."""
        while True:
            ans = self.prompt(text).lower()
            if ans in YES | NO:
                return ans in YES
            self.say("  (type y or n, or s to stop)")

    def number(self, text: str, lo: float, hi: float, default: float) -> float:
        """A finite number in [lo, hi] (Enter = ``default``); anything else asks again."""
        while True:
            ans = self.prompt(text)
            if not ans:
                return default
            try:
                value = float(ans)
            except ValueError:
                value = math.nan
            if math.isfinite(value) and lo <= value <= hi:
                return value
            self.say(f"  ({ans!r}: type the angle in degrees, from {lo:.3g} to {hi:.3g})")

    def park(self) -> None:
        """Slowly back to home on both axes, from wherever the session left the head."""
        for i in (0, 1):
            self.move_to(i, self._map(i).home_deg)

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
            try:
                self._update(i, centre_us=c.centre_us + steps * self.trim_step_us)
            except CalibrationError as exc:  # past what the file allows: say so, ask again
                self.say(f"  ({exc})")
                continue
            self._push(i)
            self.backend.write(self.pos[0], self.pos[1])

    def direction(self, i: int) -> None:
        name = ("pan", "tilt")[i]
        way = "RIGHT (as seen from behind the camera)" if i == 0 else "UP"
        self._push(i)
        self.move_to(i, 5.0)
        right = self.yes_no(f"{name}: moved +5 deg. Did the camera turn {way}? [y/n, s = stop]: ")
        self.move_to(i, 0.0)  # back first: flipping in place would jump to the mirror position
        if not right:
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
        c = self.cal.axis(name)
        # the new pulse width per degree must stay within what the calibration file allows
        k_lo, k_hi = US_PER_DEG_RANGE
        lo = max(probe / SCALE_FACTOR, c.us_per_deg * probe / k_hi)
        hi = min(probe * SCALE_FACTOR, c.us_per_deg * probe / k_lo * 0.999)
        real = self.number(
            f"{name}: should have turned {probe:g} deg from straight ahead. Measure it "
            f"(protractor or phone level) and type the real angle (Enter = {probe:g}, s = stop): ",
            lo,
            hi,
            probe,
        )
        self.move_to(i, 0.0)  # back first: a new scale in place would jump
        if real != probe:
            self._update(i, us_per_deg=c.us_per_deg * probe / real)
            self._push(i)

    def limits(self, i: int) -> None:
        """Find both limits; found again (with the reason) if they span too little or leave out
        home, where the head parks."""
        name = ("pan", "tilt")[i]
        home = self._axis_cfg(i).home_deg
        while True:
            lo = self._find_limit(i, "lower (left)" if i == 0 else "lower (down)", -1.0)
            hi = self._find_limit(i, "upper (right)" if i == 0 else "upper (up)", 1.0)
            problem = limits_problem(name, lo, hi, home)
            if problem is None:
                break
            self.say(f"  limits {lo:+.1f}..{hi:+.1f} refused: {problem}. Once more:")
        self._update(i, min_deg=round(lo, 2), max_deg=round(hi, 2))
        self._push(i)

    def _find_limit(self, i: int, side: str, sign: float) -> float:
        name = ("pan", "tilt")[i]
        m = self._push(i, wide=True)
        self.move_to(i, 0.0)  # every search starts straight ahead
        self.say(
            f"{name}: finding the {side} limit. Enter moves {self.limit_step_deg:g} deg "
            "further; type 'ok' where it may go no further (cables free, nothing touching)."
        )
        try:
            while True:
                ans = self.prompt(
                    f"  at {self.pos[i]:+.1f} deg [Enter = {self.limit_step_deg:g} deg further, "
                    "ok, a number = go to that angle, s = stop]: "
                )
                if ans.lower() == "ok":
                    return self.pos[i]
                if not ans:
                    nxt = self.pos[i] + sign * self.limit_step_deg
                    if not m.min_deg <= nxt <= m.max_deg:
                        self.say("  that is the end of the servo's pulse range.")
                        return self.pos[i]
                    self.move_to(i, nxt)
                    continue
                try:
                    goto = float(ans)
                except ValueError:
                    self.say(
                        f"  ({ans!r}: Enter = {self.limit_step_deg:g} deg further, ok = the limit "
                        "is here, a number = go to that angle, s = stop)"
                    )
                    continue
                if not math.isfinite(goto) or sign * goto < 0:
                    self.say(f"  ({ans} is not on the {side} side of straight ahead)")
                elif not m.min_deg <= goto <= m.max_deg:
                    self.say(
                        f"  ({ans} is past the end of the servo's pulse range, "
                        f"{m.min_deg:+.1f}..{m.max_deg:+.1f} deg)"
                    )
                else:
                    self.move_to(i, goto)
        finally:
            self.move_to(i, 0.0)

    def run(
        self, i: int, steps: tuple[str, ...] = ("centre", "direction", "scale", "limits")
    ) -> Calibration:
        for step in steps:
            getattr(self, step)(i)
        self.move_to(i, 0.0)
        self._update(i)  # confirmed as it was is calibrated too: the file gets the axis
        return self.cal


def limits_problem(name: str, lo: float, hi: float, home: float) -> str | None:
    """Why limits ``lo..hi`` of axis ``name`` are no good, or None."""
    if hi - lo < MIN_SPAN_DEG[name]:
        return (
            f"spans only {hi - lo:.1f} deg: {name} needs at least {MIN_SPAN_DEG[name]:g} deg "
            "to follow a teacher (a cable or an end stop in the way?)"
        )
    if not lo <= home <= hi:
        return f"home ({home:+.1f} deg, [motor.{name}] home_deg) is outside: the head parks there"
    return None
