"""Real servers for the stream tests (nginx-rtmp, nginx dav, ffmpeg), and frames that carry their
own index so what a server received can be decoded and checked frame by frame."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

W, H, FPS = 320, 240, 30.0
BITS = 16
CELL = 16


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (scripts/apt-test-packages.txt lists it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Poll until something listens on ``port`` (a server has no event to wait on); fail
    with the port's name if nothing does within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} within {timeout:g} s")


# -- frames that say which frame they are ------------------------------------------------------
def make_image(index: int, w: int = W, h: int = H) -> np.ndarray:
    """A BGR frame with ``index`` as a 16-bit barcode along the top and a moving bar below."""
    img = np.full((h, w, 3), 60, np.uint8)
    x = (index * 4) % max(1, w - 40)
    img[h // 2 :, x : x + 40] = (0, 200, 255)
    for b in range(BITS):
        if (index >> b) & 1:
            img[0:CELL, b * CELL : (b + 1) * CELL] = 255
        else:
            img[0:CELL, b * CELL : (b + 1) * CELL] = 0
    return img


def read_index(img: np.ndarray) -> int:
    v = 0
    for b in range(BITS):
        cell = img[2 : CELL - 2, b * CELL + 2 : (b + 1) * CELL - 2]
        if cell.mean() > 128:
            v |= 1 << b
    return v


def decode_indices(path: Path | str, fmt: str | None = None) -> list[int]:
    """Decode a received file and read every frame's index."""
    import av

    out: list[int] = []
    try:
        with av.open(str(path), format=fmt) as c:
            for f in c.decode(video=0):
                out.append(read_index(f.to_ndarray(format="bgr24")))
    except av.FFmpegError:
        pass  # a file cut short by a killed server still yields what it holds
    return out


# -- nginx ------------------------------------------------------------------------------------
class Nginx:
    """nginx with the RTMP module (live + record + stat), optional TLS front end, optional dav."""

    def __init__(
        self,
        root: Path,
        *,
        tls: tuple[Path, Path] | None = None,
        dav: bool = False,
        dav_user: tuple[str, str] | None = None,
        publish_keys: tuple[str, ...] | None = None,
    ):
        """``publish_keys``: nginx-rtmp asks an ``on_publish`` HTTP endpoint (here, a location
        of the same nginx) and refuses any other stream name with 403, as a coach's server
        refuses a wrong stream key."""
        self.root = root
        self.publish_keys = publish_keys
        self.tls = tls
        self.dav = dav
        self.dav_user = dav_user
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port() if tls else 0
        self.proc: subprocess.Popen[bytes] | None = None
        for d in ("rec", "www", "tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)

    @property
    def rec(self) -> Path:
        return self.root / "rec"

    @property
    def www(self) -> Path:
        return self.root / "www"

    def url(self, key: str = "cam") -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    @property
    def stat_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/stat"

    @property
    def dav_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dav/"

    def conf(self) -> str:
        r = self.root
        mods = [f"load_module {RTMP_MODULE};"]
        stream = ""
        if self.tls:
            mods.append(f"load_module {STREAM_MODULE};")
            cert, key = self.tls
            stream = (
                f"stream {{ server {{ listen 127.0.0.1:{self.tls_port} ssl; "
                f"ssl_certificate {cert}; ssl_certificate_key {key}; "
                f"proxy_pass 127.0.0.1:{self.rtmp_port}; }} }}"
            )
        dav = ""
        if self.dav:
            dav = (
                f"location /dav/ {{ alias {r}/www/; dav_methods PUT DELETE MKCOL; "
                "create_full_put_path on; client_max_body_size 0; "
            )
            if self.dav_user:
                user, pw = self.dav_user
                hashed = subprocess.run(
                    ["openssl", "passwd", "-apr1", pw], capture_output=True, text=True, check=True
                ).stdout.strip()
                (r / "htpasswd").write_text(f"{user}:{hashed}\n")
                dav += f'auth_basic "coachcam"; auth_basic_user_file {r}/htpasswd; '
            dav += "}"
        notify = auth = ""
        if self.publish_keys is not None:
            notify = f"notify_method get; on_publish http://127.0.0.1:{self.http_port}/auth;"
            ok = " ".join(f'if ($arg_name = "{k}") {{ return 204; }}' for k in self.publish_keys)
            auth = f"location /auth {{ {ok} return 403; }}"
        temp = " ".join(
            f"{k}_temp_path {r}/tmp/{k};"
            for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return "\n".join(
            [
                *mods,
                f"daemon off; master_process off; pid {r}/nginx.pid;",
                f"error_log {r}/error.log info;",
                "events { worker_connections 64; }",
                f"rtmp {{ server {{ listen 127.0.0.1:{self.rtmp_port}; "
                f"application live {{ live on; record all; record_path {r}/rec; "
                f"record_unique on; {notify} }} }} }}",
                stream,
                f"http {{ access_log off; {temp} server {{ listen 127.0.0.1:{self.http_port}; "
                f"location /stat {{ rtmp_stat all; }} {auth} {dav} }} }}",
            ]
        )

    def start(self) -> Nginx:
        need("nginx")
        if not Path(RTMP_MODULE).exists():
            pytest.skip("nginx RTMP module absent (Debian package libnginx-mod-rtmp)")
        conf = self.root / "nginx.conf"
        conf.write_text(self.conf())
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.http_port)
        wait_port(self.rtmp_port)
        if self.tls_port:
            wait_port(self.tls_port)
        return self

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is not None:
            p.send_signal(signal.SIGCONT)
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def recordings(self) -> list[Path]:
        return sorted(self.rec.glob("*.flv"), key=lambda p: p.stat().st_mtime_ns)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- certificates ---------------------------------------------------------------------------
def make_ca_and_cert(d: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signs for ``host`` (IP SAN); returns (ca, cert, key)."""
    need("openssl")
    ca_key, ca = d / "ca.key", d / "ca.pem"
    key, csr, cert = d / "server.key", d / "server.csr", d / "server.pem"
    ext = d / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{host}\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=coachcam test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={host}")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


def self_signed(d: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    need("openssl")
    key, cert = d / "self.key", d / "self.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


# -- pacing ---------------------------------------------------------------------------------
class Pacer:
    """Pushes frames at ``fps`` of real time (servers are real, so time is too)."""

    def __init__(self, fps: float = FPS) -> None:
        self.fps = fps
        self.t0 = time.monotonic()
        self.n = 0

    def next(self) -> float:
        due = self.t0 + self.n / self.fps
        # A real wait on purpose: a real server receives these, so no fake clock can stand in.
        time.sleep(max(0.0, due - time.monotonic()))
        self.n += 1
        return time.monotonic()


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
