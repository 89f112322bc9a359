"""The portal's server-rendered pages (Jinja2): the model catalog, a model with its submit form,
request pages with the in-browser verifier, and the dashboard shell (its data streams from
``/dashboard/events``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from oracle.circuits.catalog import CircuitCatalog
from oracle.gateway.portal.data import ApiReader, ApiSession, PageError
from oracle.gateway.schemas import InferenceView, ModelDetail

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
STATIC_PREFIX = "/portal/static"
VENDOR_PREFIX = "/portal/vendor"
ENCODING_FIELDS = ("signal_layout", "input_bits", "output_bits", "packing", "payee")
# Pages load code from this gateway only: a verdict shown by the page must come from the
# scripts served here (the vendored snarkjs needs WebAssembly and blob workers), never from a
# third party or an injected inline script.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
       "style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def _static_versions() -> dict[str, str]:
    """A content hash per static file: its URL changes when it does (browsers may cache it)."""
    return {str(p.relative_to(STATIC_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()[:12]
            for p in STATIC_DIR.rglob("*") if p.is_file()}


def _wei(v: str | int | None) -> str:
    if v is None:
        return "–"
    w = int(v)
    if w == 0:
        return "0 (free)"
    eth = Decimal(w) / Decimal(10**18)
    return f"{eth.normalize():f} ETH ({w:,} wei)"


def _when(dt: datetime | None) -> str:
    if dt is None:
        return "–"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _unixtime(t: int | float | None) -> str:
    return "–" if t is None else _when(datetime.fromtimestamp(float(t), UTC))


def make_env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    versions = _static_versions()
    env.globals["static"] = lambda path: f"{STATIC_PREFIX}/{path}?v={versions.get(path, '0')}"
    env.filters["wei"] = _wei
    env.filters["when"] = _when
    env.filters["unixtime"] = _unixtime
    return env


def example_input(m: ModelDetail) -> str:
    """A deterministic in-range example (the form is never empty)."""
    lo, hi = m.input_range[0] / 2**m.input_scale, m.input_range[1] / 2**m.input_scale
    xs = [min(max(((i * 37) % 100) / 100, lo), hi) for i in range(m.input_size)]
    return ", ".join(f"{x:g}" for x in xs)


class Pages:
    def __init__(self, api: ApiReader, catalog: CircuitCatalog, chains: Sequence[Any] = ()) -> None:
        self.api = api
        self.catalog = catalog
        self.chains = list(chains)        # the gateway's read-only chain views (ChainView)
        self.env = make_env()

    def render(self, name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=http_status,
                            headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})

    def error(self, e: PageError, follow_api: str | None = None) -> HTMLResponse:
        """An error page. ``follow_api``: for a request not known (yet), the API URL the page
        polls to show it as soon as the oracle has seen it (a request page opened right after
        its transaction was sent)."""
        titles = {400: "Bad request", 404: "Not found", 502: "Bad answer from the API", 503: "Unavailable"}
        return self.render("error.html", http_status=e.status, nav="", status=e.status,
                           title=titles.get(e.status, "Error"), message=e.message,
                           follow_api=follow_api if e.status == 404 else None)

    def encoding(self, circuit_id: str | None) -> dict[str, Any] | None:
        """How this circuit's public signals are built (what the page's verifier rebuilds), from
        the circuit folder's manifest; None for a circuit this gateway does not serve."""
        c = self.catalog.get(circuit_id) if circuit_id else None
        if c is None:
            return None
        m = c.manifest
        return {f: getattr(m, f) for f in ENCODING_FIELDS}

    # ------------------------------------------------------------------ pages

    async def home(self, request: Request) -> Response:
        callback_gas = _param(request, "callback_gas")
        try:
            async with self._api(request) as api:
                models = [await api.model(s.model_id, callback_gas) for s in await api.models()]
        except PageError as e:
            return self.error(e)
        shown_gas = models[0].deployments[0].callback_gas if models and models[0].deployments else callback_gas
        return self.render("home.html", nav="models", models=models, backends=sorted({m.backend for m in models}),
                           callback_gas=shown_gas if shown_gas is not None else "")

    async def model(self, request: Request) -> Response:
        try:
            async with self._api(request) as api:
                m = await api.model(request.path_params["model_id"], _param(request, "callback_gas"))
        except PageError as e:
            return self.error(e)
        return self.render("model.html", nav="models", m=m, example=example_input(m))

    async def inference(self, request: Request) -> Response:
        iid = int(request.path_params["inference_id"])
        async with self._api(request) as api:
            try:
                r = await api.inference(iid)
            except PageError as e:
                return self.error(e, f"/api/v1/inferences/{iid}")
            return await self._request_page(api, r, f"Inference {iid}", f"/api/v1/inferences/{iid}")

    async def onchain(self, request: Request) -> Response:
        chain_id, rid = int(request.path_params["chain_id"]), int(request.path_params["request_id"])
        async with self._api(request) as api:
            try:
                r = await api.request(chain_id, rid)
            except PageError as e:
                return self.error(e, f"/api/v1/requests/{chain_id}/{rid}")
            return await self._request_page(api, r, f"Request {rid} on chain {chain_id}",
                                            f"/api/v1/requests/{chain_id}/{rid}")

    def _api(self, request: Request) -> ApiSession:
        return self.api.session(str(request.base_url))

    async def _request_page(self, api: ApiSession, r: InferenceView, title: str, api_url: str) -> Response:
        try:
            m: ModelDetail | None = await api.model(r.model_id)
        except PageError as e:
            log.info("request page of %s: model %s not in the catalog (%s)", api_url, r.model_id, e.message)
            m = None
        circuit_id = (m.circuit_id if m else None) or r.circuit_id
        verify_data = None
        encoding = self.encoding(circuit_id)
        if r.proof is not None and m is not None and encoding is not None:
            registered = await run_in_threadpool(self.registered_ids, m.model_id)
            verify_data = {
                "snarkjs_url": f"{VENDOR_PREFIX}/snarkjs.min.js",
                "vk_url": m.verification_key_url,
                "expected_ids": _expected_ids(m, r, registered),
                "encoding": encoding,
                "input_fixed": r.input_fixed,
                "output_fixed": r.output_fixed,
                "payee": r.proof.payee,
            }
        return self.render("request.html", nav="", r=r, m=m, title=title, api_url=api_url,
                           encoding=encoding, verify_data=verify_data)

    def registered_ids(self, model_id: str) -> list[dict[str, str]]:
        """The circuit id each configured chain's ModelRegistry holds for ``model_id``, read from
        the chain (the views cache entries for a few seconds). A chain that does not answer is
        left out (logged): the page then compares with the ids it has."""
        out = []
        for v in self.chains:
            try:
                entry = v.model(model_id)
                if entry is not None:
                    out.append({"source": f"registry on {v.name} ({v.chain_id})", "id": str(entry.circuit_id)})
            except Exception as e:  # RPC down or not a registry: the other checks still run
                log.warning("circuit id of %s on chain %s unreadable: %s", model_id, v.name, e)
        return out

    async def dashboard(self, request: Request, interval: float, window_minutes: int) -> Response:
        return self.render("dashboard.html", nav="dashboard", interval=interval, window_minutes=window_minutes)


def _expected_ids(m: ModelDetail, r: InferenceView, registered: list[dict[str, str]]) -> list[dict[str, str]]:
    """The circuit ids the verification key must hash to: the catalog's, the one each configured
    chain's registry holds for the model, and the request's own when it names another."""
    ids = [{"source": "catalog", "id": m.circuit_id}, *registered]
    if r.circuit_id and r.circuit_id.lower() != m.circuit_id.lower():
        ids.append({"source": "the request's circuit", "id": r.circuit_id})
    return ids


def _param(request: Request, name: str) -> str | None:
    """A query parameter passed on to the API as given: the API validates it, and a bad value
    gets the API's 400 and message on the page (never silently replaced by a default)."""
    raw = request.query_params.get(name)
    return None if raw is None or raw == "" else raw


def router(pages: Pages, *, interval: float, window_minutes: int) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    r.add_api_route("/", pages.home, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/models/{model_id}", pages.model, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/inferences/{inference_id:int}", pages.inference, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/requests/{chain_id:int}/{request_id:int}", pages.onchain, methods=["GET"],
                    response_class=HTMLResponse)

    async def dashboard(request: Request) -> Response:
        return await pages.dashboard(request, interval, window_minutes)

    r.add_api_route("/dashboard", dashboard, methods=["GET"], response_class=HTMLResponse)
    return r
