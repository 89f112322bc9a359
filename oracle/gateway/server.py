"""Serving the gateway: uvicorn in a background thread (``oracle run --api``, tests, the demo)
or in the foreground (``oracle gateway serve``).

Loopback only unless asked otherwise: the API accepts submissions from key holders and serves
every request's data, so exposing it is a decision (``--api-public``), not a default."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from oracle import http_limits
from oracle.errors import UserError
from oracle.gateway.portal import stopping
from oracle.http_limits import HttpLimits

log = logging.getLogger(__name__)


class ListenError(UserError, ValueError):
    """A listen address that is malformed, or public without the explicit flag."""


def parse_listen(value: str, *, public: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); a host that is not loopback is
    refused unless ``public``."""
    host, sep, port_s = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ListenError(f"listen address {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    if not public and not _loopback(host):
        raise ListenError(f"listen address {value!r} is not loopback: the gateway listens on 127.0.0.1/::1/localhost "
                          "unless you pass --api-public (oracle run) or --public (oracle gateway serve)")
    return host, int(port_s)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uvicorn_config(app: FastAPI, sock_host: str, limits: HttpLimits) -> uvicorn.Config:
    """uvicorn with the project's HTTP limits: head deadline, connection cap, no draining of
    unread bodies (``oracle.http_limits``); body size and deadline are the app's middleware."""
    return http_limits.uvicorn_config(app, limits, host=sock_host, log_level="warning", access_log=False,
                                      lifespan="off", timeout_graceful_shutdown=3)


class GatewayServer:
    """uvicorn in a daemon thread on a socket bound here (port 0: the OS picks; ``url`` tells)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, limits: HttpLimits | None = None) -> None:
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._app = app
        if limits is None:      # the app's own settings (create_app keeps its context)
            limits = app.state.ctx.settings.http_limits()
        self._server = uvicorn.Server(uvicorn_config(app, host, limits))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="gateway", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> GatewayServer:
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > end or not self._thread.is_alive():
                raise RuntimeError("the gateway's HTTP server did not start")
            time.sleep(0.01)
        log.info("gateway listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stops accepting, lets requests in flight finish (up to 3 s), joins the thread."""
        # Open dashboard event streams never finish by themselves: tell them first, or uvicorn
        # holds the shutdown for its whole grace period and then cancels them with an error.
        stopping(self._app).set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
        log.info("gateway stopped")

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
