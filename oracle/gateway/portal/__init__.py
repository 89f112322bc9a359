"""The gateway's web portal (issue 13): the model catalog, a submit form, request pages whose
proofs the visitor's browser verifies itself, and a live operator dashboard.

``mount(app, ctx)`` adds the pages to the gateway's FastAPI app (``oracle.gateway.app``):

- ``/`` the catalog, ``/models/{model_id}`` a model and its submit form,
  ``/inferences/{id}`` and ``/requests/{chain_id}/{request_id}`` request pages;
- ``/dashboard`` and its server-sent events ``/dashboard/events``;
- ``/portal/static/...`` the portal's own JS/CSS, ``/portal/vendor/...`` the pinned npm
  browser libraries (snarkjs' browser bundle, uPlot), never a CDN.

Pages read the gateway's JSON API in-process (``data.ApiReader``): they show what the API
serves. The dashboard reads the store (``oracle.store.repo.stats``) and the chains' relayer
accounts. See docs/gateway.md, section "Portal".
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from oracle.gateway.portal import dashboard as dash
from oracle.gateway.portal.assets import vendor_files
from oracle.gateway.portal.data import ApiReader
from oracle.gateway.portal.pages import STATIC_DIR, STATIC_PREFIX, VENDOR_PREFIX, Pages, router

EVENT_INTERVAL = 1.0    # seconds between a dashboard's snapshots (the store: one read per half interval for all)


def stopping(app: FastAPI) -> threading.Event:
    """Set it when the server shuts down: open dashboard streams then end within 0.2 s instead
    of holding the shutdown for its grace period (``GatewayServer.stop`` sets it)."""
    ev = getattr(app.state, "portal_stopping", None)
    if not isinstance(ev, threading.Event):
        ev = threading.Event()
        app.state.portal_stopping = ev
    return ev


def mount(app: FastAPI, ctx: Any, *, event_interval: float = EVENT_INTERVAL) -> None:
    """Adds the portal to ``app``. ``ctx``: the gateway's context (``db``, ``catalog``, and the
    chains it reads); AssetsMissing when the npm packages the portal serves are not installed."""
    vendor = vendor_files()
    pages = Pages(ApiReader(app), ctx.catalog, getattr(ctx, "chains", ()))
    app.include_router(router(pages, interval=event_interval, window_minutes=int(dash.WINDOW_SECONDS // 60)))
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="portal-static")

    async def vendor_file(name: str) -> Response:
        if name not in vendor:
            return Response(f"no vendored file {name!r}", status_code=404, media_type="text/plain")
        path, media_type = vendor[name]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route(VENDOR_PREFIX + "/{name}", vendor_file, methods=["GET"], include_in_schema=False)

    chains = dash.reader_of(ctx)
    stop = stopping(app)

    # Half the interval: a stream's next read is never served a snapshot older than that.
    take = dash.SharedSnapshot(lambda: dash.snapshot(ctx.db, chains), max_age=event_interval / 2)

    async def events(request: Request) -> StreamingResponse:
        return StreamingResponse(
            dash.events(take, request.is_disconnected, event_interval, stop),
            media_type="text/event-stream",
            # no-transform/X-Accel-Buffering: proxies must pass each event on at once.
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    app.add_api_route("/dashboard/events", events, methods=["GET"], include_in_schema=False)
