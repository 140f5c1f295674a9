"""Faults for the real daemon to run through, beside the simulated camera's (``[sim.faults]``)."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

from stream.encoder import LibavEncoder


class FaultyEncoder(LibavEncoder):
    """The real encoder, but its codec call throws PyAV's own error at the given stream times.

    The error is raised where ``av.CodecContext.encode`` would raise it, so everything above
    (the wrapping into ``StreamError``, the restart, the give-up) is the code that runs on a Pi.
    """

    def __init__(self, *args: Any, errors_at_s: Sequence[float] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._due = sorted(errors_at_s)

    def _codec_encode(self, frame: Any) -> Any:
        if self._due and frame.pts >= self._due[0] * 1e6:
            import av

            self._due.pop(0)
            raise av.FFmpegError(errno.EIO, "simulated encoder fault")
        return super()._codec_encode(frame)
