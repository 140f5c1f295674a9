"""``coachcam bench stream``: encoding cost, capture-to-decodable latency, privacy blur cost.

1. **Encode CPU**: the same 720p frames (the shared podium clip, else synthetic) encoded by our
   ``LibavEncoder`` (BGR → I420 with OpenCV, libx264 ultrafast/zerolatency, 1 s GOP, VBV) and by
   Debian's ``ffmpeg`` CLI with the same x264 settings reading raw BGR from a pipe (and, to
   isolate the encoder, raw I420 converted beforehand). CPU seconds (all threads; ``getrusage``
   for the child) per frame, and the ratios ours/ffmpeg.
2. **Latency**: frames stamped with their index are pushed at 30 fps through the whole pipeline
   (privacy, encoder, queue, publisher child, relay) to a local nginx-rtmp; an ``ffmpeg``
   subscriber decodes the live stream and we read each index back: capture → decodable, p50/p95.
3. **Privacy**: ``apply_privacy`` ms per 720p frame with 0, 1, 3 and 6 faces to blur (+ a zone).
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from coachcam.errors import StreamError

log = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 1280, 720, 30.0
BITS, CELL = 16, 40
CLIP = Path("../shared/data/media/podium_speaker_720p30.mp4")


def register(bsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "stream",
        parents=[common],
        help="H.264 CPU per 720p frame vs ffmpeg, capture-to-decodable latency, privacy cost",
    )
    p.add_argument("--frames", type=int, default=300, help="frames to encode (default 300)")
    p.add_argument("--seconds", type=float, default=12.0, help="latency run length (default 12)")
    p.add_argument("--clip", type=Path, default=CLIP, help=f"720p clip (default {CLIP})")
    p.add_argument("--bitrate", type=int, default=2500, help="kbps (default 2500)")
    p.set_defaults(func=run)


def load_frames(clip: Path, n: int) -> tuple[list[np.ndarray], str]:
    if clip.exists():
        from stream.sources import FileSource

        frames: list[np.ndarray] = []
        with FileSource(str(clip), realtime=False, loop=True, size=(WIDTH, HEIGHT)) as src:
            while len(frames) < n and (f := src.read()) is not None:
                assert f.image is not None
                frames.append(f.image)
        return frames, clip.name
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return [np.roll(base, 8 * i, axis=1) for i in range(n)], "synthetic"


def bench_encode(frames: list[np.ndarray], kbps: int) -> dict[str, float]:
    from stream.encoder import LibavEncoder
    from stream.outputs import MemoryOutput

    out = MemoryOutput()
    enc = LibavEncoder(WIDTH, HEIGHT, FPS, bitrate_kbps=kbps, outputs=[out])
    enc.encode(frames[0], 0.0)  # open the encoder outside the timing
    c0, w0 = time.process_time(), time.perf_counter()
    for i, img in enumerate(frames[1:], 1):
        enc.encode(img, i / FPS)
    enc.close()
    ours = (time.process_time() - c0) / (len(frames) - 1)
    wall = (time.perf_counter() - w0) / (len(frames) - 1)
    res = {"ours_cpu_ms": ours * 1e3, "ours_wall_ms": wall * 1e3}
    size = sum(len(p.data) for p in out.packets)
    res["ours_kbps"] = size * 8 / (len(frames) / FPS) / 1e3

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return res
    import cv2

    i420 = [cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420).tobytes() for f in frames[1:]]
    bgr = [f.tobytes() for f in frames[1:]]
    for name, pix, data in (("ffmpeg", "bgr24", bgr), ("ffmpeg_i420", "yuv420p", i420)):
        res[f"{name}_cpu_ms"] = _ffmpeg_cpu(ffmpeg, pix, data, kbps) * 1e3
    res["ratio"] = res["ours_cpu_ms"] / res["ffmpeg_cpu_ms"]
    res["ratio_i420"] = res["ours_cpu_ms"] / res["ffmpeg_i420_cpu_ms"]
    return res


def _ffmpeg_cpu(ffmpeg: str, pix_fmt: str, frames: list[bytes], kbps: int) -> float:
    """CPU seconds per frame of Debian's ffmpeg encoding raw frames from a pipe."""
    gop = round(FPS)
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt]
    cmd += ["-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "pipe:0", "-c:v", "libx264"]
    cmd += ["-preset", "ultrafast", "-tune", "zerolatency", "-b:v", f"{kbps}k", "-x264-params"]
    cmd += [f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:"]
    cmd[-1] += f"vbv-maxrate={kbps}:vbv-bufsize={kbps}"
    cmd += ["-f", "null", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for buf in frames:
        proc.stdin.write(buf)
    proc.stdin.close()
    proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / len(frames)


def stamp(img: np.ndarray, index: int) -> np.ndarray:
    out = img.copy()
    for b in range(BITS):
        out[0:CELL, b * CELL : (b + 1) * CELL] = 255 if (index >> b) & 1 else 0
    return out


def read_stamp(gray: np.ndarray, cell: int) -> int:
    v = 0
    for b in range(BITS):
        c = gray[cell // 4 : cell - cell // 4, b * cell + cell // 4 : (b + 1) * cell - cell // 4]
        if c.mean() > 128:
            v |= 1 << b
    return v


def bench_latency(frames: list[np.ndarray], seconds: float, kbps: int) -> dict[str, float]:
    """Push stamped frames live through nginx-rtmp; an ffmpeg subscriber decodes them."""
    from coachcam.frame import Frame
    from stream.config import StreamConfig
    from stream.pipeline import Streamer

    nginx, ffmpeg = shutil.which("nginx"), shutil.which("ffmpeg")
    module = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    if nginx is None or ffmpeg is None or not module.exists():
        raise StreamError("latency needs nginx-light, libnginx-mod-rtmp and ffmpeg (Debian)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = _free_port()
        (root / "conf").write_text(
            f"load_module {module}; daemon off; master_process off; pid {root}/pid;"
            f" error_log {root}/err.log; events {{}}"
            f" rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}"
        )
        srv = subprocess.Popen([nginx, "-c", str(root / "conf"), "-p", str(root)])
        try:
            return _latency_run(frames, seconds, kbps, port, ffmpeg, root, Streamer, Frame,
                                StreamConfig)  # fmt: skip
        finally:
            srv.terminate()
            srv.wait(5)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _latency_run(frames, seconds, kbps, port, ffmpeg, root, Streamer, Frame, StreamConfig):  # type: ignore[no-untyped-def]
    url = f"rtmp://127.0.0.1:{port}/live/bench"
    cfg = StreamConfig.model_validate(
        {
            "enabled": True,
            "url": url,
            "bitrate_kbps": kbps,
            "recording": {"dir": str(root / "rec"), "min_free_mb": 0},
        }
    )
    sw, sh = 320, 180
    cell = CELL * sw // WIDTH
    captured: dict[int, float] = {}
    arrived: dict[int, float] = {}
    stop = threading.Event()

    def subscribe() -> None:
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer"]
        cmd += ["-flags", "low_delay", "-probesize", "65536", "-analyzeduration", "100000"]
        cmd += ["-i", url, "-vf", f"scale={sw}:{sh}", "-pix_fmt", "gray", "-f", "rawvideo", "-"]
        # its end-of-stream error when we stop publishing is expected: not shown
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        n = sw * sh
        try:
            while not stop.is_set():
                buf = proc.stdout.read(n)
                if len(buf) < n:
                    break
                t = time.monotonic()
                idx = read_stamp(np.frombuffer(buf, np.uint8).reshape(sh, sw), cell)
                arrived.setdefault(idx, t)
        finally:
            proc.kill()
            proc.wait()

    s = Streamer(cfg, WIDTH, HEIGHT, FPS)
    sub = threading.Thread(target=subscribe, daemon=True)
    total = int(seconds * FPS)
    tick = threading.Event()
    with s:
        t0 = time.monotonic()
        for i in range(total):
            tick.wait(max(0.0, t0 + i / FPS - time.monotonic()))
            t = time.monotonic()
            captured[i] = t
            s.push(Frame(i, t, WIDTH, HEIGHT, stamp(frames[i % len(frames)], i)))
            if i == int(FPS):  # the stream exists on the server: subscribe
                sub.start()
        tick.wait(1.0)
        stop.set()
    sub.join(5)
    skip = 3 * FPS  # the subscriber's start-up (probe, first keyframe) is not steady state
    lat = sorted((arrived[i] - captured[i]) * 1e3 for i in arrived if i in captured and i >= skip)
    if not lat:
        raise StreamError("latency: the subscriber decoded no frames")
    return {
        "frames": float(len(lat)),
        "expected": float(total - skip),
        "p50_ms": statistics.median(lat),
        "p95_ms": lat[int(0.95 * (len(lat) - 1))],
    }


def bench_privacy(frames: list[np.ndarray], n: int = 60) -> dict[int, float]:
    from stream.config import PrivacyConfig
    from stream.privacy import apply_privacy
    from tracker.types import Pose

    cfg = PrivacyConfig(zones=[[0.0, 0.7, 0.3, 1.0]])

    def pose(cx: float, cy: float) -> Pose:
        kp = np.zeros((33, 3))
        kp[:11, 0] = cx + np.linspace(-20, 20, 11)
        kp[:11, 1] = cy + np.linspace(-10, 10, 11)
        kp[:, 2] = 1.0
        kp[11] = (cx - 45, cy + 70, 1)
        kp[12] = (cx + 45, cy + 70, 1)
        return Pose(kp)

    out: dict[int, float] = {}
    for faces in (0, 1, 3, 6):
        poses = [pose(640, 200)] + [pose(150 + 180 * k, 400) for k in range(faces)]
        times = []
        for i in range(n):
            img = frames[i % len(frames)]
            t = time.perf_counter()
            apply_privacy(img, poses, 0, cfg)
            times.append(time.perf_counter() - t)
        out[faces] = statistics.median(times) * 1e3
    return out


def run(args: argparse.Namespace) -> int:
    frames, source = load_frames(args.clip, max(2, args.frames))
    enc = bench_encode(frames, args.bitrate)
    priv = bench_privacy(frames)
    try:
        lat: dict[str, float] | None = bench_latency(frames, args.seconds, args.bitrate)
    except StreamError as exc:
        log.warning("%s", exc)
        lat = None
    rows = [
        ("frames", f"{len(frames)} x {WIDTH}x{HEIGHT} from {source}, {args.bitrate} kbps"),
        (
            "encode CPU per frame, ours",
            f"{enc['ours_cpu_ms']:.2f} ms (wall {enc['ours_wall_ms']:.2f} ms)",
        ),
        ("encode CPU per frame, ffmpeg CLI", f"{enc.get('ffmpeg_cpu_ms', float('nan')):.2f} ms"),
        ("ratio ours / ffmpeg (target <= 1.2)", f"{enc.get('ratio', float('nan')):.2f}"),
        (
            "encode CPU per frame, ffmpeg CLI fed I420",
            f"{enc.get('ffmpeg_i420_cpu_ms', float('nan')):.2f} ms",
        ),
        (
            "ratio ours / ffmpeg fed I420 (encode only)",
            f"{enc.get('ratio_i420', float('nan')):.2f}",
        ),
        ("our output bitrate", f"{enc['ours_kbps']:.0f} kbps"),
    ]
    if lat is not None:
        rows += [
            ("capture -> decodable at nginx-rtmp p50", f"{lat['p50_ms']:.0f} ms"),
            ("capture -> decodable at nginx-rtmp p95", f"{lat['p95_ms']:.0f} ms"),
            (
                "frames decoded / pushed (steady state)",
                f"{lat['frames']:.0f} / {lat['expected']:.0f}",
            ),
        ]
    else:
        rows.append(("capture -> decodable", "not measured (see warning)"))
    for faces, ms in priv.items():
        rows.append((f"privacy per 720p frame, {faces} faces + zone", f"{ms:.2f} ms"))
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
