"""Read-only views for the gateway (request pages, the model catalog's measured figures,
Prometheus metrics, readiness). Nothing here changes a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from oracle.store.models import OFFCHAIN, Proof, RelayerTx, Request, State, StateChange

FULFIL_KINDS = ("fulfill", "fulfillBatch")


def history(s: Session, pk: int) -> list[StateChange]:
    """The state changes of request ``pk``, oldest first."""
    return list(s.execute(
        select(StateChange).where(StateChange.request_pk == pk).order_by(StateChange.id)
    ).scalars().all())


def requests_on_chain(s: Session, chain_id: int, request_id: int) -> list[Request]:
    """Every request with this on-chain id on ``chain_id`` (one per oracle contract)."""
    return list(s.execute(
        select(Request).where(Request.chain_id == chain_id, Request.request_id == request_id,
                              Request.origin != OFFCHAIN).order_by(Request.id)
    ).scalars().all())


def tx_by_hash(s: Session, chain_id: int, tx_hash: str) -> RelayerTx | None:
    """The relayer's transaction with this hash on ``chain_id`` (the one that mined)."""
    return s.execute(
        select(RelayerTx).where(RelayerTx.chain_id == chain_id, RelayerTx.tx_hash == tx_hash)
        .order_by(RelayerTx.id.desc()).limit(1)
    ).scalar_one_or_none()


def prove_seconds(s: Session, circuit_id: str | None = None) -> list[float]:
    """Proving time of every stored proof (of one circuit), in seconds."""
    q = select(Proof.prove_seconds)
    if circuit_id is not None:
        q = q.where(func.lower(Proof.circuit_id) == circuit_id.lower())
    return [float(v) for v in s.execute(q).scalars().all()]


def fulfil_gas(s: Session, model_id: str | None = None) -> list[int]:
    """Gas per fulfilled request of this oracle's relayer (a batch transaction's gas shared
    equally by its requests), for one model or all."""
    q = (
        select(RelayerTx.gas_used, RelayerTx.request_pks)
        .join(Request, (Request.fulfil_tx == RelayerTx.tx_hash) & (Request.chain_id == RelayerTx.chain_id))
        .where(RelayerTx.kind.in_(FULFIL_KINDS), RelayerTx.gas_used.is_not(None))
    )
    if model_id is not None:
        q = q.where(func.lower(Request.model_id) == model_id.lower())
    return [int(gas or 0) // max(1, len(pks or [])) for gas, pks in s.execute(q).all()]


def count_by_state(s: Session) -> list[tuple[str, str, int]]:
    """(origin, state, number of requests)."""
    rows = s.execute(
        select(Request.origin, Request.state, func.count()).group_by(Request.origin, Request.state)
    ).all()
    return [(str(o), str(st), int(n)) for o, st, n in rows]


def given_up(s: Session) -> list[tuple[str, str, str]]:
    """(origin, state, reason) of every rejected, failed or expired request."""
    rows = s.execute(
        select(Request.origin, Request.state, Request.reason).where(
            Request.state.in_([State.REJECTED.value, State.FAILED.value, State.EXPIRED.value]))
    ).all()
    return [(str(o), str(st), str(r or "")) for o, st, r in rows]


@dataclass(frozen=True)
class Timing:
    origin: str
    created_at: float      # unix seconds
    proven_at: float


def submit_to_proven(s: Session) -> list[Timing]:
    """For every request that was proven: when it was stored and when it first became
    ``proven`` (unix seconds)."""
    first = (
        select(StateChange.request_pk, func.min(StateChange.at).label("at"))
        .where(StateChange.to_state == State.PROVEN.value).group_by(StateChange.request_pk).subquery()
    )
    rows = s.execute(
        select(Request.origin, Request.created_at, first.c.at).join(first, first.c.request_pk == Request.id)
    ).all()
    return [Timing(str(o), _ts(c), _ts(p)) for o, c, p in rows]


def proofs_by_prover(s: Session) -> dict[str, int]:
    return {str(p): int(n) for p, n in s.execute(select(Proof.prover, func.count()).group_by(Proof.prover)).all()}


def ping(s: Session) -> None:
    """One round trip to the database (raises when it is unreachable)."""
    s.execute(text("SELECT 1"))


def schema_revision(s: Session) -> str | None:
    """The Alembic revision the database is at."""
    return s.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _ts(dt: object) -> float:
    assert isinstance(dt, datetime)
    # SQLite hands back naive datetimes (stored in UTC).
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
