"""Soak: the simulated robot streams to a local nginx-rtmp for a long while; memory and file
descriptors must stay flat.

Starts nginx (Debian ``nginx-light`` + ``libnginx-mod-rtmp``) on 127.0.0.1 at free ports, then
the real daemon (``coachcam run``) under a notify socket this script binds, publishing to it with
the stat page as its confirmer and recording to a temporary directory with a small quota (so
the oldest segments are deleted as it goes). Every ``--every`` seconds it reads the daemon's
RSS and open fds (and its publishing child's) from /proc. At the end: start/end/max figures,
and whether they stayed flat. Exit status 1 if they did not (or the daemon failed).

Usage: .venv/bin/python bench/soak.py [--minutes 30] [--every 10] [--width 1280 --height 720]

``--camera-gap 2 7`` unplugs the simulated camera from 2 s to 7 s and reports what the gap cost
in recorded video (the README's figure; the fault test asserts only what load cannot change:
frames on both sides, none inside the 5 s, so not how much longer the gap is):
  .venv/bin/python bench/soak.py --minutes 0.25 --every 5 --width 320 --height 240 --fps 15 \
      --camera-gap 2 7
Only its "camera gap" line counts: three samples in 15 s, warm-up included, say nothing about
memory, so that run may well end "GROWING ... FAIL" (exit 1); the memory figures are the 30-minute
run's.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int
    child_rss_kb: int
    child_fds: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """nginx-rtmp: live only (recording 30 minutes on the server side would only fill a disk)."""
    rtmp, http = free_port(), free_port()
    (root / "tmp").mkdir(parents=True)
    temp = " ".join(f"{k}_temp_path {root}/tmp/{k};" for k in ("client_body", "proxy"))
    conf = root / "nginx.conf"
    conf.write_text(
        f"load_module {RTMP_MODULE};\n"
        f"daemon off; master_process off; pid {root}/nginx.pid; error_log {root}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{rtmp}; application live {{ live on; }} }} }}\n"
        f"http {{ access_log off; {temp} server {{ listen 127.0.0.1:{http}; "
        "location /stat { rtmp_stat all; } } }\n"
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root)])
    for port in (rtmp, http):
        wait_port(port, proc)
    return proc, f"rtmp://127.0.0.1:{rtmp}/live/soak", f"http://127.0.0.1:{http}/stat"


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nginx exited ({proc.returncode}); is libnginx-mod-rtmp installed?")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            pass
        proc_wait(proc, 0.02)
    raise SystemExit(f"nginx: nothing listening on 127.0.0.1:{port}")


def proc_wait(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait up to ``seconds`` on the process (not a sleep: returns at once if it exits)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(seconds)


def config(tmp: Path, url: str, stat: str, args: argparse.Namespace) -> str:
    return f"""
[camera]
width = {args.width}
height = {args.height}
fps = {args.fps}
[sim]
scenario = "{args.scenario}"
[stream]
enabled = true
url = "{url}"
stat_url = "{stat}"
[stream.recording]
dir = "{tmp / "rec"}"
segment_s = 10.0
quota_mb = {args.quota_mb}
min_free_mb = 0.0
""" + (
        f"[sim.faults]\ncamera_gap_s = [{args.camera_gap[0]}, {args.camera_gap[1]}]\n"
        if args.camera_gap
        else ""
    )


def video_gap_s(rec: Path) -> float:
    """The longest pause between recorded frames (s), decoded from the local segments."""
    import av

    pts: list[float] = []
    for ts in sorted(rec.glob("*.ts")):
        with av.open(str(ts), format="mpegts") as c:
            pts += [float(f.pts * f.time_base) for f in c.decode(video=0)]
    return max((b - a for a, b in itertools.pairwise(pts)), default=0.0)


# Read from /proc directly: two numbers per process are not worth psutil as a dependency.
def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """Every child of every thread (a child belongs to the thread that forked it)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return out


def sample(pid: int, t: float) -> Sample:
    c_rss = c_fds = 0
    for child in children(pid):
        try:
            c_rss += rss_kb(child)
            c_fds += fd_count(child)
        except OSError:  # the child exited between listing and reading
            continue
    return Sample(t, rss_kb(pid), fd_count(pid), c_rss, c_fds)


def slope_per_min(samples: list[Sample], values: list[int]) -> float:
    """Least-squares growth per minute over the samples after warm-up (the first quarter, at
    least a minute: caches, the encoder's buffers and the first segments settle there)."""
    skip = max(len(samples) // 4, sum(1 for s in samples if s.t < 60.0))
    skip = min(skip, max(0, len(samples) - 2))
    ts = [s.t / 60.0 for s in samples[skip:]]
    vs = values[skip:]
    if len(ts) < 2:
        return 0.0
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / var if var else 0.0


def interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--scenario", default="board-to-desks")
    ap.add_argument("--quota-mb", type=float, default=200.0, help="recording quota (MB)")
    ap.add_argument(
        "--camera-gap",
        type=float,
        nargs=2,
        metavar=("START", "END"),
        help="unplug the simulated camera from START to END s; report the video it cost",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="coachcam-soak-") as d:
        tmp = Path(d)
        nginx, url, stat = start_nginx(tmp / "nginx")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp / "notify.sock"))
        (tmp / "run").mkdir()
        cfg = tmp / "coachcam.toml"
        cfg.write_text(config(tmp, url, stat, args))
        env = dict(
            os.environ,
            NOTIFY_SOCKET=str(tmp / "notify.sock"),
            WATCHDOG_USEC="10000000",
            RUNTIME_DIRECTORY=str(tmp / "run"),
            HOME=str(tmp),
        )
        log = (tmp / "daemon.log").open("w")
        cmd = [sys.executable, "-m", "coachcam.cli", "--log-level", "info", "run"]
        daemon = subprocess.Popen([*cmd, "--config", str(cfg)], env=env, stderr=log, cwd=tmp)
        samples: list[Sample] = []
        pings = 0
        status = ""
        rc: int | None = None
        try:
            try:
                t0 = time.monotonic()
                end = t0 + args.minutes * 60.0
                next_sample = t0 + args.every
                signal.signal(signal.SIGTERM, interrupted)
                while daemon.poll() is None and time.monotonic() < end:
                    # Wait on the notify socket until the next sample is due.
                    notify.settimeout(max(0.001, next_sample - time.monotonic()))
                    try:
                        msg = notify.recv(4096).decode()
                        pings += "WATCHDOG=1" in msg
                        for line in msg.splitlines():
                            if line.startswith("STATUS="):
                                status = line[len("STATUS=") :]
                        continue
                    except TimeoutError:
                        pass
                    if daemon.poll() is not None:
                        break
                    s = sample(daemon.pid, time.monotonic() - t0)
                    samples.append(s)
                    next_sample += args.every
                    print(
                        f"{s.t:7.0f} s  RSS {s.rss_kb / 1024:7.1f} MiB  fds {s.fds:3d}  "
                        f"publisher RSS {s.child_rss_kb / 1024:6.1f} MiB  fds {s.child_fds:3d}  "
                        f"| {status}",
                        file=sys.stderr,
                        flush=True,
                    )
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop early, still report
                print("interrupted: stopping the daemon", file=sys.stderr)
            rc = daemon.poll()
            if rc is None:
                daemon.send_signal(signal.SIGTERM)
                rc = daemon.wait(60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            nginx.terminate()
            nginx.wait(10)
            notify.close()
            log.close()
        errors = [
            line
            for line in (tmp / "daemon.log").read_text().splitlines()
            if (line.startswith(("ERROR", "CRITICAL")) or "Traceback" in line)
            and not (args.camera_gap and "camera lost: simulated camera unplugged" in line)
        ]
        segments = len(list((tmp / "rec").glob("*.ts")))
        if args.camera_gap:
            start, end = args.camera_gap
            print(
                f"camera gap: a {end - start:g} s unplug cost {video_gap_s(tmp / 'rec'):.2f} s "
                "of recorded video"
            )

    minutes = (samples[-1].t if samples else 0.0) / 60.0
    print(f"soak: {minutes:.1f} min at {args.width}x{args.height} {args.fps:g} fps -> {url}")
    print(f"last status: {status}")
    print(f"watchdog pings: {pings}; daemon exit {rc}; {segments} segments kept; errors {errors}")
    if not samples:
        print("no samples")
        return 1
    first, last = samples[0], samples[-1]
    ok = rc == 0 and not errors
    # Flat: what the trend after warm-up would add in a day stays under the limit (a leak of
    # 1 MiB a minute is 1.4 GiB a day: a Pi's whole memory).
    # Fds: the last quarter's median no higher than the second quarter's (a segment being
    # renamed can show one more fd in a single sample; a leak moves the median).
    for name, get, per_day_limit in (
        ("daemon RSS (KiB)", lambda s: s.rss_kb, 64 * 1024),
        ("daemon fds", lambda s: s.fds, None),
        ("publisher RSS (KiB)", lambda s: s.child_rss_kb, 64 * 1024),
        ("publisher fds", lambda s: s.child_fds, None),
    ):
        values = [get(s) for s in samples]
        per_min = slope_per_min(samples, values)
        if per_day_limit is None:
            q = max(1, len(values) // 4)
            steady = statistics.median(values[-q:]) <= statistics.median(
                values[q : 2 * q] or values
            )
        else:
            steady = per_min * 1440 <= per_day_limit
        ok = ok and steady
        print(
            f"{name:20s} start {get(first):8d}  end {get(last):8d}  max {max(values):8d}  "
            f"trend {per_min:+9.2f}/min  {'flat' if steady else 'GROWING'}"
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
