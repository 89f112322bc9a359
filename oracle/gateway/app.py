"""``create_app(ctx)``: the gateway's FastAPI app.

Routes: the JSON API (``oracle.gateway.api``), ``/metrics``, ``/healthz``, ``/readyz``,
``/openapi.json`` and ``/docs`` (Swagger UI served from the pinned npm package
``swagger-ui-dist``, never from a CDN), and the portal's pages, mounted by
``oracle.gateway.portal.mount(app, ctx)`` when the portal package is present.

Every error is ``{"error": {"code", "message"}}`` with its status; a body over the limit is
refused (413) from its Content-Length before it is read, or when the streamed body passes the
limit, and a body that does not arrive in time gets 408; pydantic's validation errors are 400s
naming the field. Request-head deadline and connection cap: ``oracle.gateway.server``.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oracle.gateway import schemas as S
from oracle.gateway.api import router
from oracle.gateway.context import GatewayContext
from oracle.gateway.errors import CODES, ApiError, error_body
from oracle.gateway.health import readiness
from oracle.http_limits import BodyLimit, BodyRefused, Refuse, send_json_refusal
from oracle.paths import NODE_MODULES

log = logging.getLogger(__name__)

SWAGGER_DIR = NODE_MODULES / "swagger-ui-dist"
VERSION = "1"


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(
        title="Proof-of-Inference oracle gateway",
        version=VERSION,
        description="Submit inferences, follow requests, verify proofs. Reads need no key; "
                    "POST /api/v1/inferences needs `Authorization: Bearer KEY`.",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    _errors(app)
    app.include_router(router)
    _ops(app, ctx)
    _docs(app)
    _portal(app, ctx)
    app.add_middleware(_Timing, ctx=ctx)
    app.add_middleware(BodyLimit, limits=ctx.settings.http_limits(), refuse=_body_refusal(ctx))
    return app


# --------------------------------------------------------------------------- errors


def _refused(ctx: GatewayContext | None, code: str) -> None:
    if ctx is not None and ctx.metrics is not None:
        ctx.metrics.refusals.labels(code).inc()


def _errors(app: FastAPI) -> None:
    def answer(request: Request, status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> JSONResponse:
        _refused(getattr(request.app.state, "ctx", None), code)
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return answer(request, e.status, e.code, e.message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return answer(request, 400, "bad_request", _validation_message(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        message = str(e.detail) if e.detail else CODES.get(e.status_code, "error")
        if e.status_code == 404:
            message = f"no such path: {request.method} {request.url.path}"
        return answer(request, e.status_code, CODES.get(e.status_code, "error"), message,
                      dict(e.headers) if e.headers else None)

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(request, 500, "internal", f"internal error ({type(e).__name__}); see the gateway's log")


def _validation_message(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) if loc else "body"
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            where = f"body (character {loc[0]})" if loc else "body"
            msg = f"not valid JSON ({err.get('ctx', {}).get('error', msg)})"
        elif err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


# --------------------------------------------------------------------------- ops


def _ops(app: FastAPI, ctx: GatewayContext) -> None:
    @app.get("/healthz", tags=["ops"], summary="The process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - (ctx.metrics.started if ctx.metrics else 0), 1)}

    @app.get("/readyz", tags=["ops"], response_model=S.Readiness, summary="Database, migrations, models, chains",
             responses={503: {"model": S.Readiness, "description": "not ready (the failing checks say why)"}})
    def readyz() -> JSONResponse:
        r = readiness(ctx)
        return JSONResponse(r.model_dump(mode="json"), status_code=200 if r.ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        assert ctx.metrics is not None
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# --------------------------------------------------------------------------- docs, portal


def _docs(app: FastAPI) -> None:
    app.mount("/docs/static", StaticFiles(directory=SWAGGER_DIR, check_dir=False), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not (SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
            raise ApiError(503, f"Swagger UI is not installed ({SWAGGER_DIR}): run `make setup` (npm ci); "
                                "/openapi.json works without it", code="docs_missing")
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Oracle gateway API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js", swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def _portal(app: FastAPI, ctx: GatewayContext) -> None:
    """The portal's pages (oracle.gateway.portal, a separate package): mounted when present."""
    try:
        portal = importlib.import_module("oracle.gateway.portal")
    except ModuleNotFoundError as e:
        if e.name != "oracle.gateway.portal":
            raise
        log.info("no portal package: serving the API only")
        return
    mount = getattr(portal, "mount", None)
    if mount is None:
        log.info("oracle.gateway.portal has no mount(app, ctx): serving the API only")
        return
    mount(app, ctx)


# --------------------------------------------------------------------------- middleware


def _body_refusal(ctx: GatewayContext) -> Refuse:
    """The gateway's answer to a body the limits refuse: its own error body, counted."""
    async def refuse(send: Send, e: BodyRefused) -> None:
        code = CODES.get(e.status, "bad_request")
        _refused(ctx, code)
        await send_json_refusal(send, e.status, json.dumps(error_body(code, e.reason)).encode())
    return refuse


class _Timing:
    """HTTP latency per route template (``/api/v1/inferences/{inference_id}``, not the raw
    path: one series per route, not per id) and status."""

    def __init__(self, app: ASGIApp, ctx: GatewayContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.ctx.metrics is None:
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("/docs/static" if scope["path"].startswith("/docs/static")
                                                        else "unmatched")
            self.ctx.metrics.http_seconds.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - t0)
