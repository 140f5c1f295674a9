"""The daemon's periodic heap trim: when it runs, and that it reaches glibc's malloc_trim."""

from __future__ import annotations

import platform

import pytest

from coachcam import memory
from coachcam.clock import FakeClock
from coachcam.memory import HeapTrimmer


def test_trims_once_per_period_on_the_injected_clock() -> None:
    clock = FakeClock()
    calls: list[tuple[float, int]] = []

    def trim(pad: int) -> int:
        calls.append((clock.now(), pad))
        return 1

    trimmer = HeapTrimmer(clock, every_s=60.0, trim=trim)
    for _ in range(30 * 150):  # 150 s of frames at 30 fps
        trimmer.poll()
        clock.advance(1 / 30)
    assert [round(t) for t, _ in calls] == [60, 120]
    assert all(pad == 0 for _, pad in calls)  # 0: keep no padding at the top of the heap
    assert trimmer.trims == 2


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_loads_glibcs_malloc_trim_through_ctypes() -> None:
    clock = FakeClock()
    trimmer = HeapTrimmer(clock, every_s=1.0)
    assert trimmer.available
    blocks = [bytearray(200_000) for _ in range(50)]  # freed below: something to give back
    del blocks
    clock.advance(1.0)
    trimmer.poll()
    assert trimmer.trims == 1


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_load_trim", lambda: None)  # musl or macOS: no malloc_trim
    clock = FakeClock()
    trimmer = HeapTrimmer(clock, every_s=1.0)
    clock.advance(5.0)
    trimmer.poll()
    assert not trimmer.available and trimmer.trims == 0
