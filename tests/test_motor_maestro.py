"""Maestro driver: real bytes, through a pseudo-terminal, to an emulated Maestro."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from motor_helpers import PAN, TILT, maps

from coachcam.clock import FakeClock
from coachcam.errors import ServoError
from motor.config import SerialConfig
from motor.emulator import PROTOCOL_ERROR, MaestroEmulator, PtyMaestro
from motor.maestro import MaestroServos, accel_units, error_names, lo_hi, speed_units
from motor.servo import PanTiltHead


def serial_cfg(port: str, **kw: Any) -> SerialConfig:
    base: dict[str, Any] = {"port": port, "reply_timeout_s": 0.05, "retries": 2}
    base.update(kw)
    return SerialConfig(**base)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pty(clock: FakeClock) -> Iterator[PtyMaestro]:
    with PtyMaestro(MaestroEmulator(clock), baud=9600) as p:
        yield p


def driver(port: str, clock: FakeClock, **kw: Any) -> MaestroServos:
    pan, tilt = maps()
    return MaestroServos(pan, tilt, serial_cfg(port, **kw), clock)


def test_units_and_encoding() -> None:
    assert lo_hi(6000) == (0x70, 0x2E)
    assert speed_units(0, 11.1) == 0
    assert speed_units(180.0, 10.0) == 72  # 1800 us/s = 72 x 0.25 us per 10 ms
    assert accel_units(1000.0, 10.0) == 32
    assert "time-out" in error_names(1 << 5)[0]


def test_constructor_opens_nothing() -> None:
    m = driver("/dev/does-not-exist", FakeClock())
    assert m.port is None
    m.close()


def test_targets_speed_position_through_the_pty(pty: PtyMaestro, clock: FakeClock) -> None:
    emu = pty.emulator
    with driver(pty.path, clock, speed_limit_deg_s=100.0) as m:
        assert m.get_errors() == 0  # a round trip: the emulator has taken every byte before it
        assert emu.channels[0].speed == speed_units(100.0, 10.0)  # pan: 10 us/deg
        m.write(0.0, 0.0)
        assert m.read() == pytest.approx((0.0, 0.0))
        m.write(20.0, 10.0)
        assert m.moving()  # the round trip also makes the emulator take the targets now
        # pan is reversed with 1512 us centre: 20 deg -> 1312 us = 5248 quarter-us
        assert emu.channels[0].target == 5248
        assert emu.channels[1].target == ((1480 + 110) * 4)
        clock.advance(0.1)  # 100 deg/s for 0.1 s: 10 of the 20 degrees
        pan, _ = m.read() or (None, None)
        assert pan == pytest.approx(10.0, abs=0.05)
        clock.advance(1.0)
        assert m.read() == pytest.approx((20.0, 10.0), abs=0.05)
        assert not m.moving()


def test_pololu_protocol_addresses_the_device(clock: FakeClock) -> None:
    emu = MaestroEmulator(clock, device_number=12)
    with PtyMaestro(emu) as p, driver(p.path, clock, device_number=12) as m:
        m.write(5.0, 0.0)
        assert m.read() == pytest.approx((5.0, 0.0))
    with (
        PtyMaestro(MaestroEmulator(clock, device_number=7)) as p,
        pytest.raises(ServoError, match="no reply"),
    ):
        driver(p.path, clock, device_number=12).open()


def test_garbled_and_dropped_replies_are_retried(pty: PtyMaestro, clock: FakeClock) -> None:
    with driver(pty.path, clock) as m:
        m.write(3.0, 2.0)
        pty.garble_replies = 1
        assert m.read() == pytest.approx((3.0, 2.0))
        pty.drop_replies = 1
        assert m.read() == pytest.approx((3.0, 2.0))
        pty.truncate_replies = 1
        assert m.read() == pytest.approx((3.0, 2.0))
        assert m.retries_used == 3


def test_a_persistently_garbled_line_is_a_clear_error(pty: PtyMaestro, clock: FakeClock) -> None:
    with driver(pty.path, clock) as m:
        pty.garble_replies = 10
        with pytest.raises(
            ServoError, match=rf"garbled replies .* on {pty.path} at 9600 baud after 3"
        ):
            m.read()


def test_no_reply_names_the_port_and_what_to_check(pty: PtyMaestro, clock: FakeClock) -> None:
    pty.mute = True
    with pytest.raises(ServoError, match=rf"no reply .* on {pty.path} at 9600 baud.*wiring"):
        driver(pty.path, clock).open()


def test_wrong_baud_rate(pty: PtyMaestro, clock: FakeClock) -> None:
    with pytest.raises(ServoError, match="baud rate"):
        driver(pty.path, clock, baud=115200).open()


def test_missing_port(clock: FakeClock) -> None:
    with pytest.raises(ServoError, match=r"/dev/ttyNOPE.*plugged in"):
        driver("/dev/ttyNOPE", clock).open()


def test_unplugged_mid_run(clock: FakeClock) -> None:
    p = PtyMaestro(MaestroEmulator(clock), baud=9600).start()
    m = driver(p.path, clock).open()
    m.write(1.0, 1.0)
    p.unplug()
    with pytest.raises(ServoError, match=rf"{p.path}"):
        m.read()
    m.close()  # parking fails quietly, closing still works
    m.close()


def test_protocol_errors_are_reported_and_cleared(pty: PtyMaestro, clock: FakeClock) -> None:
    with driver(pty.path, clock) as m:
        assert m.port is not None
        m.port.write(b"\x05\x84\x00")  # a stray data byte, then an incomplete command
        m.write(0.0, 0.0)
        assert m.get_errors() & PROTOCOL_ERROR
        assert m.get_errors() == 0


def test_close_parks_at_home_and_waits_for_the_ramp(pty: PtyMaestro, clock: FakeClock) -> None:
    emu = pty.emulator
    m = driver(pty.path, clock, speed_limit_deg_s=50.0).open()
    m.write(40.0, 20.0)
    m.read()
    clock.advance(5.0)
    m.close()
    m.close()
    pan, tilt = maps()
    assert emu.channels[0].target == round(pan.to_us(pan.home_deg) * 4)
    assert emu.channels[0].position == emu.channels[0].target
    assert emu.channels[1].target == round(tilt.to_us(tilt.home_deg) * 4)
    assert clock.now() >= 5.75  # 40 deg at 50 deg/s


def test_park_on_exception_through_the_head(pty: PtyMaestro, clock: FakeClock) -> None:
    with (
        pytest.raises(RuntimeError),
        PanTiltHead(driver(pty.path, clock), PAN, TILT, clock) as head,
    ):
        head.command(30.0, 10.0)
        raise RuntimeError("tracker crashed")
    pty.drain()  # the head parked; the driver let go without a reply to wait for
    pan, _ = maps()
    assert pty.emulator.channels[0].target == round(pan.to_us(pan.home_deg) * 4)


def test_watchdog_and_maestro_serial_timeout(clock: FakeClock) -> None:
    emu = MaestroEmulator(clock, serial_timeout_s=0.5)
    with PtyMaestro(emu) as p:
        pan, tilt = maps()
        m = MaestroServos(pan, tilt, serial_cfg(p.path), clock, watchdog_s=0.3)
        with m:
            m.write(10.0, 0.0)
            clock.advance(0.35)
            assert m.watchdog.check()  # our watchdog: targets 0, no more pulses
            assert m.read() is None
            m.write(10.0, 0.0)  # the next command takes control again
            assert m.read() == pytest.approx((10.0, 0.0))
            # the Maestro's own time-out, for when the whole process is gone
            clock.advance(0.6)
            assert m.read() is None
            assert m.get_errors() & (1 << 5)


def test_spy_url_hex_dumps_the_traffic(pty: PtyMaestro, clock: FakeClock, tmp_path: Path) -> None:
    log = tmp_path / "spy.txt"
    with driver(f"spy://{pty.path}?file={log}", clock) as m:
        m.write(0.0, 0.0)
        m.read()
    text = log.read_text()
    assert "84 00" in text and "90 00" in text


# The limits property over every driver (this one included): test_head_limits.py.


def test_step_response_identifies_the_maestro_ramp(clock: FakeClock) -> None:
    from motor.autotune import identify, step_response

    with PtyMaestro(MaestroEmulator(clock)) as p:
        m = driver(p.path, clock, speed_limit_deg_s=150.0, accel_limit_deg_s2=1500.0)
        with m:
            model = identify(step_response(m, clock, 0, (-20.0, 0.0), 40.0, dt=0.004))
    # pan is 10 us/deg here: 150 deg/s = 60 speed units, 1500 deg/s2 = 48 accel units (exact)
    assert model.speed_deg_s == pytest.approx(150.0, rel=0.05)
    assert model.accel_deg_s2 == pytest.approx(1500.0, rel=0.1)
    assert model.dead_time_s == pytest.approx(0.0, abs=0.01)
