"""Frame sources: a video file (PyAV), OpenCV capture, picamera2 (a fake module; no Pi here)."""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from stream_helpers import FPS, H, W, make_image, read_index

from coachcam.clock import FakeClock
from coachcam.errors import CameraError
from stream.sources import FileSource, OpenCVSource, Picamera2Source, open_source


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import av

    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "10"}
        for i in range(20):
            f = av.VideoFrame.from_ndarray(make_image(i), format="bgr24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_file_source_gives_frames_in_order_with_file_timestamps(video: Path) -> None:
    clock = FakeClock(50.0)
    with FileSource(str(video), lores_width=160, realtime=True, clock=clock) as src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert [read_index(f.image) for f in frames] == list(range(20))
    assert [f.index for f in frames] == list(range(20))
    ts = [f.t_capture for f in frames]
    assert ts[0] == pytest.approx(50.0) and ts[-1] == pytest.approx(50.0 + 19 / FPS)
    assert clock.now() == pytest.approx(ts[-1]), "realtime waits on the injected clock"
    assert frames[0].lores is not None and frames[0].lores.shape == (120, 160, 3)


def test_file_source_loops(video: Path) -> None:
    src = FileSource(str(video), realtime=False, loop=True, clock=FakeClock())
    frames = [src.read() for _ in range(45)]
    src.close()
    assert [read_index(f.image) for f in frames if f is not None] == [*range(20)] * 2 + [*range(5)]
    ts = [f.t_capture for f in frames if f is not None]
    assert all(b > a for a, b in itertools.pairwise(ts))


def test_opencv_source_reads_a_capture(video: Path) -> None:
    with OpenCVSource(str(video), W, H, FPS, lores_width=160, clock=FakeClock(3.0)) as src:
        f = src.read()
    assert f is not None and read_index(f.image) == 0 and f.t_capture == 3.0


def test_missing_sources_raise_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError):
        FileSource(str(tmp_path / "none.mp4")).start()
    with pytest.raises(CameraError):
        OpenCVSource("/dev/video99", W, H, FPS).start()


class FakeRequest:
    def __init__(self, i: int) -> None:
        self.i = i
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        if name == "main":
            return np.dstack([make_image(self.i, 64, 48), np.zeros((48, 64), np.uint8)])
        return np.zeros((24 * 3 // 2, 32), np.uint8)

    def get_metadata(self) -> dict[str, Any]:
        return {"SensorTimestamp": 1_000_000_000 + self.i * 33_333_333}

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    instances: ClassVar[list[FakePicamera2]] = []

    def __init__(self, num: int = 0) -> None:
        self.config: Any = None
        self.started = self.closed = False
        self.n = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kw: Any) -> dict[str, Any]:
        return kw

    def configure(self, config: Any) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_request(self) -> FakeRequest:
        self.n += 1
        return FakeRequest(self.n - 1)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def test_picamera2_source_main_lores_and_sensor_time(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", mod)
    src = Picamera2Source(64, 48, 30.0, lores_width=32)
    assert FakePicamera2.instances == [], "the constructor does no I/O"
    with src:
        f0, f1 = src.read(), src.read()
    cam = FakePicamera2.instances[-1]
    assert cam.config["main"] == {"size": (64, 48), "format": "RGB888"}
    assert cam.config["lores"]["size"] == (32, 24)
    assert f0 is not None and f1 is not None
    assert f0.image is not None and f0.image.shape == (48, 64, 3)
    assert f0.lores is not None and f0.lores.shape == (24, 32, 3)
    assert f1.t_capture - f0.t_capture == pytest.approx(1 / 30, abs=1e-6)
    assert cam.closed


def test_picamera2_absent_is_a_camera_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="python3-picamera2"):
        Picamera2Source(64, 48, 30.0).start()


def test_open_source_by_config(video: Path) -> None:
    from coachcam.config import CameraConfig

    cam = CameraConfig(source="file", file=str(video), width=W, height=H)
    src = open_source(cam)
    assert isinstance(src, FileSource)
    with pytest.raises(CameraError):
        open_source(CameraConfig(source="sim"))
