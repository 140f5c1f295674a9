"""An emulated Pololu Maestro: the real byte protocol, on the far end of a pseudo-terminal.

``MaestroEmulator`` is the device: it parses the compact and Pololu protocols byte by byte,
moves each channel toward its target at the channel's speed limit (on an injected clock),
answers get-position, get-moving-state and get-errors, sets the protocol-error bit on garbage,
and notices a baud-rate mismatch (the pty carries the speed the driver set) the way a UART does:
as noise, with no reply. ``PtyMaestro`` serves it on a pty so the real driver, through
pyserial, talks to it exactly as to ``/dev/ttyACM0``; it can be told to drop, garble or stop
answering, and to "unplug". Written here because no Maestro simulator exists as a library.

Run ``python -m motor.emulator`` to get a pty path to point ``[motor.serial] port`` at.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import termios
import threading
import tty
from dataclasses import dataclass, field

from coachcam.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

DATA_BYTES = {0x84: 3, 0x87: 3, 0x89: 3, 0x90: 1, 0x93: 0, 0xA1: 0, 0xA2: 0}
PROTOCOL_ERROR = 1 << 4
SIGNAL_ERROR = 1 << 0
TIMEOUT_ERROR = 1 << 5


@dataclass
class Channel:
    target: int = 0  # quarter-us; 0 = off
    position: float = 0.0
    speed: int = 0  # (0.25 us)/(10 ms); 0 = unlimited
    accel: int = 0  # (0.25 us)/(10 ms)/(80 ms); 0 = unlimited
    home: int = 6000
    velocity: float = 0.0  # quarter-us per s (with an acceleration limit)


@dataclass
class MaestroEmulator:
    clock: Clock
    n_channels: int = 6
    device_number: int = 12
    serial_timeout_s: float = 0.0
    channels: list[Channel] = field(default_factory=list)
    errors: int = 0
    commands: list[tuple[float, str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.channels:
            self.channels = [Channel() for _ in range(self.n_channels)]
        self._buf: list[int] = []
        self._pololu = False
        self._t = self.clock.now()
        self._last_cmd = self._t

    # -- bytes in, bytes out ------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the reply bytes."""
        self._advance()
        out = bytearray()
        for b in data:
            if b & 0x80:
                if self._buf:
                    self._protocol_error("command byte inside a command")
                self._buf = [b]
                self._pololu = b == 0xAA
                if not self._pololu:
                    if b not in DATA_BYTES:
                        self._protocol_error(f"unknown command 0x{b:02x}")
                        self._buf = []
                    else:
                        out += self._maybe_execute()  # commands without data bytes
                continue
            if not self._buf:
                self._protocol_error(f"stray data byte 0x{b:02x}")
                continue
            self._buf.append(b)
            out += self._maybe_execute()
        return bytes(out)

    def _maybe_execute(self) -> bytes:
        buf = self._buf
        if self._pololu:
            if len(buf) < 3:
                return b""
            cmd = buf[2] | 0x80
            if cmd not in DATA_BYTES:
                self._protocol_error(f"unknown command 0x{cmd:02x}")
                self._buf = []
                return b""
            if len(buf) < 3 + DATA_BYTES[cmd]:
                return b""
            device, args = buf[1], buf[3:]
            self._buf = []
            if device != self.device_number:
                return b""  # addressed to another device on the line
            return self._execute(cmd, args)
        cmd = buf[0]
        if len(buf) < 1 + DATA_BYTES[cmd]:
            return b""
        self._buf = []
        return self._execute(cmd, buf[1:])

    def _execute(self, cmd: int, args: list[int]) -> bytes:
        now = self.clock.now()
        self._last_cmd = now
        if cmd in (0x84, 0x87, 0x89):
            ch, value = args[0], args[1] | (args[2] << 7)
            if ch >= len(self.channels):
                self._protocol_error(f"no channel {ch}")
                return b""
            c = self.channels[ch]
            if cmd == 0x84:
                if c.target == 0 or c.position == 0:
                    c.position = float(value)  # from "off" a servo output jumps straight there
                c.target = value
                if value == 0:
                    c.position = 0.0
                self.commands.append((now, "target", ch, value))
            elif cmd == 0x87:
                c.speed = value
                self.commands.append((now, "speed", ch, value))
            else:
                c.accel = value
                self.commands.append((now, "accel", ch, value))
            return b""
        if cmd == 0x90:
            ch = args[0]
            if ch >= len(self.channels):
                self._protocol_error(f"no channel {ch}")
                return b""
            pos = round(self.channels[ch].position)
            return bytes([pos & 0xFF, (pos >> 8) & 0xFF])
        if cmd == 0x93:
            return bytes([1 if self.is_moving() else 0])
        if cmd == 0xA1:
            err, self.errors = self.errors, 0
            return bytes([err & 0xFF, (err >> 8) & 0xFF])
        if cmd == 0xA2:
            for c in self.channels:
                c.target = c.home
            return b""
        return b""

    def noise(self, data: bytes) -> None:
        """Bytes received at the wrong baud rate: framing errors, nothing understood."""
        if data:
            self.errors |= SIGNAL_ERROR
            self._buf = []

    def _protocol_error(self, why: str) -> None:
        log.debug("emulated Maestro: protocol error: %s", why)
        self.errors |= PROTOCOL_ERROR

    # -- motion -------------------------------------------------------------------------------
    def is_moving(self) -> bool:
        self._advance()
        return any(c.target and abs(c.position - c.target) > 1e-9 for c in self.channels)

    def check_timeout(self) -> None:
        now = self.clock.now()
        timed_out = self.serial_timeout_s > 0 and now - self._last_cmd >= self.serial_timeout_s
        if timed_out and not self.errors & TIMEOUT_ERROR:
            log.debug("emulated Maestro: serial time-out; channels off")
            self.errors |= TIMEOUT_ERROR
            for c in self.channels:
                c.target, c.position = 0, 0.0

    def _advance(self) -> None:
        now = self.clock.now()
        self.check_timeout()
        dt = max(0.0, now - self._t)
        self._t = now
        for c in self.channels:
            if c.target == 0:
                c.velocity = 0.0
                continue
            if c.accel == 0:
                if c.speed == 0:
                    c.position = float(c.target)
                    continue
                step = c.speed * 100.0 * dt  # quarter-us per 10 ms → per s
                err = c.target - c.position
                c.position = (
                    float(c.target) if abs(err) <= step else c.position + step * (err / abs(err))
                )
                continue
            self._ramp(c, dt)

    @staticmethod
    def _ramp(c: Channel, dt: float) -> None:
        """Speed and acceleration limited (the Maestro also decelerates at its accel limit)."""
        a = c.accel * 1250.0  # (0.25 us)/(10 ms)/(80 ms) → quarter-us per s^2
        vmax = c.speed * 100.0 if c.speed else math.inf
        t = 0.0
        while t < dt:
            h = min(0.001, dt - t)
            err = c.target - c.position
            if abs(err) < 1e-6 and abs(c.velocity) < a * h:
                c.position, c.velocity = float(c.target), 0.0
                return
            want = math.copysign(min(vmax, math.sqrt(2.0 * a * abs(err))), err)
            c.velocity += max(-a * h, min(a * h, want - c.velocity))
            move = c.velocity * h
            if abs(move) >= abs(err) and move * err > 0:
                c.position, c.velocity = float(c.target), 0.0
                return
            c.position += move
            t += h


class PtyMaestro:
    """Serve a ``MaestroEmulator`` on a pseudo-terminal; ``path`` is what the driver opens."""

    def __init__(self, emulator: MaestroEmulator, *, baud: int | None = None) -> None:
        self.emulator = emulator
        self.baud = baud
        self.path = ""
        self.drop_replies = 0  # answer nothing to the next N queries
        self.garble_replies = 0  # corrupt the next N replies
        self.truncate_replies = 0  # send only the first byte of the next N replies
        self.mute = False  # answer nothing at all (a dead controller or broken TX wire)
        self.received = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._idle_polls = 0  # polls that found nothing to read (``drain``)
        self._master = -1
        self._slave = -1

    def start(self) -> PtyMaestro:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="maestro-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until everything written to the port so far has been acted on (two polls with
        nothing to read: the second began after all of it was read); a driver that closes the
        port without a reply to wait for has nothing else to wait on. Raises if it does not come."""
        with self._idle:
            want = self._idle_polls + 2
            if not self._idle.wait_for(lambda: self._idle_polls >= want, timeout_s):
                raise TimeoutError(f"the emulated Maestro did not go idle within {timeout_s} s")

    def unplug(self) -> None:
        """Like pulling the USB cable: the port's file goes away under the driver."""
        self.stop()

    def __enter__(self) -> PtyMaestro:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _speed_matches(self) -> bool:
        if self.baud is None:
            return True
        attrs = termios.tcgetattr(self._master)
        want = getattr(termios, f"B{self.baud}", None)
        return want is None or attrs[4] == want

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.02)
            except (OSError, ValueError):
                return
            if not ready:
                with self._lock:
                    self.emulator.check_timeout()
                with self._idle:
                    self._idle_polls += 1
                    self._idle.notify_all()
                continue
            try:
                data = os.read(self._master, 1024)
            except OSError:
                return
            with self._lock:
                self.received += data
                if not self._speed_matches():
                    self.emulator.noise(data)
                    continue
                reply = self.emulator.feed(data)
                if not reply or self.mute:
                    continue
                if self.drop_replies > 0:
                    self.drop_replies -= 1
                    continue
                if self.garble_replies > 0:
                    self.garble_replies -= 1
                    reply = bytes(b ^ 0xA5 for b in reply)
                elif self.truncate_replies > 0:
                    self.truncate_replies -= 1
                    reply = reply[:1]
            with contextlib.suppress(OSError):
                os.write(self._master, reply)


def main() -> None:
    """Serve an emulated Maestro on a pty until interrupted (for trying the CLI by hand)."""
    emu = MaestroEmulator(MonotonicClock())
    for c in emu.channels:
        c.speed = 60
    with PtyMaestro(emu) as pty:
        print(f"emulated Maestro on {pty.path}  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
