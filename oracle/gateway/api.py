"""The JSON API under ``/api/v1`` (paths from issue 13: part of the product, keep them).

Reads need no key; ``POST /api/v1/inferences`` needs ``Authorization: Bearer KEY``. Handlers
are plain functions (FastAPI runs them on its thread pool): they block on the database, the
chains' RPC and the proof backend."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from oracle.gateway import catalog, inferences, keys
from oracle.gateway import schemas as S
from oracle.gateway import verify as verifying
from oracle.gateway.context import GatewayContext
from oracle.gateway.errors import ApiError
from oracle.store import repo

BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": S.ErrorResponse, "description": what} for code, what in {
        400: "bad input (the message names the field, index and bound)", 404: "unknown model or request",
        413: "body too large"}.items()
}
SUBMIT_ERRORS: dict[int | str, dict[str, object]] = {
    **ERRORS,
    **{code: {"model": S.ErrorResponse, "description": what} for code, what in {
        401: "no or malformed API key", 403: "unknown or revoked API key",
        429: "rate limit of the key (Retry-After)", 503: "too many off-chain requests pending (Retry-After)"}.items()},
}


def ctx_of(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Ctx = Annotated[GatewayContext, Depends(ctx_of)]


def _model_id(model_id: str) -> str:
    if not BYTES32.match(model_id):
        raise ApiError(400, f"model id {model_id!r} is not 0x followed by 64 hex digits")
    return model_id.lower()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def api_key(authorization: Annotated[str | None, Header()] = None) -> str:
    """401 before the body is even parsed when the header is missing or malformed."""
    return keys.bearer(authorization)


router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/models", response_model=S.ModelList, summary="The model catalog")
def list_models(ctx: Ctx, request: Request) -> S.ModelList:
    base = _base(request)
    return S.ModelList(models=[catalog.summary(ctx, mid, c, base) for mid, c in sorted(catalog.model_ids(ctx).items())])


@router.get("/models/{model_id}", response_model=S.ModelDetail, summary="One model: shapes, setup, deployments, fees")
def get_model(ctx: Ctx, request: Request, model_id: str,
              callback_gas: Annotated[int | None, Query(ge=0, le=2**32 - 1,
                                                        description="callback gas for the fee quote")] = None,
              ) -> S.ModelDetail:
    mid = _model_id(model_id)
    circuit = inferences.resolve(ctx, mid)
    gas = ctx.settings.callback_gas_default if callback_gas is None else callback_gas
    return catalog.detail(ctx, mid, circuit, gas, _base(request))


@router.get("/models/{model_id}/vk", summary="The verification key (sha256 of these bytes = circuit id)",
            response_class=FileResponse)
def get_vk(ctx: Ctx, model_id: str,
           slice: Annotated[int | None, Query(ge=0, le=255, description="sliced models: which slice's key")] = None,
           ) -> FileResponse:
    circuit = inferences.resolve(ctx, _model_id(model_id))
    m = circuit.manifest
    if not m.slices:
        if slice is not None:
            raise ApiError(400, f"model {model_id} is one circuit, not sliced: ask for its key without ?slice")
        return FileResponse(m.path(circuit.dir, "vk"), media_type="application/json")
    # A sliced model has one key per slice; its id is the hash over the slices' circuit ids.
    if slice is None:
        raise ApiError(400, f"model {model_id} is sliced into {len(m.slices)} circuits: fetch each slice's key "
                            f"with ?slice=0..{len(m.slices) - 1} (sha256 of each = that slice's circuit id)")
    if slice >= len(m.slices) or slice not in m.held_slices(circuit.dir):
        raise ApiError(404, f"model {model_id} has no slice {slice} here (slices 0..{len(m.slices) - 1})")
    return FileResponse(m.slice_vk(circuit.dir, slice), media_type="application/json")


@router.post("/inferences", status_code=202, response_model=S.InferenceAccepted, responses=SUBMIT_ERRORS,
             summary="Submit an off-chain inference (proven by the oracle's miners, never relayed)")
def submit(ctx: Ctx, request: Request, body: S.InferenceSubmit, key: Annotated[str, Depends(api_key)]) -> JSONResponse:
    with ctx.db.session() as s:          # 403 before anything about the body is said
        keys.check_known(s, key)
    circuit = inferences.resolve(ctx, body.model_id.lower())
    input_fixed = inferences.fixed_input(circuit, body.input, body.input_fixed)
    with ctx.db.session() as s:
        row = keys.admit(s, key, ctx.bucket)            # 403 revoked since, 429 empty bucket
        if repo.pending_offchain(s) >= ctx.settings.max_pending:
            raise ApiError(503, f"{ctx.settings.max_pending} off-chain requests are pending: try again later",
                           headers={"Retry-After": "10"})
        req = repo.record_offchain(s, model_id=body.model_id.lower(), input_fixed=input_fixed, payee=body.payee,
                                   deadline=inferences.offchain_deadline(ctx), submitted_by=row.name)
        rid, state = req.request_id, req.state
    if ctx.metrics is not None:
        ctx.metrics.submissions.labels(body.model_id.lower()).inc()
    url = f"{_base(request)}/api/v1/inferences/{rid}"
    out = S.InferenceAccepted(id=rid, status_url=url, state=state)
    return JSONResponse(out.model_dump(), status_code=202, headers={"Location": url})


@router.get("/inferences/{inference_id}", response_model=S.InferenceView,
            summary="An off-chain inference: state, history, output, proof")
def get_inference(ctx: Ctx, inference_id: int) -> S.InferenceView:
    with ctx.db.session() as s:
        req = repo.find_offchain(s, inference_id)
        if req is None:
            raise ApiError(404, f"no off-chain inference {inference_id}")
        return inferences.inference_view(ctx, s, req)


@router.get("/requests/{chain_id}/{request_id}", response_model=S.InferenceView,
            summary="An on-chain request as this oracle knows it")
def get_request(ctx: Ctx, chain_id: int, request_id: int,
                oracle: Annotated[str | None, Query(description="the InferenceOracle, when the chain has several")]
                = None) -> S.InferenceView:
    with ctx.db.session() as s:
        found = repo.requests_on_chain(s, chain_id, request_id)
        if oracle is not None:
            found = [r for r in found if r.oracle.lower() == oracle.lower()]
        if not found:
            raise ApiError(404, f"no request {request_id} on chain {chain_id} is known to this oracle")
        if len(found) > 1:
            raise ApiError(400, f"request {request_id} exists at {len(found)} oracles of chain {chain_id}: "
                                "add ?oracle=0x...")
        return inferences.inference_view(ctx, s, found[0])


@router.post("/verify", response_model=S.VerifyResult, summary="Verify a proof off-chain (and on-chain by eth_call)")
def verify(ctx: Ctx, body: S.VerifyRequest) -> S.VerifyResult:
    return verifying.verify(ctx, body)


@router.get("/miners", response_model=S.MinerList, summary="Miners with their scores and latencies")
def miners(ctx: Ctx) -> S.MinerList:
    with ctx.db.session() as s:
        proofs = repo.proofs_by_prover(s)
        return S.MinerList(miners=[
            S.MinerView(hotkey=m.hotkey, score=m.score, successes=m.successes, failures=m.failures,
                        invalid=m.invalid, latency_seconds=m.latency_ema, proof_size_bytes=m.proof_size_ema,
                        proofs_stored=proofs.get(m.hotkey, 0), updated_at=inferences._utc(m.updated_at))
            for m in repo.miner_scores(s)
        ])
