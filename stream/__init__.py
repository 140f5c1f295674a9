"""Frame sources, H.264 encoding, publishing to the coach, local recording, backfill, privacy.

    sources.py   picamera2 | V4L2/OpenCV | video file → ``coachcam.frame.Frame``
    privacy.py   ``apply_privacy``: pixelate non-teacher faces (pose keypoints 0-10), mask zones
    encoder.py   PyAV libx264 (or the Pi 4's h264_v4l2m2m) → ``outputframe(data, key, ts_us)``
    outputs.py   ``ThreadedOutput``: queue + thread per output, dead → backoff → resume on a
                 keyframe; per-connection record of what the endpoint confirmed; stall detection
    publish.py   by URL: rtmp/rtmps/rtsp (``pushproc`` child + ``relay``), srt (Debian ffmpeg)
    relay.py     local TCP relay: TLS verified by Python's ssl; a send timeout for stalls
    pushproc.py  the child process that runs PyAV's blocking network output
    recording.py MPEG-TS segments + sha256 sidecars in the state directory, within a quota
    confirm.py   nginx-rtmp stat page → "received up to"; interval helpers
    backfill.py  segments the endpoint did not confirm → HTTP PUT (WebDAV), once, resumable
    secrets.py   stream keys from $CREDENTIALS_DIRECTORY or a file, redacted from logs
    pipeline.py  ``Streamer``: all of the above wired from ``[stream]`` config; ``status()``:
                 live connected (the server accepted) / refused / unreachable / down / off,
                 seconds since the server confirmed data, recording ok / paused / failing

Timestamps on the *stream clock*: µs since the first frame's capture (``t_capture``), the same
in packets, segments, FLV timestamps and the server's confirmations.
"""
