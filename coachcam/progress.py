"""Progress on long work: a one-line bar on a terminal, a line every ~10 % otherwise."""

from __future__ import annotations

from typing import TextIO


class Progress:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self._last_decile = -1

    def update(self, done: float, total: float) -> None:
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}%")
            self.stream.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            self.stream.write(f"{self.label}: {100 * frac:.0f}%\n")

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * (len(self.label) + 40) + "\r")
            self.stream.flush()
