"""Read-only series for the operator dashboard (the gateway portal's ``/dashboard``): request
latencies over time, proving times, fulfilment gas, why requests were given up, relayer
nonces. Nothing here changes a row; every query is bounded (``limit``) so a dashboard polling
every second stays cheap on a large store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from oracle.store.models import Nonce, Proof, RelayerTx, Request, State, StateChange

FULFIL_KINDS = ("fulfill", "fulfillBatch")
GIVEN_UP = (State.REJECTED.value, State.FAILED.value, State.EXPIRED.value)


@dataclass(frozen=True)
class RequestTiming:
    """One request's milestones (unix seconds; None until reached)."""

    pk: int
    origin: str
    state: str
    created_at: float
    proven_at: float | None
    fulfilled_at: float | None


def request_timings(s: Session, since: float, limit: int = 500) -> list[RequestTiming]:
    """Requests stored at or after ``since`` (unix seconds), oldest first (the newest ``limit``),
    with when each first became ``proven`` and ``fulfilled``."""
    # The newest requests first (ix_requests_created_at), then only their state changes
    # (ix on request_pk): grouping the whole state_changes table cost ~0.5 s at 100 k requests.
    recent = (
        select(Request.id, Request.origin, Request.state, Request.created_at)
        .where(Request.created_at >= _dt(since))
        .order_by(Request.created_at.desc(), Request.id.desc()).limit(limit).subquery()
    )

    def first(state: State) -> Any:
        return func.min(case((StateChange.to_state == state.value, StateChange.at)))

    q = (
        select(recent.c.id, recent.c.origin, recent.c.state, recent.c.created_at, first(State.PROVEN),
               first(State.FULFILLED))
        .select_from(recent).outerjoin(StateChange, StateChange.request_pk == recent.c.id)
        .group_by(recent.c.id, recent.c.origin, recent.c.state, recent.c.created_at)
        .order_by(recent.c.created_at.desc(), recent.c.id.desc())
    )
    rows = s.execute(q).all()
    return [RequestTiming(int(pk), str(o), str(st), _ts(c), _ts_or_none(p), _ts_or_none(f))
            for pk, o, st, c, p, f in reversed(rows)]


@dataclass(frozen=True)
class ProofTiming:
    at: float             # when the proof was stored (unix seconds)
    seconds: float        # proving time
    prover: str           # "local" or a miner hotkey


def proof_timings(s: Session, since: float, limit: int = 500) -> list[ProofTiming]:
    """Proofs stored at or after ``since``, oldest first (the newest ``limit``)."""
    rows = s.execute(
        select(Proof.created_at, Proof.prove_seconds, Proof.prover).where(Proof.created_at >= _dt(since))
        .order_by(Proof.created_at.desc()).limit(limit)
    ).all()
    return [ProofTiming(_ts(at), float(sec), str(p)) for at, sec, p in reversed(rows)]


@dataclass(frozen=True)
class GasPoint:
    at: float             # when the transaction was sent (unix seconds)
    chain_id: int
    kind: str             # fulfill | fulfillBatch
    requests: int
    gas_per_request: int  # a batch's gas shared equally by its requests


def fulfilment_gas(s: Session, since: float, limit: int = 500) -> list[GasPoint]:
    """Mined fulfilment transactions sent at or after ``since``, oldest first."""
    rows = s.execute(
        select(RelayerTx.sent_at, RelayerTx.chain_id, RelayerTx.kind, RelayerTx.request_pks, RelayerTx.gas_used)
        .where(RelayerTx.kind.in_(FULFIL_KINDS), RelayerTx.gas_used.is_not(None), RelayerTx.sent_at >= since)
        .order_by(RelayerTx.sent_at.desc()).limit(limit)
    ).all()
    out = []
    for at, chain, kind, pks, gas in reversed(rows):
        n = max(1, len(pks or []))
        out.append(GasPoint(float(at), int(chain), str(kind), n, int(gas or 0) // n))
    return out


@dataclass(frozen=True)
class Reason:
    state: str            # rejected | failed | expired
    reason: str
    count: int
    last_at: float        # the latest request given up for it (unix seconds)


def give_up_reasons(s: Session, limit: int = 20) -> list[Reason]:
    """Why requests were rejected, failed or expired: one row per (state, reason), most
    recent first. Text is grouped as is (reasons are written by the jobs from fixed templates)."""
    rows = s.execute(
        select(Request.state, Request.reason, func.count(), func.max(Request.updated_at))
        .where(Request.state.in_(GIVEN_UP)).group_by(Request.state, Request.reason)
        .order_by(func.max(Request.updated_at).desc()).limit(limit)
    ).all()
    return [Reason(str(st), str(r or ""), int(n), _ts(at)) for st, r, n, at in rows]


@dataclass(frozen=True)
class RelayerAccount:
    chain_id: int
    account: str
    next_nonce: int       # the oracle's own counter (never below the chain's count when reserved)
    open_txs: int         # signed and sent, not settled at confirmation depth


def relayer_accounts(s: Session) -> list[RelayerAccount]:
    """Every relayer account the store knows, with its nonce counter and open transactions."""
    open_counts = dict(
        ((int(c), str(a)), int(n)) for c, a, n in s.execute(
            select(RelayerTx.chain_id, RelayerTx.account, func.count())
            .where(RelayerTx.status.in_(("pending", "mined"))).group_by(RelayerTx.chain_id, RelayerTx.account)
        ).all()
    )
    rows = s.execute(select(Nonce.chain_id, Nonce.account, Nonce.next_nonce).order_by(Nonce.chain_id, Nonce.account))
    return [RelayerAccount(int(c), str(a), int(n), open_counts.get((int(c), str(a)), 0)) for c, a, n in rows]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(dt: object) -> float:
    assert isinstance(dt, datetime)
    # SQLite hands back naive datetimes (stored in UTC).
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _ts_or_none(dt: object) -> float | None:
    return None if dt is None else _ts(dt)
