"""Off-chain inferences in (validation, storage) and every request out (the request page's
JSON, for off-chain and on-chain requests alike)."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from oracle.circuits.catalog import Circuit
from oracle.circuits.fixedpoint import from_fixed
from oracle.gateway import schemas as S
from oracle.gateway.context import GatewayContext
from oracle.gateway.errors import ApiError
from oracle.store import repo
from oracle.store.models import OFFCHAIN, TERMINAL, Request, State

log = logging.getLogger(__name__)


def fixed_input(circuit: Circuit, values: list[float] | None, fixed: list[int] | None) -> list[int]:
    """The fixed-point input for ``circuit`` from exactly one of floats or fixed-point integers;
    400 naming the index and the bound of the first bad value."""
    m = circuit.manifest
    if (values is None) == (fixed is None):
        raise ApiError(400, 'give exactly one of "input" (floats) or "input_fixed" (integers at scale '
                            f'2**{m.input_scale})')
    given = values if values is not None else fixed
    assert given is not None
    if len(given) != m.input_size:
        raise ApiError(400, f"input has {len(given)} values, model {m.name} takes {m.input_size} "
                            f"(shape {list(m.input_shape)})")
    lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
    if fixed is not None:
        for i, v in enumerate(fixed):
            if not lo <= v <= hi:
                raise ApiError(400, f"input_fixed[{i}] = {v} is outside the model's {m.input_bits}-bit range "
                                    f"[{lo}, {hi}]")
        return list(fixed)
    assert values is not None
    out: list[int] = []
    scale = 1 << m.input_scale
    for i, x in enumerate(values):
        if not math.isfinite(x):
            raise ApiError(400, f"input[{i}] = {x} is not a finite number")
        v = round(x * scale)
        if not lo <= v <= hi:
            raise ApiError(400, f"input[{i}] = {x:g} is outside the model's range [{lo / scale:g}, {hi / scale:g}] "
                                f"({m.input_bits}-bit fixed point at scale 2**{m.input_scale}: {v} not in "
                                f"[{lo}, {hi}])")
        out.append(v)
    return out


def resolve(ctx: GatewayContext, model_id: str) -> Circuit:
    """The circuit of ``model_id``; 404 when neither a configured chain nor the local circuits
    know it, 503 when only an unreadable chain could tell."""
    try:
        circuit = ctx.circuit(model_id)
    except Exception as e:
        raise ApiError(503, f"model {model_id} is not a local circuit id and the chains' registries cannot be "
                            f"read right now ({type(e).__name__})", headers={"Retry-After": "5"}) from e
    if circuit is None:
        raise ApiError(404, f"unknown model {model_id}: not registered on a configured chain and not the id of a "
                            "circuit this gateway serves (GET /api/v1/models lists them)")
    return circuit


def inference_view(ctx: GatewayContext, s: Session, req: Request) -> S.InferenceView:
    circuit = _circuit_of(ctx, req)
    m = circuit.manifest if circuit is not None else None
    hist = repo.history(s, req.id)
    p = req.proof
    output_fixed = p.output_ints if p is not None else None
    proven_at = next((h.at for h in hist if h.to_state == State.PROVEN.value), None)
    offchain = req.origin == OFFCHAIN
    proof = None
    fulfil = None
    if p is not None:
        proof = S.ProofView(
            backend=p.backend, circuit_id=p.circuit_id, public_signals=list(p.public_signals), proof=p.native,
            calldata=p.calldata, payee=p.payee, verified=p.verified, prover=p.prover,
            prove_seconds=p.prove_seconds, created_at=_utc(p.created_at),
        )
        tx = repo.tx_by_hash(s, req.chain_id, req.fulfil_tx) if req.fulfil_tx else None
        fulfil = S.FulfilView(
            request_id=req.request_id, output=list(p.output_ints), payee=p.payee, proof=p.calldata,
            calldata=None if offchain else _fulfil_calldata(ctx, req, p.output_ints, p.payee, p.calldata),
            tx_hash=req.fulfil_tx, block_number=req.fulfil_block,
            gas_used=(tx.gas_used // max(1, len(tx.request_pks or []))) if tx and tx.gas_used else None,
            callback_succeeded=req.callback_succeeded,
        )
    return S.InferenceView(
        id=req.request_id, origin="offchain" if offchain else "chain", chain_id=req.chain_id,
        oracle=None if offchain else req.oracle, request_id=req.request_id, model_id=req.model_id,
        circuit_id=m.circuit_id if m else (p.circuit_id if p else None), state=req.state,
        final=State(req.state) in TERMINAL, reason=req.reason, attempts=req.attempts,
        created_at=_utc(req.created_at), updated_at=_utc(req.updated_at),
        history=[S.HistoryEntry(from_state=h.from_state, to_state=h.to_state, at=_utc(h.at), reason=h.reason,
                                by=h.lease_owner) for h in hist],
        input_fixed=req.input_ints, input=from_fixed(req.input_ints, m.input_scale) if m else None,
        output_fixed=output_fixed,
        output=from_fixed(output_fixed, m.output_scale) if m and output_fixed is not None else None,
        proof=proof, fulfil=fulfil, adapter=None if offchain else _adapter(ctx, req),
        requester=req.requester, deadline=req.deadline, fee_wei=None if offchain else req.fee,
        block_number=None if offchain else req.block_number, tx_hash=None if offchain else req.tx_hash,
        submit_to_proven_seconds=(_utc(proven_at) - _utc(req.created_at)).total_seconds() if proven_at else None,
    )


def offchain_deadline(ctx: GatewayContext) -> int:
    return int(time.time()) + ctx.settings.offchain_ttl


def _circuit_of(ctx: GatewayContext, req: Request) -> Circuit | None:
    if req.proof is not None and (c := ctx.catalog.get(req.proof.circuit_id)) is not None:
        return c
    if (c := ctx.catalog.get(req.model_id)) is not None:
        return c
    try:
        return ctx.circuit(req.model_id)
    except Exception as e:       # a chain down: the page shows fixed-point values only
        log.info("request %s:%s: model %s unresolved: %s", req.chain_id, req.request_id, req.model_id, e)
        return None


def _view_of(ctx: GatewayContext, chain_id: int):  # type: ignore[no-untyped-def]
    for v in ctx.chains:
        try:
            if v.chain_id == chain_id:
                return v
        except Exception:
            continue
    return None


def _adapter(ctx: GatewayContext, req: Request) -> str | None:
    view = _view_of(ctx, req.chain_id)
    if view is None:
        return None
    try:
        entry = view.model(req.model_id)
    except Exception:
        return None
    return entry.verifier if entry is not None else None


def _fulfil_calldata(ctx: GatewayContext, req: Request, output: list[int], payee: str | None,
                     proof: str) -> str | None:
    view = _view_of(ctx, req.chain_id)
    if view is None or payee is None:
        return None
    from web3 import Web3

    data = view.oracle.encode_abi("fulfill", args=[req.request_id, output, Web3.to_checksum_address(payee),
                                                   bytes.fromhex(proof.removeprefix("0x"))])
    return str(data)


def _utc(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC).
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
