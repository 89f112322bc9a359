"""Store operations used by the listener, dispatcher and relayer. Each function runs inside
the caller's transaction, so a state change and whatever it enables commit together.

Several oracle instances may share one PostgreSQL database: ``claim`` hands each ready
request to one worker (row locks with SKIP LOCKED, then a lease), ``reserve_nonce`` takes a
row lock on the account's counter, and ``lock_listener`` makes the instances' listeners of
one (chain, oracle) take turns. On SQLite every transaction already holds the write lock
(BEGIN IMMEDIATE), so these locks are no-ops there."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from oracle.store.models import (
    TERMINAL,
    TRANSITIONS,
    Checkpoint,
    Delivery,
    DeliveryState,
    Nonce,
    Proof,
    RelayerTx,
    Request,
    State,
    StateChange,
)


class InvalidTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class SeenRequest:
    """An ``InferenceRequested`` log, decoded."""

    chain_id: int
    oracle: str
    request_id: int
    model_id: str
    requester: str
    input: list[int]
    callback: str
    callback_gas_limit: int
    deadline: int
    fee: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


def transition(s: Session, req: Request, to: State, reason: str | None = None) -> None:
    """Moves ``req`` to ``to`` and records the change; illegal moves raise."""
    frm = State(req.state)
    if to == frm:
        return
    if to not in TRANSITIONS[frm]:
        raise InvalidTransition(f"request {req.chain_id}:{req.request_id}: {frm} -> {to} is not allowed")
    owner = req.lease_owner
    req.state = to.value
    if reason is not None:
        req.reason = reason
    if to in TERMINAL:
        release(req)
    s.add(StateChange(request_pk=req.id, from_state=frm.value, to_state=to.value, reason=reason, lease_owner=owner))


def release(req: Request) -> None:
    """Gives up the lease on ``req`` (another worker may take it)."""
    req.lease_owner = None
    req.lease_until = 0.0


def retry_later(req: Request, reason: str, delay: float) -> None:
    req.attempts += 1
    req.reason = reason
    req.next_attempt_at = time.time() + delay
    release(req)


def defer(req: Request, reason: str, delay: float) -> None:
    """Hands ``req`` back to be picked up again after ``delay`` without counting an attempt
    (it waits for something expected, e.g. its fulfilment commitment to be mined)."""
    req.reason = reason
    req.next_attempt_at = time.time() + delay
    release(req)


def has_open_call(s: Session, chain_id: int, account: str, data: str) -> bool:
    """Whether ``account`` already has a stored transaction with this calldata that is not
    replaced or failed (so the same call is not signed twice)."""
    q = select(RelayerTx.id).where(
        RelayerTx.chain_id == chain_id, RelayerTx.account == account, RelayerTx.data == data,
        RelayerTx.status.in_(["pending", "mined", "confirmed"]),
    ).limit(1)
    return s.execute(q).first() is not None


def send_back_to_prove(s: Session, req: Request, reason: str) -> None:
    """The chain rejects ``req``'s stored proof (or output): drop the proof and hand the
    request back to the dispatcher (``confirmed``, the state it claims for proving), counting
    an attempt. Sending the same proof again could only fail again and cost gas; the caller
    decides when attempts are exhausted (-> ``failed`` instead)."""
    if req.proof is not None:
        s.delete(req.proof)
        s.flush()
    transition(s, req, State.CONFIRMED, reason)
    # No back-off: proving again is the fix, and the attempt limit bounds a proof that keeps
    # failing the same way.
    retry_later(req, reason, 0.0)


def record_seen(s: Session, ev: SeenRequest) -> Request | None:
    """Inserts a newly seen request; idempotent for a log read twice. A request that was
    orphaned by a reorg and is seen again (possibly with other content) starts over."""
    req = s.execute(
        select(Request).where(
            Request.chain_id == ev.chain_id, Request.oracle == ev.oracle, Request.request_id == ev.request_id
        )
    ).scalar_one_or_none()
    if req is not None:
        if req.state != State.ORPHANED.value:
            return None  # already known (the same log read again, e.g. after a restart)
        if req.proof is not None:
            s.delete(req.proof)
        _fill(req, ev)
        frm = req.state
        req.state = State.SEEN.value
        req.reason = None
        req.attempts = 0
        req.fulfil_tx = None
        s.add(StateChange(request_pk=req.id, from_state=frm, to_state=State.SEEN.value, reason="re-read after reorg"))
        return req
    req = Request(chain_id=ev.chain_id, oracle=ev.oracle, request_id=ev.request_id, state=State.SEEN.value)
    _fill(req, ev)
    s.add(req)
    s.flush()
    s.add(StateChange(request_pk=req.id, from_state=None, to_state=State.SEEN.value))
    return req


def _fill(req: Request, ev: SeenRequest) -> None:
    req.model_id = ev.model_id
    req.requester = ev.requester
    req.input = [str(v) for v in ev.input]
    req.callback = ev.callback
    req.callback_gas_limit = ev.callback_gas_limit
    req.deadline = ev.deadline
    req.fee = str(ev.fee)
    req.block_number = ev.block_number
    req.block_hash = ev.block_hash
    req.tx_hash = ev.tx_hash
    req.log_index = ev.log_index


def in_states(
    s: Session, chain_id: int | None, states: Iterable[State], *, limit: int = 100, ready_only: bool = True
) -> Sequence[Request]:
    q = select(Request).where(Request.state.in_([st.value for st in states]))
    if chain_id is not None:
        q = q.where(Request.chain_id == chain_id)
    if ready_only:
        q = q.where(Request.next_attempt_at <= time.time())
    q = q.order_by(Request.id).limit(limit)
    return s.execute(q).scalars().all()


def claim(
    s: Session, states: Iterable[State], owner: str, *, limit: int = 16, lease_seconds: float = 120.0,
    chain_id: int | None = None,
) -> list[Request]:
    """Leases up to ``limit`` ready requests to ``owner`` so several workers (or several
    oracle instances on one PostgreSQL database) never work on the same request. With
    ``chain_id``, only that chain's (a per-chain relayer must not lease another chain's)."""
    now = time.time()
    q = (
        select(Request)
        .where(
            Request.state.in_([st.value for st in states]),
            Request.next_attempt_at <= now,
            Request.lease_until < now,
        )
        .order_by(Request.id)
        .limit(limit)
    )
    if chain_id is not None:
        q = q.where(Request.chain_id == chain_id)
    if _dialect(s) == "postgresql":
        # Rows another instance is claiming right now are skipped, not waited for; once that
        # commits, its lease (lease_until) keeps them out of every later claim.
        q = q.with_for_update(skip_locked=True)
    reqs = list(s.execute(q).scalars().all())
    for r in reqs:
        r.lease_owner = owner
        r.lease_until = now + lease_seconds
    return reqs


def save_proof(s: Session, req: Request, proof: Proof) -> None:
    if req.proof is not None:
        s.delete(req.proof)
        s.flush()
    proof.request_pk = req.id
    s.add(proof)


def orphan_from(s: Session, chain_id: int, oracle: str, block_number: int) -> list[Request]:
    """Marks every non-terminal request seen at or after ``block_number`` as orphaned (its
    block left the canonical chain); they are re-read if the new chain includes them."""
    reqs = list(
        s.execute(
            select(Request).where(
                Request.chain_id == chain_id,
                Request.oracle == oracle,
                Request.block_number >= block_number,
                Request.state.not_in([State.ORPHANED.value, State.REJECTED.value, State.EXPIRED.value]),
            )
        ).scalars()
    )
    for r in reqs:
        transition(s, r, State.ORPHANED, f"block {r.block_number} {r.block_hash[:10]} left the chain")
    return reqs


def get_checkpoint(s: Session, chain_id: int, oracle: str) -> Checkpoint | None:
    return s.get(Checkpoint, (chain_id, oracle))


def set_checkpoint(
    s: Session, chain_id: int, oracle: str, number: int, block_hash: str, recent: dict[str, str]
) -> None:
    cp = s.get(Checkpoint, (chain_id, oracle))
    if cp is None:
        s.add(
            Checkpoint(
                chain_id=chain_id, oracle=oracle, block_number=number, block_hash=block_hash, recent_hashes=recent
            )
        )
    else:
        cp.block_number = number
        cp.block_hash = block_hash
        cp.recent_hashes = recent


def reserve_nonce(s: Session, chain_id: int, account: str, chain_nonce: int) -> int:
    """Takes the next nonce for (chain, account). The stored counter never goes below the
    chain's own count, so a nonce used outside the oracle is skipped, not reused.

    The counter row is locked (FOR UPDATE) until the caller commits the transaction that
    signs and stores the transaction using it, so relayers of several instances sharing an
    account get consecutive, distinct nonces. On PostgreSQL the row is first created with
    ON CONFLICT DO NOTHING: two instances reserving the account's very first nonce at once
    do not collide on the primary key."""
    if _dialect(s) == "postgresql":
        s.execute(
            pg_insert(Nonce)
            .values(chain_id=chain_id, account=account, next_nonce=chain_nonce)
            .on_conflict_do_nothing(index_elements=[Nonce.chain_id, Nonce.account])
        )
        row: Nonce | None = s.execute(
            select(Nonce)
            .where(Nonce.chain_id == chain_id, Nonce.account == account)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    else:
        row = s.get(Nonce, (chain_id, account), with_for_update=True)
        if row is None:
            row = Nonce(chain_id=chain_id, account=account, next_nonce=chain_nonce)
            s.add(row)
    assert row is not None
    nonce = max(row.next_nonce, chain_nonce)
    row.next_nonce = nonce + 1
    return nonce


def lock_listener(s: Session, chain_id: int, oracle: str) -> None:
    """Makes the listeners of one (chain, oracle) in several instances take turns: held until
    the caller's transaction ends (PostgreSQL advisory lock; SQLite: already serialized).
    Without it two listeners reading the same logs would insert the same request twice (a
    unique-key error) and confirm from stale reads."""
    if _dialect(s) == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("listener", str(chain_id), oracle.lower())})


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big", signed=True)


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def release_stale_leases(s: Session, owner: str) -> int:
    """At start-up: leases held by this worker's previous life are void."""
    res = s.execute(
        update(Request)
        .where(Request.lease_owner == owner)
        .values(lease_owner=None, lease_until=0.0, version=Request.version + 1)
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def record_cross_chain(
    s: Session, chain_id: int, oracle: str, request_id: int, dst_chain_id: int, consumer: str, gas_limit: int
) -> Delivery | None:
    """Records a ``CrossChainRequested`` log as a delivery to make once the request is
    fulfilled. Idempotent for a log read twice; a request re-read after a reorg (possibly
    with another destination) resets a delivery that was not sent yet."""
    req = s.execute(
        select(Request).where(Request.chain_id == chain_id, Request.oracle == oracle, Request.request_id == request_id)
    ).scalar_one_or_none()
    if req is None:
        return None  # cannot happen: InferenceRequested precedes it in the same transaction
    d = s.execute(select(Delivery).where(Delivery.request_pk == req.id)).scalar_one_or_none()
    if d is None:
        d = Delivery(
            request_pk=req.id,
            src_chain_id=chain_id,
            src_oracle=oracle,
            request_id=request_id,
            state=DeliveryState.WAITING.value,
            attempts=0,
            next_attempt_at=0.0,
            lease_until=0.0,
        )
        s.add(d)
    elif d.state not in (DeliveryState.WAITING.value, DeliveryState.CANCELLED.value):
        return None  # already sent: the inbox keys on the whole message, so nothing is lost
    d.dst_chain_id = dst_chain_id
    d.consumer = consumer
    d.gas_limit = gas_limit
    d.state = DeliveryState.WAITING.value
    d.reason = None
    d.attempts = 0
    s.flush()
    return d


def release_stale_delivery_leases(s: Session, owner: str) -> int:
    """At start-up: delivery leases held by this worker's previous life are void."""
    res = s.execute(
        update(Delivery)
        .where(Delivery.lease_owner == owner)
        .values(lease_owner=None, lease_until=0.0, version=Delivery.version + 1)
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
