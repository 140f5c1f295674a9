"""A command watchdog: if the control loop stops sending servo commands, release the servos.

The driver calls ``kick()`` on every command. ``check()`` fires ``on_expire`` once when no kick
came for ``timeout_s``; the background thread only calls ``check()`` at a short period, waiting on
an ``Event`` (so ``stop()`` ends it at once). Tests drive ``check()`` with a fake clock and never
start the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from coachcam.clock import Clock
from coachcam.errors import ServosClosed
from motor.calibration import AxisMap

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self, timeout_s: float, on_expire: Callable[[], None], clock: Clock, name: str = "servo"
    ) -> None:
        self.timeout_s = timeout_s
        self.on_expire = on_expire
        self.clock = clock
        self.name = name
        self.expired = False
        self.fired = 0
        self._last: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._last = self.clock.now()
            self.expired = False

    def check(self) -> bool:
        """Fire ``on_expire`` if the last kick is too old; True if it fired now."""
        with self._lock:
            if self.expired or self._last is None or self.timeout_s <= 0:
                return False
            idle = self.clock.now() - self._last
            if idle < self.timeout_s:
                return False
            self.expired = True
            self.fired += 1
        log.warning(
            "%s watchdog: no command for %.2f s (limit %.2f s): releasing the servos",
            self.name,
            idle,
            self.timeout_s,
        )
        try:
            self.on_expire()
        except Exception:  # the watchdog must outlive a failing release; the error is logged
            log.exception("%s watchdog could not release the servos", self.name)
        return True

    def start(self) -> None:
        if self.timeout_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        period = min(0.05, self.timeout_s / 4)

        def run() -> None:
            while not self._stop.wait(period):
                self.check()

        self._thread = threading.Thread(target=run, name=f"{self.name}-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


class WatchedServos:
    """What the GPIO and Maestro drivers share: a lock, a command watchdog and the axis maps.

    Subclasses set ``axes``, ``closed``, ``_lock`` and ``watchdog`` (whose ``on_expire`` is
    ``_expired``) and provide ``open()``, ``is_open``, ``release()``, ``_write_deg()`` and
    ``closed_message``.
    """

    axes: tuple[AxisMap, AxisMap]
    closed: bool
    _lock: threading.RLock
    watchdog: Watchdog

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    @property
    def closed_message(self) -> str:
        raise NotImplementedError

    def open(self) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def close(self, park: bool = True) -> None:
        raise NotImplementedError

    def _write_deg(self, pan_deg: float, tilt_deg: float) -> None:
        raise NotImplementedError

    def write(self, pan_deg: float, tilt_deg: float) -> None:
        with self._lock:
            if self.closed:
                raise ServosClosed(self.closed_message)
            if not self.is_open:
                self.open()
            self.watchdog.kick()  # under the lock: the watchdog cannot release mid-write
            self._write_deg(pan_deg, tilt_deg)

    def _expired(self) -> None:
        with self._lock:
            if self.watchdog.expired:  # not if a command slipped in since the watchdog looked
                self.release()

    def set_axis_map(self, index: int, axis: AxisMap) -> None:
        """Swap one axis's mapping (calibration in progress); takes effect on the next write."""
        with self._lock:
            axes = list(self.axes)
            axes[index] = axis
            self.axes = (axes[0], axes[1])

    def __enter__(self) -> Any:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
