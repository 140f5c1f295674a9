"""Hobby servos driven straight from the Pi's GPIO with gpiozero.

Every device gets an explicit ``pin_factory`` (gpiozero's way to make the same code run on a
Pi 5, a Pi 4 and in tests with ``MockFactory``); ``make_pin_factory`` is the one place that picks
it. Degrees become pulse widths through the calibration (``AxisMap``), clamped in degrees and
then in pulse width, so nothing outside the limits ever reaches a pin. Hobby servos have no
read-back, so ``read()`` returns ``None``.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coachcam.clock import Clock
from coachcam.errors import ServoError, ServosClosed
from motor.calibration import AxisMap
from motor.config import GpioConfig
from motor.watchdog import Watchdog, WatchedServos

if TYPE_CHECKING:
    from gpiozero import Servo

log = logging.getLogger(__name__)

DEVICE_MODEL = Path("/proc/device-tree/model")


def board_model(path: Path = DEVICE_MODEL) -> str:
    try:
        return path.read_bytes().rstrip(b"\x00").decode("ascii", "replace")
    except OSError:
        return ""


def choose_pin_factory(kind: str, model: str, pigpio_ok: bool) -> str:
    """Which factory 'auto' means on this board (pure, so it is testable)."""
    if kind != "auto":
        return kind
    if "Raspberry Pi 5" in model:
        return "lgpio"  # pigpio does not run on a Pi 5 (RP1)
    return "pigpio" if pigpio_ok else "lgpio"


def _pigpio_daemon_reachable() -> bool:
    try:
        import pigpio  # type: ignore[import-not-found]
    except ImportError:
        return False
    pi = pigpio.pi()
    ok = bool(pi.connected)
    if ok:
        pi.stop()
    return ok


def make_pin_factory(kind: str = "auto") -> Any:
    """The gpiozero pin factory for this board; never a mock, never silently."""
    model = board_model()
    name = choose_pin_factory(kind, model, kind == "auto" and _pigpio_daemon_reachable())
    try:
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            factory: Any = LGPIOFactory()
        elif name == "pigpio":
            from gpiozero.pins.pigpio import PiGPIOFactory

            factory = PiGPIOFactory()
        elif name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            factory = RPiGPIOFactory()
        elif name == "native":
            from gpiozero.pins.native import NativeFactory

            factory = NativeFactory()
        else:
            raise ServoError(f"unknown GPIO pin factory {name!r}")
    except ServoError:
        raise
    except Exception as exc:  # gpiozero raises ImportError, OSError or its own errors here
        hint = (
            " (on a Pi: apt install python3-lgpio, or pip install lgpio)" if name == "lgpio" else ""
        )
        raise ServoError(
            f"GPIO pin factory '{name}' is not available on this machine "
            f"({model or 'not a Raspberry Pi'}): {exc}{hint}"
        ) from None
    log.info("GPIO pin factory: %s on %s", name, model or "unknown board")
    return factory


class GpioServos(WatchedServos):
    """A ``ServoBackend`` on two gpiozero ``Servo`` devices.

    The constructor does no I/O; ``open()`` (or the first ``write``) creates the devices.
    ``release()`` stops the pulses (the servo goes limp); the watchdog calls it when commands
    stop arriving, and the next ``write`` takes control again. ``close()`` parks at home, waits
    ``park_settle_s`` for the servo to get there, then releases.
    """

    name = "gpio"

    def __init__(
        self,
        pan: AxisMap,
        tilt: AxisMap,
        cfg: GpioConfig,
        clock: Clock,
        *,
        pin_factory: Any = None,
        watchdog_s: float = 0.0,
        park_settle_s: float = 0.5,
    ) -> None:
        self.axes = (pan, tilt)
        self.cfg = cfg
        self.clock = clock
        self.park_settle_s = park_settle_s
        self._factory = pin_factory
        self._servos: tuple[Servo, Servo] | None = None
        self._lock = threading.RLock()
        self.watchdog = Watchdog(watchdog_s, self._expired, clock, name="gpio")
        self.last_us: tuple[float, float] | None = None
        self.closed = False

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> GpioServos:
        with self._lock:
            if self.closed:
                raise ServosClosed("GPIO servos are closed")
            if self._servos is not None:
                return self
            from gpiozero import Servo

            if self._factory is None:
                self._factory = make_pin_factory(self.cfg.pin_factory)
            frame = self.cfg.frame_ms / 1000.0
            made: list[Servo] = []
            try:
                for pin, ax in zip((self.cfg.pan_pin, self.cfg.tilt_pin), self.axes, strict=True):
                    made.append(
                        Servo(
                            pin,
                            initial_value=None,  # no pulse (no jump) until the first command
                            min_pulse_width=ax.min_us / 1e6,
                            max_pulse_width=ax.max_us / 1e6,
                            frame_width=frame,
                            pin_factory=self._factory,
                        )
                    )
            except Exception as exc:  # gpiozero: pin in use, bad pin, no PWM...
                for s in made:
                    s.close()
                raise ServoError(
                    f"cannot drive servos on GPIO{self.cfg.pan_pin}/GPIO{self.cfg.tilt_pin}: {exc}"
                ) from None
            self._servos = (made[0], made[1])
            log.info(
                "GPIO servos on GPIO%d (pan) and GPIO%d (tilt)", self.cfg.pan_pin, self.cfg.tilt_pin
            )
        self.watchdog.start()
        return self

    def close(self, park: bool = True) -> None:
        """Park at home (unless ``park`` is False: stop where it is), then let go."""
        with self._lock:
            if self.closed:
                return
            try:
                if park and self._servos is not None and self.last_us is not None:
                    self._write_deg(self.axes[0].home_deg, self.axes[1].home_deg)
                    self.clock.wait(self.park_settle_s)
            except Exception:  # parking is best effort; the pins are still released below
                log.exception("could not park the GPIO servos")
            finally:
                self.closed = True
                self.watchdog.stop()
                if self._servos is not None:
                    for s in self._servos:
                        s.detach()
                        s.close()
                    self._servos = None

    # -- ServoBackend (write: WatchedServos) ----------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._servos is not None

    @property
    def closed_message(self) -> str:
        return "GPIO servos are closed"

    def read(self) -> tuple[float, float] | None:
        return None  # hobby servos report nothing back

    def release(self) -> None:
        """Stop the pulses: the servos stop driving (they hold nothing)."""
        with self._lock:
            if self._servos is not None:
                for s in self._servos:
                    s.detach()

    # -- internals ------------------------------------------------------------------------------
    def _write_deg(self, pan_deg: float, tilt_deg: float) -> None:
        assert self._servos is not None
        prev = self.last_us
        out: list[float] = []
        for i, (deg, ax, servo) in enumerate(
            zip((pan_deg, tilt_deg), self.axes, self._servos, strict=True)
        ):
            if not math.isfinite(deg):
                if prev is None:
                    deg = ax.home_deg
                else:
                    out.append(prev[i])
                    continue
            us = ax.to_us(deg)
            # Servo.value spans [min_us, max_us] as [-1, 1]; clip the rounding at the ends.
            value = 2.0 * (us - ax.min_us) / (ax.max_us - ax.min_us) - 1.0
            servo.value = min(1.0, max(-1.0, value))
            out.append(us)
        self.last_us = (out[0], out[1])
