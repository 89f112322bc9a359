"""Resource limits for every HTTP server the project runs (miners, the validator's circuit
server, the gateway).

Anyone can open a TCP connection to a miner or a public gateway, so what an UNAUTHENTICATED
peer can make the server hold must be bounded before authentication can even be checked:

* request head: at most ``max_header_bytes`` (h11's own limit, answered 400), and complete
  within ``header_timeout`` seconds of the connection opening (or of the previous answer on a
  kept-alive connection). uvicorn has no such timer: its keep-alive timer is cancelled by every
  byte received, so a client trickling one header byte a second held a connection forever.
  ``GuardedH11Protocol`` adds the timer.
* request body: at most ``max_body`` bytes, refused from ``Content-Length`` before any of it is
  read, or counted while streaming (chunked bodies) and refused at the limit; read within
  ``body_timeout`` seconds. A server that answers without reading the whole body closes the
  connection instead of draining the rest (uvicorn drained and discarded it for as long as the
  client kept sending).
* connections: at most ``max_connections`` open sockets (beyond: closed at once, so idle
  sockets cannot exhaust the process's file descriptors); uvicorn's ``limit_concurrency``
  answers 503 beyond that many connections/requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from oracle.errors import UserError

log = logging.getLogger(__name__)

KIB = 1024


class HttpLimitsError(UserError, ValueError):
    """Limits that cannot work (a negative size, a zero timeout): a configuration mistake."""


@dataclass(frozen=True)
class HttpLimits:
    max_body: int = 256 * KIB          # a prove request is a few kB
    header_timeout: float = 10.0       # whole request head, from connection (or last answer)
    body_timeout: float = 10.0         # whole request body, once the handler starts reading it
    keep_alive: int = 5                # idle seconds between requests (uvicorn's timeout_keep_alive)
    max_connections: int = 256         # open sockets; beyond: closed without a word
    limit_concurrency: int = 128       # uvicorn: 503 beyond this many connections or requests
    max_header_bytes: int = 16 * KIB   # request line + headers (h11: 400 beyond)

    def __post_init__(self) -> None:
        if self.max_body < 0 or self.max_header_bytes < 1024:
            raise HttpLimitsError("max_body must be >= 0 and max_header_bytes >= 1024")
        if min(self.header_timeout, self.body_timeout) <= 0 or self.keep_alive < 1:
            raise HttpLimitsError("timeouts must be positive")
        if self.max_connections < 1 or self.limit_concurrency < 1:
            raise HttpLimitsError("connection limits must be at least 1")


class BodyRefused(UserError):
    """A request body breaks the HTTP limits (the peer's fault: answered 400/408/413)."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status        # 400 (bad length), 408 (too slow) or 413 (too large)
        self.code = code            # bad_length | body_timeout | too_large
        self.reason = reason


def declared_length(headers: Any, max_body: int) -> int | None:
    """Content-Length if given (None for chunked); BodyRefused when it is malformed or over
    ``max_body``: decided from the head alone, before any body byte is read."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise BodyRefused(400, "bad_length", "Content-Length is not a number") from None
    if n < 0:
        raise BodyRefused(400, "bad_length", "Content-Length is negative")
    if n > max_body:
        raise BodyRefused(413, "too_large", f"body of {n} bytes exceeds this server's {max_body}-byte limit")
    return n


async def read_body(request: Request, limits: HttpLimits) -> bytes:
    """The request body, at most ``limits.max_body`` bytes, within ``limits.body_timeout``.
    Raises BodyRefused; never buffers more than the limit plus one received chunk."""
    declared_length(request.headers, limits.max_body)
    buf = bytearray()
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > limits.max_body:
                    raise BodyRefused(413, "too_large",
                                      f"body exceeds this server's {limits.max_body}-byte limit")
    except TimeoutError:
        raise BodyRefused(408, "body_timeout",
                          f"body not received within {limits.body_timeout:g} s") from None
    return bytes(buf)


Refuse = Callable[[Send, BodyRefused], Awaitable[None]]


class BodyLimit:
    """ASGI middleware for apps that do not read bodies through ``read_body``: Content-Length
    over the limit is answered 413 before the app runs; a streamed body is counted as the app
    reads it and cut off at the limit (413) or the deadline (408). The app never sees a
    truncated body, and whatever it answers to a cut-off body (FastAPI turns the read error into
    its own 400) is replaced by the cut's answer. ``refuse`` writes that answer (default: this
    module's JSON error)."""

    def __init__(self, app: ASGIApp, limits: HttpLimits, refuse: Refuse | None = None) -> None:
        self.app = app
        self.limits = limits
        self.refuse = refuse or _refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            declared_length(headers, self.limits.max_body)
        except BodyRefused as e:
            await self.refuse(send, e)
            return
        loop = asyncio.get_running_loop()
        seen = 0
        deadline: float | None = None
        body_done = False
        cut: BodyRefused | None = None

        async def limited_receive() -> Message:
            nonlocal seen, deadline, body_done, cut
            if body_done:            # later receives only wait for a disconnect: no deadline
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.limits.body_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                cut = BodyRefused(408, "body_timeout", f"body not received within {self.limits.body_timeout:g} s")
                raise cut from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limits.max_body:
                    cut = BodyRefused(413, "too_large", f"body exceeds this server's {self.limits.max_body}-byte limit")
                    raise cut
                body_done = not message.get("more_body", False)
            return message

        started = False
        replaced = False

        async def cut_aware_send(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                if cut is not None:
                    replaced = True
                    await self.refuse(send, cut)
                    return
            if not replaced:
                await send(message)

        try:
            await self.app(scope, limited_receive, cut_aware_send)
        except BodyRefused as e:
            if not started:
                await self.refuse(send, e)


async def _refuse(send: Send, e: BodyRefused) -> None:
    body = json.dumps({"error": "bad_request", "code": e.code, "reason": e.reason}).encode()
    await send_json_refusal(send, e.status, body)


async def send_json_refusal(send: Send, status: int, body: bytes) -> None:
    """A complete JSON answer that closes the connection (its body may be left unread)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline, a hard connection cap, and no
    draining of bodies the app did not read. ``limits`` is set by ``protocol_for``."""

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Before reading a byte: whatever this peer wanted, we cannot afford the socket.
            log.warning("refusing a connection from %s: %d connections open (limit %d)",
                        self.client, len(self.connections) - 1, self.limits.max_connections)
            transport.close()
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # IDLE = still waiting for (the rest of) a request head; anything else = head parsed.
        if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        # SEND_BODY after our answer is complete = the app answered without reading the whole
        # body (a refusal). Draining it would let the client stream on for as long as it likes.
        unread_body = self.conn.their_state is h11.SEND_BODY
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread_body:
            self.transport.close()
        elif self.conn.their_state is h11.IDLE:
            self._arm_head_timer()          # kept alive: the next head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection from %s: no complete request head within %g s",
                     self.client, self.limits.header_timeout)
            self.transport.close()


def protocol_for(limits: HttpLimits) -> type[GuardedH11Protocol]:
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def uvicorn_config(app: ASGIApp, limits: HttpLimits, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn Config that enforces ``limits`` (h11 with the guarded protocol class)."""
    return uvicorn.Config(
        app,
        http=protocol_for(limits),
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.limit_concurrency,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        **kwargs,
    )
