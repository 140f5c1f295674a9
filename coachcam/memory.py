"""Hand freed heap memory back to the OS now and then; glibc keeps it resident otherwise.

Measured with ``bench/soak.py`` (720p30 streamed to nginx-rtmp, 2-core x86-64): the daemon's RSS
grew ~0.4 MiB a minute while its live heap stayed flat (heaptrack: 14.5-24 MiB, no growth over
7 minutes). ``malloc_info`` showed where: a thread's arena of 5.3 MB that was 95 % free and still
growing, the main arena 13.6 MB free of 29 MB. ``malloc_trim(0)`` gave 11.9 MiB back at once.
glibc trims an arena only from its top, so free chunks below a live one stay resident; calling
``malloc_trim`` periodically is the remedy glibc documents for that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from coachcam.clock import Clock

log = logging.getLogger(__name__)

TRIM_EVERY_S = 60.0


def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; ``None`` where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


class HeapTrimmer:
    """``poll()`` from the frame loop; at most every ``every_s`` it calls ``malloc_trim(0)``."""

    def __init__(
        self,
        clock: Clock,
        every_s: float = TRIM_EVERY_S,
        trim: Callable[[int], int] | None = None,
    ) -> None:
        self._clock = clock
        self._every = every_s
        self._trim = trim if trim is not None else _load_trim()
        self._next = clock.now() + every_s
        self.trims = 0
        self.seconds = 0.0  # time spent trimming, for the bench and the debug log

    @property
    def available(self) -> bool:
        return self._trim is not None

    def poll(self) -> None:
        now = self._clock.now()
        if self._trim is None or now < self._next:
            return
        self._next = now + self._every
        self._trim(0)
        took = self._clock.now() - now
        self.trims += 1
        self.seconds += took
        log.debug("malloc_trim took %.1f ms", took * 1e3)
