"""Faults the real daemon survives: ``coachcam run`` as a subprocess under a notify socket we bind.

Each test injects one fault into a running daemon and checks what the issue asks: it keeps
going degraded (or a hung loop stops the watchdog pings, so systemd restarts it), the servos
park (or are released) whenever control stops, the local recording holds every frame that was
encoded, and a log line says what happened. The corrupt model and the invalid config at start
are in test_daemon_run.py.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import (
    BASE,
    Daemon,
    NotifySocket,
    fps_of,
    frames_encoded,
    is_status,
    local_frames,
    recording,
)
from stream_helpers import Nginx, decode_indices

from coachcam.clock import MonotonicClock
from motor.calibration import AxisCalibration, Calibration, axis_maps, save_calibration
from motor.config import MotorConfig
from motor.emulator import MaestroEmulator, PtyMaestro


def test_camera_gone_for_5_s_then_back(tmp_path: Path, notify: NotifySocket) -> None:
    """Asserted on what the daemon logged, notified and recorded, in order, not on how long
    anything took: a loaded machine may stretch the gap, never break these. What the gap costs
    in video is a figure, measured by ``bench/soak.py --camera-gap 2 7`` (see the README)."""
    config = BASE + recording(tmp_path) + "[sim.faults]\ncamera_gap_s = [2.0, 7.0]\n"
    d = Daemon(tmp_path, notify, config)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        notify.wait_for(lambda m: "WATCHDOG=1" in m)
        lost = notify.wait_for(lambda m: is_status(m, "camera lost", "(stalled)"))
        assert "servo fault" not in lost
        # Pings stopped: none from the stalled status until the daemon logged the camera back,
        # and they resume after it.
        notify.next_ping_after_log(d.log, "camera back after")
        notify.wait_for(lambda m: is_status(m, "following teacher") and fps_of(m) > 0.0)
        assert d.proc.poll() is None, "the daemon keeps running"
        rc = d.terminate()
    finally:
        d.kill()
    log = d.log()
    assert rc == 0, log
    assert "camera lost: simulated camera unplugged" in log
    assert "camera back after" in log and "Traceback" not in log
    after_loss = log[log.index("camera lost") :]
    assert "parking servos" in after_loss.split("camera back")[0], "control stopped: parked"
    segments = local_frames(tmp_path)
    pts = [t for seg in segments for t in seg]
    assert len(pts) == frames_encoded(log), "the recording holds every frame encoded"
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    # Frames on both sides of the gap and none inside: the camera's clock says it was away from
    # 2 s to 7 s after its first frame (the last frame before may be due up to one frame period
    # after 2 s; load only makes frames later, so the lower bound holds on any machine).
    before, after = next((a, b) for a, b in itertools.pairwise(pts) if b >= 6_900_000)
    assert 0 < before <= 2_000_000 + 1_000_000 / 15 + 1_000, f"last frame before at {before} us"
    assert after - before >= 4_900_000, "the 5 s gap shows in the recording"
    assert pts[-1] > after, "the recording goes on after the camera came back"


def test_the_encoder_throws_once_and_is_restarted(tmp_path: Path, notify: NotifySocket) -> None:
    config = BASE + recording(tmp_path) + "[sim.faults]\nencoder_errors_at_s = [2.0]\n"
    d = Daemon(tmp_path, notify, config)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        for _ in range(12):  # ~6 s of pings: past the fault at 2 s, control never stopped
            notify.wait_for(lambda m: "WATCHDOG=1" in m)
        assert d.proc.poll() is None, "the daemon keeps running"
        rc = d.terminate()
    finally:
        d.kill()
    log = d.log()
    assert rc == 0, log
    assert "simulated encoder fault; restarting the encoder" in log and "Traceback" not in log
    pts = [t for seg in local_frames(tmp_path) for t in seg]
    assert len(pts) == frames_encoded(log) - 1, "every frame but the one that threw is recorded"
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[-1] > 4_000_000, "the video went on past the fault"
    # The next frame after the one that threw opens a fresh codec: a keyframe, no lost GOP.
    a, b = next((a, b) for a, b in itertools.pairwise(pts) if a < 2_000_000 <= b)
    assert b - a < 1_000_000, f"video resumed {b - a} us after the fault"


def test_an_encoder_that_keeps_throwing_stops_the_daemon(
    tmp_path: Path, notify: NotifySocket
) -> None:
    faults = "[sim.faults]\nencoder_errors_at_s = [2.0, 2.5, 3.0]\n"
    d = Daemon(tmp_path, notify, BASE + recording(tmp_path) + faults)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        rc = d.proc.wait(60)
    finally:
        d.kill()
    log = d.log()
    assert rc == 5, log  # a StreamError: systemd's Restart=on-failure starts it afresh
    last = log.strip().splitlines()[-1]
    assert "simulated encoder fault (3 encoder failures in 60 s; giving up)" in last, last
    assert "parking servos" in log[log.index("restarting the encoder") :], "control stopped: parked"
    assert "Traceback" not in log, log[-2000:]
    pts = [t for seg in local_frames(tmp_path) for t in seg]
    assert len(pts) == frames_encoded(log) - 3, "every frame encoded before it gave up is kept"
    # Recorded past the second throw (2.5 s), and nothing from the third (3.0 s) on.
    assert 2_500_000 < pts[-1] < 3_000_000, pts[-5:]


@pytest.fixture
def maestro_port(tmp_path: Path) -> Iterator[tuple[Path, list[PtyMaestro]]]:
    """A udev-style symlink to an emulated Maestro's pty, so a replugged adapter keeps its name
    (like /dev/serial/by-id/...); the list holds every emulator served there."""
    link = tmp_path / "ttyACM0"
    served: list[PtyMaestro] = []
    yield link, served
    for p in served:
        p.stop()


def plug(link: Path, served: list[PtyMaestro]) -> PtyMaestro:
    pty = PtyMaestro(MaestroEmulator(MonotonicClock())).start()
    served.append(pty)
    link.unlink(missing_ok=True)
    link.symlink_to(pty.path)
    return pty


def serial_config(link: Path) -> str:
    # Real servos run only calibrated: the nominal mapping, written as this robot's calibration.
    cal = link.parent / "calibration.toml"
    save_calibration(Calibration(pan=AxisCalibration(), tilt=AxisCalibration()), cal)
    motor = f'[motor]\ndriver = "serial"\ncalibration_file = "{cal}"\n'
    return motor + f'[motor.serial]\nport = "{link}"\n'


def home_qus() -> tuple[int, int]:
    pan, tilt = axis_maps(MotorConfig(), None)
    return round(pan.to_us(pan.home_deg) * 4), round(tilt.to_us(tilt.home_deg) * 4)


def targets(pty: PtyMaestro) -> list[tuple[int, int]]:
    with pty._lock:  # the emulator thread appends as bytes arrive
        return [(ch, v) for _, kind, ch, v in pty.emulator.commands if kind == "target"]


def drain(link: Path) -> None:
    """Ask the emulator something ourselves: its answer comes after it has taken every byte the
    daemon wrote before it (a pty is first in, first out)."""
    import serial

    with serial.serial_for_url(str(link), timeout=5.0) as port:
        port.write(bytes([0x93]))  # get moving state
        assert len(port.read(1)) == 1


def test_serial_adapter_unplugged_and_replugged(
    tmp_path: Path, notify: NotifySocket, maestro_port: tuple[Path, list[PtyMaestro]]
) -> None:
    link, served = maestro_port
    first = plug(link, served)
    d = Daemon(tmp_path, notify, BASE + serial_config(link))
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        notify.wait_for(lambda m: is_status(m, "following teacher", without="servo fault"))
        assert targets(first), "the daemon drives the emulated Maestro"
        first.unplug()
        fault = notify.wait_for(lambda m: is_status(m, "servo fault"))
        assert fps_of(fault) > 0.0, "frames go on without the servos"
        if "(stalled)" not in fault:  # no control, so no watchdog pings, once 1 s has passed
            notify.wait_for(lambda m: is_status(m, "servo fault", "(stalled)"))
        second = plug(link, served)
        # No pings from the stalled status until the daemon logged the servos back; then again.
        notify.next_ping_after_log(d.log, "servos back")
        notify.wait_for(lambda m: is_status(m, "fps", without="servo fault"))
        for _ in range(20):  # the emulator's thread takes the bytes a moment later
            if targets(second):
                break
            notify.wait_for(lambda m: "WATCHDOG=1" in m)
        assert targets(second), "control resumed on the replugged controller (within 20 pings)"
        assert d.proc.poll() is None
        rc = d.terminate()
    finally:
        d.kill()
    log = d.log()
    assert rc == 0, log
    assert re.search(rf"servos stopped: lost the servo controller on {re.escape(str(link))}", log)
    assert "servos back" in log and "Traceback" not in log
    drain(link)
    pan, tilt = home_qus()
    assert second.emulator.channels[0].target == pan and second.emulator.channels[1].target == tilt


def test_network_goes_away_and_the_publisher_dies(tmp_path: Path, notify: NotifySocket) -> None:
    with Nginx(tmp_path / "ng") as ng:
        d = Daemon(tmp_path, notify, BASE + recording(tmp_path, ng.url("room12")))
        try:
            notify.wait_for(lambda m: "READY=1" in m)
            notify.wait_for(lambda m: is_status(m, "following teacher", "live connected"))
            first = wait_recorded(ng, notify, 1)
            ng.stop()  # the network goes away
            for _ in range(6):  # ~3 s of pings with the server down: control is unaffected
                notify.wait_for(lambda m: "WATCHDOG=1" in m)
            ng.start()
            wait_recorded(ng, notify, first + 1)  # live comes back by itself
            killed = kill_publisher(d.proc.pid)  # the publishing process (the muxer) dies
            for _ in range(4):
                notify.wait_for(lambda m: "WATCHDOG=1" in m)
            wait_recorded(ng, notify, first + 2)
            assert d.proc.poll() is None
            rc = d.terminate()
        finally:
            d.kill()
    log = d.log()
    assert rc == 0, log
    assert killed and "live: output dead" in log and "Traceback" not in log
    segments = local_frames(tmp_path)
    pts = [t for seg in segments for t in seg]
    assert len(pts) == frames_encoded(log), "the recording holds every frame encoded"
    assert pts == sorted(pts) and len(set(pts)) == len(pts)


def wait_recorded(ng: Nginx, notify: NotifySocket, n: int) -> int:
    """Wait (on the daemon's pings, bounded) until nginx holds ``n`` recordings with frames."""
    for _ in range(60):
        got = [f for f in ng.recordings() if f.stat().st_size > 0]
        if len(got) >= n and decode_indices(got[-1]):
            return len(got)
        notify.wait_for(lambda m: "WATCHDOG=1" in m)
    raise AssertionError(f"nginx holds {len(ng.recordings())} recordings, wanted {n}")


def kill_publisher(pid: int) -> bool:
    """SIGKILL the daemon's publishing child (``python -m stream.pushproc``)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()  # a child belongs to the thread that forked it
    for child in (c for t in tasks for c in (t / "children").read_text().split()):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"stream.pushproc" in cmdline:
            os.kill(int(child), signal.SIGKILL)
            return True
    return False


def test_hung_loop_stops_the_pings_and_the_servos_are_released(
    tmp_path: Path, notify: NotifySocket, maestro_port: tuple[Path, list[PtyMaestro]]
) -> None:
    link, served = maestro_port
    pty = plug(link, served)
    config = BASE + serial_config(link) + "[sim.faults]\nhang_at_s = 2.0\n"
    d = Daemon(tmp_path, notify, config)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        notify.wait_for(lambda m: "WATCHDOG=1" in m)
        # Past the hang, nothing more: two whole watchdog periods (WatchdogSec=2 s) of silence.
        # (A bound that cannot flake: a hung loop never pings, however loaded the machine.)
        for _ in range(40):
            try:
                notify.wait_for(lambda m: "WATCHDOG=1" in m, timeout=4.0)
            except AssertionError:
                break
        else:
            pytest.fail("40 more watchdog pings after hang_at_s = 2 s: the loop did not hang")
        assert "sim fault: the camera hangs" in d.log(), "the silence is the hang"
        assert d.proc.poll() is None, "hung, not dead: only the watchdog can tell"
        # The command watchdog (motor.watchdog_s = 1 s) has stopped the pulses meanwhile.
        drain(link)  # (the hung daemon reads nothing, so the answer comes to us)
        assert [c.target for c in pty.emulator.channels[:2]] == [0, 0]
        d.proc.send_signal(signal.SIGABRT)  # what systemd sends when WatchdogSec passes
        rc = d.proc.wait(30)
    finally:
        d.kill()
    assert rc != 0
    log = d.log()
    assert "sim fault: the camera hangs" in log
    assert "maestro watchdog: no command" in log and "releasing the servos" in log
