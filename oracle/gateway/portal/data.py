"""What the pages show comes from the gateway's own JSON API, read in-process (an ASGI call,
no socket): a page never shows anything the API would not serve to anyone, and the portal
depends on the API's published shapes (``oracle.gateway.schemas``), not on its internals."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from oracle.errors import OracleError
from oracle.gateway.schemas import InferenceView, MinerView, ModelDetail, ModelSummary

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
    def __init__(self, app: Any) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.internal",
            headers={PORTAL_HEADER: "1"}, timeout=30.0,
        )

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        r = await self._client.get(path, params=params)
        if r.status_code != 200:
            try:
                message = str(r.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = r.text[:500] or r.reason_phrase
            raise PageError(r.status_code, message)
        return r.json()

    async def _one(self, shape: type[T], path: str, params: dict[str, Any] | None = None) -> T:
        body = await self._get(path, params)
        try:
            return shape.model_validate(body)
        except ValidationError as e:
            raise PageError(502, f"{path} answered a body that is not a {shape.__name__}: {e}") from e

    async def models(self) -> list[ModelSummary]:
        body = await self._get("/api/v1/models")
        items = body.get("models", body) if isinstance(body, dict) else body
        try:
            return [ModelSummary.model_validate(m) for m in items]
        except (ValidationError, TypeError) as e:
            raise PageError(502, f"/api/v1/models answered a body that is not a list of models: {e}") from e

    async def model(self, model_id: str, callback_gas: int | None = None) -> ModelDetail:
        params = {"callback_gas": callback_gas} if callback_gas is not None else None
        return await self._one(ModelDetail, f"/api/v1/models/{model_id}", params)

    async def inference(self, inference_id: int) -> InferenceView:
        return await self._one(InferenceView, f"/api/v1/inferences/{inference_id}")

    async def request(self, chain_id: int, request_id: int) -> InferenceView:
        return await self._one(InferenceView, f"/api/v1/requests/{chain_id}/{request_id}")

    async def miners(self) -> list[MinerView]:
        body = await self._get("/api/v1/miners")
        items = body.get("miners", body) if isinstance(body, dict) else body
        return [MinerView.model_validate(m) for m in items]

    async def verification_key(self, url: str) -> bytes:
        r = await self._client.get(url)
        if r.status_code != 200:
            raise PageError(r.status_code, f"{url}: {r.text[:200]}")
        return r.content

    async def aclose(self) -> None:
        await self._client.aclose()
