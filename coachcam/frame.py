"""The unit that travels from a frame source to the tracker and the encoder, and the protocol
of those sources (here, at the bottom, so the frame loop and ``stream.sources`` both import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    ``image`` is the main stream (BGR uint8, HxWx3) that is encoded and sent; ``lores`` is the
    low-resolution copy the pose model runs on (picamera2's lores stream on a Pi). Either may be
    ``None`` in the oracle simulation, which has no pixels. ``t_capture`` is the monotonic time at
    which the sensor captured the frame: the controller looks up where the camera pointed then.
    ``truth`` carries the simulated classroom's ground truth for the oracle detector and the
    report; the tracker and controller never read it.
    """

    index: int
    t_capture: float
    width: int
    height: int
    image: np.ndarray | None = None
    lores: np.ndarray | None = None
    truth: Any = None


class FrameSource(Protocol):
    """Where frames come from: a camera (``stream.sources.open_source``), the simulated classroom,
    a replay window. The constructor does no I/O; ``start()`` opens the device (a no-op where
    there is none to open; the first ``read`` opens, too, and ``start`` after ``close`` reopens).
    """

    def start(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame (waits for it), or ``None`` at the end of the source."""
        ...

    def close(self) -> None: ...
