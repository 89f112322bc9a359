"""What a peer can make the gateway hold, over raw sockets against a real ``oracle gateway
serve`` process (the same limits as the miners', ``oracle.http_limits``):

* a request head trickled byte by byte, or never sent, is closed after the head deadline, and
  so is the next head on a kept-alive connection (uvicorn alone kept such sockets forever);
* a body trickled too slowly is answered 408 (uvicorn alone waited for it forever);
* a 400 MB Content-Length is refused 413 before any body byte; a 400 MB chunked body is cut off
  at the limit without the gateway's memory moving;
* sockets beyond the connection cap are closed at once, and the gateway serves again after.

No chain and no circuit: nothing here gets past the HTTP layer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.http_probe import MIB, check_connection_cap, check_head_deadlines, huge_upload, read_status

ROOT = Path(__file__).resolve().parent.parent
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_CONNECTIONS = 6
MAX_BODY = 64 * 1024
SUBMIT = "/api/v1/inferences"


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def healthy(self) -> bool:
        return httpx.get(self.url + "/healthz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = tmp_path_factory.mktemp("gateway-limits")
    (base / "models").mkdir()
    log = (base / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "oracle.cli", "gateway", "serve", "--db", f"sqlite:///{base / 'db.sqlite'}",
         "--models", str(base / "models"), "--listen", "127.0.0.1:0",
         "--header-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
         "--max-connections", str(MAX_CONNECTIONS), "--max-body", str(MAX_BODY)],
        stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()          # {"gateway": "http://127.0.0.1:PORT"}
        assert line.startswith('{"gateway"'), (line, (base / "gateway.log").read_text())
        url = json.loads(line)["gateway"]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        gw = Gateway(proc, host, int(port))
        assert gw.healthy()
        yield gw
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_trickled_or_missing_request_head_is_closed(gateway: Gateway) -> None:
    check_head_deadlines(gateway.host, gateway.port, "/healthz", HEAD_TIMEOUT)


def test_trickled_body_gets_408(gateway: Gateway) -> None:
    head = [f"POST {SUBMIT} HTTP/1.1", "Host: x", "Content-Type: application/json", "Content-Length: 1000",
            "Authorization: Bearer not-a-key"]
    t0 = time.monotonic()
    with socket.create_connection((gateway.host, gateway.port)) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"{")
        assert read_status(s, 10.0) == 408
    assert time.monotonic() - t0 < BODY_TIMEOUT + 3


def test_oversized_bodies_are_refused_without_being_buffered(gateway: Gateway) -> None:
    head = [f"POST {SUBMIT} HTTP/1.1", "Host: x", "Content-Type: application/json",
            f"Content-Length: {400 * MIB}"]
    with socket.create_connection((gateway.host, gateway.port)) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        assert read_status(s, 5.0) == 413                    # not one body byte sent
    for chunked in (False, True):
        r = huge_upload(gateway.url + SUBMIT, gateway.proc.pid, total=400 * MIB, chunked=chunked,
                        answer_timeout=30)
        assert r.status in (413, None), r.summary()
        assert r.sent < 64 * MIB, r.summary()
        assert r.rss_peak - r.rss_before < 32 * MIB, r.summary()
    assert gateway.healthy()


def test_connections_beyond_the_cap_are_closed_at_once(gateway: Gateway) -> None:
    check_connection_cap(gateway.host, gateway.port, MAX_CONNECTIONS, HEAD_TIMEOUT)
    assert gateway.healthy()                       # and serving again once they are gone


def test_sigterm_stops_the_gateway_cleanly(tmp_path: Path) -> None:
    """SIGTERM ends ``oracle gateway serve`` through its ``finally`` (server stopped, database
    closed) with exit status 0, not by the default handler's death (-15)."""
    (tmp_path / "models").mkdir()
    log = tmp_path / "gateway.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oracle.cli", "gateway", "serve", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
             "--models", str(tmp_path / "models"), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(b'{"gateway"'), log.read_text()
            proc.terminate()
            assert proc.wait(timeout=20) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "shutting down" in log.read_text()
