"""Progress on long work: a one-line bar on a terminal, a line every ~10 % otherwise.

Callers report as often as they like (the simulator: every frame); this class decides what to
print. So slow work still tells the truth: on a terminal the bar is redrawn at most ten times a
second with the elapsed time, and in a log a line appears at least every ``every_s`` seconds
even while a tenth of the work takes longer (1,000 simulated people: 3 s a frame).
"""

from __future__ import annotations

from typing import TextIO

from coachcam.clock import Clock, MonotonicClock

REDRAW_S = 0.1  # the terminal bar, at most this often


class Progress:
    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        clock: Clock | None = None,
        every_s: float = 15.0,
    ) -> None:
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self.clock = clock or MonotonicClock()
        self.every_s = every_s
        self._t0 = self.clock.now()
        self._last_decile = -1
        self._last_line = -float("inf")

    def update(self, done: float, total: float) -> None:
        frac = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        now = self.clock.now()
        elapsed = now - self._t0
        if self.tty:
            if now - self._last_line < REDRAW_S and frac < 1.0:
                return
            self._last_line = now
            bar = "#" * int(frac * 30)
            self.stream.write(
                f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% {elapsed:6.0f} s elapsed"
            )
            self.stream.flush()
            return
        decile = int(frac * 10)
        if decile > self._last_decile or now - self._last_line >= self.every_s:
            self._last_decile = max(decile, self._last_decile)
            self._last_line = now
            self.stream.write(f"{self.label}: {100 * frac:.1f}% ({elapsed:.0f} s elapsed)\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * (len(self.label) + 55) + "\r")
            self.stream.flush()
