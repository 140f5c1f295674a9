"""What the endpoint confirms receiving, and stream-time interval arithmetic."""

from __future__ import annotations

import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from urllib.parse import urlsplit

Span = tuple[int, int]


class NginxRtmpStat:
    """Reads nginx-rtmp's ``rtmp_stat all`` page: the publishing client's last timestamp (ms).

    nginx-rtmp reports, per client, the RTMP timestamp of the last message it received; our FLV
    timestamps are the stream clock, so that is exactly "received up to" on our clock.
    """

    def __init__(self, stat_url: str, publish_url: str, timeout: float = 1.0) -> None:
        parts = urlsplit(publish_url).path.strip("/").split("/")
        self.app = "/".join(parts[:-1])
        self.stream = parts[-1] if parts else ""
        self.stat_url = stat_url
        self.timeout = timeout

    def received_until_us(self) -> int | None:
        with urllib.request.urlopen(self.stat_url, timeout=self.timeout) as resp:
            root = ET.fromstring(resp.read())
        best: int | None = None
        for app in root.iter("application"):
            if app.findtext("name") != self.app:
                continue
            for st in app.iter("stream"):
                if st.findtext("name") != self.stream:
                    continue
                for cl in st.iter("client"):
                    ts = cl.findtext("timestamp")
                    if cl.find("publishing") is not None and ts is not None:
                        v = int(ts) * 1000
                        best = v if best is None else max(best, v)
        return best


def merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] >= s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def covered(span: Span, spans: Iterable[Span], tolerance: int = 0) -> bool:
    """Whether ``spans`` cover all of ``span`` (gaps up to ``tolerance`` µs are ignored)."""
    a, b = span
    for x, y in merge(spans):
        if x - tolerance <= a <= y + tolerance:
            a = max(a, y)
            if a + tolerance >= b:
                return True
    return a + tolerance >= b
