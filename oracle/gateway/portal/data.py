"""What the pages show comes from the gateway's own JSON API, read in-process (an ASGI call:
no socket, no HTTP client): a page never shows anything the API would not serve to anyone, and
the portal depends on the API's published shapes (``oracle.gateway.schemas``), not on its
internals."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from oracle.errors import OracleError
from oracle.gateway.schemas import InferenceView, ModelDetail, ModelList, ModelSummary

T = TypeVar("T", bound=BaseModel)

# Marks the portal's own API reads (metrics and access logs can tell them from visitors').
PORTAL_HEADER = "x-oracle-portal"


class PageError(OracleError):
    """The API answered an error for what a page needs: shown with its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ApiReader:
    """Opens per-page readers of ``app``'s API. Each reader is addressed with the visitor's own
    base URL, so the absolute URLs the API puts in its answers (``verification_key_url``,
    ``status_url``) point where the visitor can follow them."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def session(self, base_url: str) -> ApiSession:
        return ApiSession(self._app, base_url)


class ApiSession:
    """GETs on the app itself, as ASGI calls (no socket, no HTTP client)."""

    def __init__(self, app: Any, base_url: str) -> None:
        self._app = app
        u = urlsplit(base_url)
        self._scheme = u.scheme or "http"
        self._host = u.netloc or "localhost"
        self._root = u.path.rstrip("/")

    async def __aenter__(self) -> ApiSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def call(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        host, _, port = self._host.partition(":")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": self._scheme, "path": self._root + path, "raw_path": (self._root + path).encode(),
            "root_path": "", "query_string": urlencode(params or {}).encode(),
            "headers": [(b"host", self._host.encode()), (b"accept", b"application/json"),
                        (PORTAL_HEADER.encode(), b"1")],
            "client": ("127.0.0.1", 0),
            "server": (host, int(port) if port else (443 if self._scheme == "https" else 80)),
        }
        status, chunks = 500, []
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()          # a GET has nothing more to send
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return status, b"".join(chunks)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        status, body = await self.call(path, params)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status != 200:
            try:
                message = str(data["error"]["message"])
            except (KeyError, TypeError):
                message = body[:500].decode(errors="replace") or f"HTTP {status}"
            raise PageError(status, message)
        if data is None:
            raise PageError(502, f"{path} answered something that is not JSON")
        return data

    async def _one(self, shape: type[T], path: str, params: dict[str, Any] | None = None) -> T:
        body = await self._get(path, params)
        try:
            return shape.model_validate(body)
        except ValidationError as e:
            raise PageError(502, f"{path} answered a body that is not a {shape.__name__}: {e}") from e

    async def models(self) -> list[ModelSummary]:
        return (await self._one(ModelList, "/api/v1/models")).models

    async def model(self, model_id: str, callback_gas: int | str | None = None) -> ModelDetail:
        params = {"callback_gas": callback_gas} if callback_gas is not None else None
        return await self._one(ModelDetail, f"/api/v1/models/{model_id}", params)

    async def inference(self, inference_id: int) -> InferenceView:
        return await self._one(InferenceView, f"/api/v1/inferences/{inference_id}")

    async def request(self, chain_id: int, request_id: int) -> InferenceView:
        return await self._one(InferenceView, f"/api/v1/requests/{chain_id}/{request_id}")
