"""An ASGI app served by uvicorn in a background thread (the validator's circuit server, and
in-process miners in tests). The OS picks the port when ``port`` is 0. The server enforces
``HttpLimits`` (request-head deadline, body size and deadline, connection cap), as a miner does:
the circuit server listens where miners, and so anyone, can reach it."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from oracle.http_limits import BodyLimit, HttpLimits, uvicorn_config

log = logging.getLogger(__name__)


class ThreadedServer:
    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, name: str = "http",
                 limits: HttpLimits | None = None) -> None:
        self.name = name
        self.limits = limits or HttpLimits()
        # Bind here so the port is known (and owned) before the thread starts serving.
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        cfg = uvicorn_config(BodyLimit(app, self.limits), self.limits, log_level="warning", access_log=False,
                             lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > end or not self._thread.is_alive():
                raise RuntimeError(f"{self.name}: server did not start")
            time.sleep(0.01)
        log.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
