"""Pololu Maestro servo controller over a serial port (https://www.pololu.com/docs/0J40/5.e).

The compact protocol by default; the Pololu protocol (``0xAA, device number, command & 0x7F``)
when ``device_number`` is set, for daisy-chained controllers. Commands used:

==========  =====================================  =====================================
0x84        set target, channel, lo7, hi7          target in quarter-microseconds; 0 = off
0x87        set speed, channel, lo7, hi7           (0.25 us)/(10 ms); 0 = unlimited
0x89        set acceleration, channel, lo7, hi7    (0.25 us)/(10 ms)/(80 ms); 0 = unlimited
0x90        get position, channel → lo8, hi8       quarter-microseconds
0x93        get moving state → 0 or 1
0xA1        get errors → lo8, hi8                  reading clears them
==========  =====================================  =====================================

The port is opened with ``serial.serial_for_url``: ``/dev/ttyACM0`` on the robot, ``loop://``
in tests, ``spy:///dev/ttyACM0?file=...`` to hex-dump the traffic in the field. Replies are
checked for plausibility; a missing or garbled reply is retried ``retries`` times, then a
``ServoError`` names the port, the baud rate and what to check.

The Maestro's own *serial time-out* (a setting in the Maestro Control Center, not settable over
serial) stops the servos if the whole process dies; the ``Watchdog`` here releases them when the
control loop stops sending commands (see hardware.md).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from coachcam.clock import Clock
from coachcam.errors import ServoError, ServosClosed
from motor.calibration import AxisMap
from motor.config import SerialConfig
from motor.watchdog import Watchdog, WatchedServos

if TYPE_CHECKING:
    import serial

log = logging.getLogger(__name__)

SET_TARGET = 0x84
SET_SPEED = 0x87
SET_ACCEL = 0x89
GET_POSITION = 0x90
GET_MOVING = 0x93
GET_ERRORS = 0xA1
GO_HOME = 0xA2
POLOLU = 0xAA

ERROR_BITS = {
    0: "serial signal error (noise on the line, or a wrong baud rate)",
    1: "serial overrun (bytes arrived faster than the Maestro could take them)",
    2: "serial receive buffer full",
    3: "serial CRC error",
    4: "serial protocol error (a garbled or incomplete command)",
    5: "serial time-out (no command arrived within the Maestro's serial time-out)",
    6: "script stack error",
    7: "script call stack error",
    8: "script program counter error",
}

# Replies outside these are taken as garbled (the Maestro itself can output 64..4080 us).
MIN_QUS, MAX_QUS = 64 * 4, 4080 * 4


def error_names(bits: int) -> list[str]:
    return [text for bit, text in ERROR_BITS.items() if bits & (1 << bit)]


def lo_hi(value: int) -> tuple[int, int]:
    """A 14-bit value as the Maestro's two 7-bit data bytes."""
    if not 0 <= value <= 0x3FFF:
        raise ValueError(f"value {value} does not fit 14 bits")
    return value & 0x7F, (value >> 7) & 0x7F


def speed_units(deg_s: float, us_per_deg: float) -> int:
    """deg/s → Maestro speed units, (0.25 us)/(10 ms); 0 stays 0 (= no limit)."""
    if deg_s <= 0:
        return 0
    return max(1, min(0x3FFF, round(deg_s * us_per_deg * 4 / 100)))


def accel_units(deg_s2: float, us_per_deg: float) -> int:
    """deg/s² → Maestro acceleration units, (0.25 us)/(10 ms)/(80 ms), 1..255; 0 = no limit."""
    if deg_s2 <= 0:
        return 0
    return max(1, min(255, round(deg_s2 * us_per_deg * 4 * 0.01 * 0.08)))


class MaestroServos(WatchedServos):
    """A ``ServoBackend`` on a Pololu Maestro. The constructor does no I/O; ``open()`` does."""

    name = "serial"

    def __init__(
        self,
        pan: AxisMap,
        tilt: AxisMap,
        cfg: SerialConfig,
        clock: Clock,
        *,
        watchdog_s: float = 0.0,
        park_timeout_s: float = 3.0,
    ) -> None:
        self.axes = (pan, tilt)
        self.channels = (cfg.pan_channel, cfg.tilt_channel)
        self.cfg = cfg
        self.clock = clock
        self.park_timeout_s = park_timeout_s
        self.port: serial.SerialBase | None = None
        self._lock = threading.RLock()
        self.watchdog = Watchdog(watchdog_s, self._expired, clock, name="maestro")
        self.last_qus: tuple[int, int] | None = None
        self.closed = False
        self.retries_used = 0

    @property
    def where(self) -> str:
        return f"{self.cfg.port} at {self.cfg.baud} baud"

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> MaestroServos:
        with self._lock:
            if self.closed:
                raise ServosClosed(f"Maestro on {self.cfg.port} is closed")
            if self.port is not None:
                return self
            import serial

            try:
                self.port = serial.serial_for_url(
                    self.cfg.port,
                    baudrate=self.cfg.baud,
                    timeout=self.cfg.reply_timeout_s,
                    write_timeout=1.0,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise ServoError(
                    f"cannot open the servo controller's serial port {self.cfg.port}: "
                    f"{_reason(exc)} (is the Maestro plugged in and is this the right port?)"
                ) from None
            try:
                errors = self.get_errors()  # also the handshake: proves something answers
                if errors:
                    log.warning(
                        "Maestro on %s reported (and cleared) errors: %s",
                        self.cfg.port,
                        "; ".join(error_names(errors)),
                    )
                for ch, ax in zip(self.channels, self.axes, strict=True):
                    self._send(
                        SET_SPEED,
                        ch,
                        *lo_hi(speed_units(self.cfg.speed_limit_deg_s, ax.us_per_deg)),
                    )
                    self._send(
                        SET_ACCEL,
                        ch,
                        *lo_hi(accel_units(self.cfg.accel_limit_deg_s2, ax.us_per_deg)),
                    )
            except BaseException:
                self._close_port()
                raise
            log.info("Maestro on %s: pan channel %d, tilt channel %d", self.where, *self.channels)
        self.watchdog.start()
        return self

    def close(self, park: bool = True) -> None:
        """Park at home (unless ``park`` is False: stop where it is), then let go."""
        with self._lock:
            if self.closed:
                return
            try:
                if park and self.port is not None and self.last_qus is not None:
                    self._write_deg(self.axes[0].home_deg, self.axes[1].home_deg)
                    self._wait_still(self.park_timeout_s)
            except Exception:  # parking is best effort; the port is still closed below
                log.exception("could not park the servos on %s", self.cfg.port)
            finally:
                self.closed = True
                self.watchdog.stop()
                self._close_port()

    # -- ServoBackend (write: WatchedServos) ----------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.port is not None

    @property
    def closed_message(self) -> str:
        return f"Maestro on {self.cfg.port} is closed"

    def read(self) -> tuple[float, float] | None:
        """The Maestro's current output per channel (its ramp position), in degrees."""
        with self._lock:
            out = []
            for ch, ax in zip(self.channels, self.axes, strict=True):
                qus = self.get_position(ch)
                if qus == 0:
                    return None  # channel off: no pulses, no position
                out.append(ax.to_deg(qus / 4.0))
            return out[0], out[1]

    def release(self) -> None:
        """Target 0 on both channels: the Maestro stops sending pulses."""
        with self._lock:
            if self.port is not None:
                for ch in self.channels:
                    self._send(SET_TARGET, ch, 0, 0)

    # -- protocol -------------------------------------------------------------------------------
    def get_position(self, channel: int) -> int:
        reply = self._query(GET_POSITION, [channel], "position", _plausible_position)
        return reply[0] | (reply[1] << 8)

    def get_errors(self) -> int:
        reply = self._query(GET_ERRORS, [], "errors", lambda r: r[1] <= 0x01)
        return reply[0] | (reply[1] << 8)

    def moving(self) -> bool:
        reply = self._query(GET_MOVING, [], "moving state", lambda r: r[0] in (0, 1), nbytes=1)
        return reply[0] == 1

    def _frame(self, command: int, *data: int) -> bytes:
        if self.cfg.device_number >= 0:
            return bytes([POLOLU, self.cfg.device_number, command & 0x7F, *data])
        return bytes([command, *data])

    def _send(self, command: int, *data: int) -> None:
        self._write_bytes(self._frame(command, *data))

    def _write_bytes(self, data: bytes) -> None:
        import serial

        if self.port is None:
            raise ServoError(f"Maestro on {self.cfg.port} is not open")
        try:
            self.port.write(data)
        except (serial.SerialException, OSError, *_termios_error()) as exc:
            raise ServoError(
                f"lost the servo controller on {self.cfg.port}: {_reason(exc)} "
                "(USB cable or adapter unplugged?)"
            ) from None

    def _query(
        self,
        command: int,
        data: list[int],
        what: str,
        valid: Any,
        nbytes: int = 2,
    ) -> bytes:
        import serial

        if self.port is None:
            raise ServoError(f"Maestro on {self.cfg.port} is not open")
        request = self._frame(command, *data)
        problems: list[str] = []
        for attempt in range(self.cfg.retries + 1):
            try:
                self.port.reset_input_buffer()  # drop late or stray bytes from a failed attempt
                self.port.write(request)
                reply = self.port.read(nbytes)
            except (serial.SerialException, OSError, *_termios_error()) as exc:
                raise ServoError(
                    f"lost the servo controller on {self.cfg.port}: {_reason(exc)} "
                    "(USB cable or adapter unplugged?)"
                ) from None
            if len(reply) == nbytes and valid(reply):
                return reply
            self.retries_used += 1
            problem = "no reply" if not reply else f"garbled reply {reply.hex(' ')}"
            problems.append(problem)
            log.debug("Maestro %s query, try %d: %s", what, attempt + 1, problem)
        tries = self.cfg.retries + 1
        if all(p == "no reply" for p in problems):
            hint = (
                "check the power, the wiring (Pi TX → Maestro RX, RX ← TX, common ground), the "
                "port, and that the baud rate matches the Maestro's serial settings"
            )
            raise ServoError(
                f"no reply from the servo controller on {self.where} after {tries} tries: {hint}"
            )
        raise ServoError(
            f"garbled replies from the servo controller on {self.where} after {tries} tries "
            f"({problems[-1]}): check the baud rate and for electrical noise on the serial line"
        )

    # -- internals ------------------------------------------------------------------------------
    def _write_deg(self, pan_deg: float, tilt_deg: float) -> None:
        prev = self.last_qus
        out: list[int] = []
        frame = b""
        for i, (deg, ax, ch) in enumerate(
            zip((pan_deg, tilt_deg), self.axes, self.channels, strict=True)
        ):
            if not math.isfinite(deg):
                if prev is not None:
                    out.append(prev[i])
                    continue
                deg = ax.home_deg
            # Round inwards so quantisation never pushes a pulse past a limit.
            qus = round(ax.to_us(deg) * 4)
            qus = min(math.floor(ax.max_us * 4), max(math.ceil(ax.min_us * 4), qus))
            frame += self._frame(SET_TARGET, ch, *lo_hi(qus))
            out.append(qus)
        if frame:
            self._write_bytes(frame)
        self.last_qus = (out[0], out[1])

    def _wait_still(self, timeout_s: float) -> None:
        """Poll the moving state (on the injected clock) until still or ``timeout_s`` passed."""
        deadline = self.clock.now() + timeout_s
        while self.moving():
            if self.clock.now() >= deadline:
                log.warning(
                    "servos on %s still moving after %.1f s of parking", self.cfg.port, timeout_s
                )
                return
            self.clock.wait(0.05)

    def _close_port(self) -> None:
        if self.port is not None:
            try:
                self.port.flush()  # the last commands (the head's park) go out before the close
                self.port.close()
            except Exception:  # closing a vanished adapter can fail; nothing left to do
                log.debug("closing %s failed", self.cfg.port, exc_info=True)
            self.port = None


def _plausible_position(reply: bytes) -> bool:
    qus = reply[0] | (reply[1] << 8)
    return qus == 0 or MIN_QUS <= qus <= MAX_QUS


def _termios_error() -> tuple[type[BaseException], ...]:
    """pyserial lets ``termios.error`` (not an OSError) escape when the tty vanishes."""
    try:
        import termios
    except ImportError:  # not POSIX
        return ()
    return (termios.error,)


def _reason(exc: BaseException) -> str:
    if exc.args and len(exc.args) == 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc)
