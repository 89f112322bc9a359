"""Raw-socket clients for the HTTP hardening tests: a huge unsigned upload, a trickled request
head, a server that streams a huge answer. Raw sockets because a real HTTP client would refuse
to misbehave the way an attacker does (trickle, lie about lengths, ignore the answer).

Also runnable on its own, to measure a running server's memory under a large POST:

    python -m tests.http_probe --url http://127.0.0.1:PORT/prove --pid PID --mib 400
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

log = logging.getLogger(__name__)

MIB = 1 << 20


@dataclass
class UploadResult:
    status: int | None          # the HTTP status answered, None when the server just closed
    sent: int                   # body bytes the server accepted from us before answering/closing
    seconds: float
    rss_before: int             # server RSS, bytes
    rss_peak: int
    rss_after: int

    def summary(self) -> dict[str, object]:
        return {"status": self.status, "sent_mib": round(self.sent / MIB, 1), "seconds": round(self.seconds, 2),
                "rss_before_mib": round(self.rss_before / MIB, 1), "rss_peak_mib": round(self.rss_peak / MIB, 1),
                "rss_after_mib": round(self.rss_after / MIB, 1)}


def _addr(url: str) -> tuple[str, int, str]:
    u = urlsplit(url)
    assert u.hostname and u.port, url
    return u.hostname, u.port, u.path or "/"


def read_status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the first answer on ``sock``, None if it closes (or resets) first."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            buf += chunk
    except (ConnectionError, TimeoutError, OSError):
        return None
    parts = buf.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def huge_upload(url: str, pid: int, *, total: int, headers: dict[str, str] | None = None,
                chunked: bool = False, answer_timeout: float = 120.0) -> UploadResult:
    """POSTs ``total`` bytes (declared in Content-Length, or chunked) as fast as the server takes
    them, then reads the answer, sampling the server's RSS every 20 ms throughout."""
    host, port, path = _addr(url)
    proc = psutil.Process(pid)
    rss_before = proc.memory_info().rss
    peak = [rss_before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    t0 = time.monotonic()
    sent = 0
    status: int | None = None
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        block = b"7" * MIB
        frame = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
        try:
            while sent < total:
                s.sendall(frame)
                sent += len(block)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:          # the server answered early and closed: what a hardened one does
            pass
        status = read_status(s, answer_timeout)
    seconds = time.monotonic() - t0
    time.sleep(0.2)
    stop.set()
    sampler.join()
    rss_after = proc.memory_info().rss
    return UploadResult(status, sent, seconds, rss_before, max(peak[0], rss_after), rss_after)


def trickle_head(url: str, *, every: float, give_up: float) -> float | None:
    """Sends a request head one byte every ``every`` seconds, never finishing it. Returns how
    many seconds passed until the server closed the connection, or None if it was still open
    after ``give_up`` seconds."""
    host, port, path = _addr(url)
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Padding: " + "a" * 10_000
    t0 = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as s:
        s.settimeout(every)
        for byte in head.encode():
            if time.monotonic() - t0 > give_up:
                return None
            try:
                s.sendall(bytes([byte]))
                if s.recv(4096) == b"":
                    return time.monotonic() - t0
            except TimeoutError:
                continue                   # nothing from the server: it is still waiting on us
            except OSError:
                return time.monotonic() - t0
    return None


def check_head_deadlines(host: str, port: int, path: str, head_timeout: float) -> None:
    """A request head trickled byte by byte, a connection that says nothing, and the next head
    on a kept-alive connection are all closed within ``head_timeout`` (+2 s of slack)."""
    closed_after = trickle_head(f"http://{host}:{port}{path}", every=0.1, give_up=10)
    assert closed_after is not None and closed_after < head_timeout + 2, closed_after
    with socket.create_connection((host, port)) as s:          # says nothing at all
        t0 = time.monotonic()
        s.settimeout(10)
        assert s.recv(1) == b""
        assert time.monotonic() - t0 < head_timeout + 2
    with socket.create_connection((host, port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert read_status(s, 5) == 200
        t0 = time.monotonic()
        s.sendall(f"GET {path} HTTP/1.1\r\n".encode())
        while time.monotonic() - t0 < 10:
            try:
                s.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        assert time.monotonic() - t0 < head_timeout + 2


def check_connection_cap(host: str, port: int, max_connections: int, head_timeout: float) -> None:
    """With ``max_connections`` sockets open, one more is closed at once (before any head
    deadline could have closed it)."""
    held = [socket.create_connection((host, port)) for _ in range(max_connections)]
    try:
        time.sleep(0.2)                            # the server has accepted them all
        with socket.create_connection((host, port)) as extra:
            extra.settimeout(head_timeout / 2)
            assert extra.recv(1) == b""
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description="RSS of a server under one large unsigned POST")
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mib", type=int, default=400)
    ap.add_argument("--chunked", action="store_true")
    a = ap.parse_args()
    r = huge_upload(a.url, a.pid, total=a.mib * MIB, chunked=a.chunked)
    print(json.dumps(r.summary()))     # the tool's result, on stdout for scripts


if __name__ == "__main__":
    main()
