"""Frame sources: picamera2 (on a Pi), a V4L2 webcam through OpenCV, a video file through PyAV.

All produce ``coachcam.frame.Frame`` (BGR main image, BGR lores copy for the tracker, monotonic
``t_capture``) behind the ``FrameSource`` protocol the frame loop reads (``read()`` waits for
the next frame, ``None`` at the end). The simulated camera lives in ``coachcam.sim``;
``open_source`` picks the real ones from ``[camera]``. Constructors do no I/O: the device or
file is opened by ``start()`` (or the first ``read()``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from coachcam.clock import Clock, MonotonicClock
from coachcam.errors import CameraError
from coachcam.frame import Frame, FrameSource

log = logging.getLogger(__name__)


def lores_of(image: np.ndarray, lores_width: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if w <= lores_width:
        return image
    lh = max(2, round(h * lores_width / w))
    return cv2.resize(image, (lores_width, lh), interpolation=cv2.INTER_AREA)


class _Base:
    def __init__(self) -> None:
        self._index = 0
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._open()
            self._started = True

    def _open(self) -> None:
        raise NotImplementedError

    def _frame(self, image: np.ndarray, t: float, lores: np.ndarray | None) -> Frame:
        f = Frame(self._index, t, image.shape[1], image.shape[0], image, lores)
        self._index += 1
        return f

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class OpenCVSource(_Base):
    """A V4L2 webcam (or any OpenCV capture). Capture time is taken when the frame is grabbed."""

    def __init__(
        self,
        device: str | int,
        width: int,
        height: int,
        fps: float,
        lores_width: int = 640,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.lores_width = lores_width
        self._clock = clock or MonotonicClock()
        self._cap: Any = None

    def _open(self) -> None:
        import cv2

        dev: Any = self.device
        if isinstance(dev, str) and dev.isdigit():
            dev = int(dev)
        cap = (
            cv2.VideoCapture(dev, cv2.CAP_V4L2)
            if not isinstance(dev, str) or dev.startswith("/dev/")
            else cv2.VideoCapture(dev)
        )
        if not cap.isOpened():
            raise CameraError(f"cannot open camera {self.device!r}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a stale queue
        self._cap = cap

    def read(self) -> Frame | None:
        self.start()
        if not self._cap.grab():
            raise CameraError(f"camera {self.device!r} stopped delivering frames")
        t = self._clock.now()
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            raise CameraError(f"camera {self.device!r} returned no image")
        return self._frame(image, t, lores_of(image, self.lores_width))

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        self._started = False


class FileSource(_Base):
    """A video file decoded with PyAV, as if it were the camera.

    ``t_capture`` follows the file's timestamps from the clock's time at start; with
    ``realtime`` the source waits (on the clock) until each frame is due, so a replay runs at
    the file's pace; without it frames come as fast as they are read (tests, benchmarks).
    """

    def __init__(
        self,
        path: str,
        lores_width: int = 640,
        *,
        loop: bool = False,
        realtime: bool = True,
        size: tuple[int, int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.lores_width = lores_width
        self.loop = loop
        self.realtime = realtime
        self.size = size
        self._clock = clock or MonotonicClock()
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._t0 = 0.0
        self._offset = 0.0
        self._last = 0.0

    def _open(self) -> None:
        import av

        try:
            self._container = av.open(self.path)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError) as exc:
            raise CameraError(f"cannot open video file {self.path!r}: {exc}") from exc
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        if self._index == 0:
            self._t0 = self._clock.now()

    def read(self) -> Frame | None:
        import av

        self.start()
        assert self._frames is not None
        try:
            vf = next(self._frames)
        except StopIteration:
            if not self.loop or self._index == 0:
                return None
            self.close()
            self._offset = self._last + 1e-3
            self.start()
            assert self._frames is not None
            vf = next(self._frames, None)
            if vf is None:
                return None
        except av.FFmpegError as exc:
            raise CameraError(f"decoding {self.path!r}: {exc}") from exc
        rel = self._offset + (float(vf.time) if vf.time is not None else self._index / 30.0)
        self._last = rel
        t = self._t0 + rel
        if self.realtime:
            self._clock.wait(t - self._clock.now())
        if self.size is not None and (vf.width, vf.height) != self.size:
            vf = vf.reformat(width=self.size[0], height=self.size[1])
        image = vf.to_ndarray(format="bgr24")
        return self._frame(image, t, lores_of(image, self.lores_width))

    def close(self) -> None:
        c, self._container = self._container, None
        self._frames = None
        if c is not None:
            c.close()
        self._started = False


class Picamera2Source(_Base):
    """The Pi camera: main stream (BGR) for video, lores stream (YUV420 → BGR) for the tracker.

    picamera2 comes from apt (``python3-picamera2``) and is imported only here, only when used.
    ``t_capture`` is the sensor timestamp (CLOCK_MONOTONIC ns in the request metadata).
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        lores_width: int = 640,
        *,
        camera_num: int = 0,
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.lores_size = (lores_width, (round(height * lores_width / width) // 2) * 2)
        self.camera_num = camera_num
        self._cam: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed (Raspberry Pi OS: apt install python3-picamera2, "
                "venv with --system-site-packages)"
            ) from exc
        try:
            cam = Picamera2(self.camera_num)
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},  # BGR in memory
                lores={"size": self.lores_size, "format": "YUV420"},
                controls={"FrameRate": self.fps},
                buffer_count=4,
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # libcamera raises assorted errors for an absent camera
            raise CameraError(f"cannot start the Pi camera {self.camera_num}: {exc}") from exc
        self._cam = cam

    def read(self) -> Frame | None:
        import cv2

        self.start()
        try:
            request = self._cam.capture_request()
        except Exception as exc:  # a camera that stops mid-run
            raise CameraError(f"Pi camera stopped delivering frames: {exc}") from exc
        try:
            image = request.make_array("main")
            yuv = request.make_array("lores")
            ts_ns = request.get_metadata().get("SensorTimestamp")
        finally:
            request.release()
        lores = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
        t = ts_ns / 1e9 if ts_ns else MonotonicClock().now()
        return self._frame(np.ascontiguousarray(image[:, :, :3]), t, lores)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()
        self._started = False


def open_source(camera: Any, *, clock: Clock | None = None) -> FrameSource:
    """The real source named by ``[camera] source`` (``sim`` is built by ``coachcam.sim``)."""
    kind = camera.source
    if kind == "picamera2":
        return Picamera2Source(camera.width, camera.height, camera.fps, camera.lores_width)
    if kind == "v4l2":
        return OpenCVSource(
            camera.device, camera.width, camera.height, camera.fps, camera.lores_width, clock=clock
        )
    if kind == "file":
        if not camera.file:
            raise CameraError("camera.source = 'file' needs camera.file")
        return FileSource(
            camera.file,
            camera.lores_width,
            loop=camera.loop_file,
            size=(camera.width, camera.height),
            clock=clock,
        )
    raise CameraError(f"camera source {kind!r} is not built here (the simulated camera is sim's)")
