"""Injected clocks. Everything that needs time takes a ``Clock``; tests drive ``FakeClock``."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass (a fake clock just advances)."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic``; ``wait`` sleeps and nothing cuts it short. It paces
    fixed steps (a servo move, settling, a file source's frame times); a loop that must stop on
    request waits on its own ``Event``, not on the clock."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to; ``wait`` advances it instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds

    def advance(self, seconds: float) -> float:
        self.wait(seconds)
        return self.t

    def set(self, t: float) -> None:
        if t < self.t:
            raise ValueError(f"FakeClock cannot go back from {self.t} to {t}")
        self.t = t
