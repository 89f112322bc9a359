"""Read-only views for the gateway (request pages, the model catalog's measured figures,
Prometheus metrics, readiness). Nothing here changes a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Select, case, cast, func, select, text
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
    q = _fulfilments().with_only_columns(RelayerTx.gas_used, RelayerTx.request_pks)
    if model_id is not None:
        q = q.where(func.lower(Request.model_id) == model_id.lower())
    return [int(gas or 0) // max(1, len(pks or [])) for gas, pks in s.execute(q).all()]


@dataclass(frozen=True)
class Spread:
    """How many values, and their nearest-rank 50th and 95th percentiles and maximum."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


def _nearest_rank(p: int, n: Any) -> Any:
    """1-based nearest rank of the p-th percentile of n values, halves rounded up; the same
    integer arithmetic in Python and in SQL."""
    return ((n - 1) * p + 50) // 100 + 1


def _spread(s: Session, value: Any, base: Select[Any]) -> Spread:
    """``Spread`` of ``value`` over ``base``'s rows, computed by the database in one sorted pass
    (a row number and the count as window functions); at most three rows reach Python."""
    inner = base.with_only_columns(cast(value, Float).label("v")).offset(0).subquery()
    ranked = select(inner.c.v, func.row_number().over(order_by=inner.c.v).label("rn"),
                    func.count().over().label("n")).subquery()
    rn, n = ranked.c.rn, ranked.c.n
    rows = s.execute(select(rn, n, ranked.c.v).where(
        (rn == _nearest_rank(50, n)) | (rn == _nearest_rank(95, n)) | (rn == n))).all()
    if not rows:
        return Spread(0, None, None, None)
    at = {int(r): float(v) for r, _, v in rows}
    count = int(rows[0][1])
    return Spread(count, at[_nearest_rank(50, count)], at[_nearest_rank(95, count)], at[count])


def prove_seconds_spread(s: Session, circuit_id: str) -> Spread:
    """``prove_seconds`` of one circuit's stored proofs, as a ``Spread``."""
    return _spread(s, Proof.prove_seconds,
                   select(Proof.request_pk).where(func.lower(Proof.circuit_id) == circuit_id.lower()))


def fulfil_gas_spread(s: Session, model_id: str) -> Spread:
    """``fulfil_gas`` of one model (a batch's gas shared equally by its requests), as a ``Spread``."""
    return _spread(s, _gas_per_request(), _fulfilments().where(func.lower(Request.model_id) == model_id.lower()))


def count_by_state(s: Session) -> list[tuple[str, str, int]]:
    """(origin, state, number of requests)."""
    rows = s.execute(
        select(Request.origin, Request.state, func.count()).group_by(Request.origin, Request.state)
    ).all()
    return [(str(o), str(st), int(n)) for o, st, n in rows]


# -- histograms computed by the database (Prometheus scrapes: one row per series, whatever the
# -- number of requests; reading every row cost ~13 ms per 1,000 requests on SQLite) ----------
@dataclass(frozen=True)
class Histogram:
    """Cumulative counts of values <= each bound (in the order given), the count and the sum."""

    cumulative: list[int]
    count: int
    total: float


def _histograms(s: Session, value: Any, buckets: Sequence[float], base: Select[Any],
                group: Sequence[Any] = ()) -> dict[tuple[str, ...], Histogram]:
    """One row per group: SUM(value <= b) per bound, COUNT and SUM, over ``base``'s FROM/WHERE."""
    # The value once per row, in a subquery the planner may not flatten (OFFSET 0 is a fence
    # in SQLite and PostgreSQL): flattened, SQLite evaluated it once per bucket (5x slower).
    inner = base.with_only_columns(*(g.label(f"g{i}") for i, g in enumerate(group)),
                                   cast(value, Float).label("v")).offset(0).subquery()
    v, keys = inner.c.v, [inner.c[f"g{i}"] for i in range(len(group))]
    cols = [*(func.coalesce(func.sum(case((v <= b, 1), else_=0)), 0) for b in buckets), func.count(), func.sum(v)]
    q = select(*keys, *cols)
    if keys:
        q = q.group_by(*keys)
    out: dict[tuple[str, ...], Histogram] = {}
    for row in s.execute(q).all():
        key = tuple(str(k) for k in row[:len(group)])
        nums = row[len(group):]
        if int(nums[-2]) == 0:
            continue
        out[key] = Histogram([int(n) for n in nums[:len(buckets)]], int(nums[-2]), float(nums[-1] or 0.0))
    return out


def prove_seconds_histogram(s: Session, buckets: Sequence[float]) -> Histogram | None:
    """``prove_seconds`` of every stored proof, bucketed in the database."""
    return _histograms(s, Proof.prove_seconds, buckets, select(Proof.prove_seconds)).get(())


def fulfil_gas_histogram(s: Session, buckets: Sequence[float]) -> Histogram | None:
    """``fulfil_gas`` (a batch's gas shared equally by its requests), bucketed in the database."""
    return _histograms(s, _gas_per_request(), buckets, _fulfilments()).get(())


def _gas_per_request() -> Any:
    """A fulfil transaction's gas over the number of requests it fulfilled (integer division,
    as ``fulfil_gas``)."""
    n = func.json_array_length(RelayerTx.request_pks)
    return RelayerTx.gas_used // case((n < 1, 1), else_=n)


def _fulfilments() -> Select[Any]:
    """One row per request fulfilled by one of this oracle's mined fulfil transactions."""
    return (
        select(RelayerTx.id)
        .join(Request, (Request.fulfil_tx == RelayerTx.tx_hash) & (Request.chain_id == RelayerTx.chain_id))
        .where(RelayerTx.kind.in_(FULFIL_KINDS), RelayerTx.gas_used.is_not(None))
    )


def submit_to_proven_histograms(s: Session, buckets: Sequence[float]) -> dict[str, Histogram]:
    """``submit_to_proven`` (seconds from stored to first proven, never negative) by origin,
    bucketed in the database."""
    first = (
        select(StateChange.request_pk, func.min(StateChange.at).label("at"))
        .where(StateChange.to_state == State.PROVEN.value).group_by(StateChange.request_pk).subquery()
    )
    bind = s.get_bind()
    if bind.dialect.name == "sqlite":
        secs = (func.julianday(first.c.at) - func.julianday(Request.created_at)) * 86400.0
    else:
        secs = func.extract("epoch", first.c.at - Request.created_at)
    secs = case((secs < 0, 0.0), else_=secs)
    base = select(Request.id).join(first, first.c.request_pk == Request.id)
    return {k[0]: h for k, h in _histograms(s, secs, buckets, base, group=[Request.origin]).items()}


def given_up_counts(s: Session) -> list[tuple[str, str, str, int]]:
    """(origin, state, reason, number of requests) of rejected, failed and expired requests."""
    rows = s.execute(
        select(Request.origin, Request.state, Request.reason, func.count()).where(
            Request.state.in_([State.REJECTED.value, State.FAILED.value, State.EXPIRED.value]))
        .group_by(Request.origin, Request.state, Request.reason)
    ).all()
    return [(str(o), str(st), str(r or ""), int(n)) for o, st, r, n in rows]


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
