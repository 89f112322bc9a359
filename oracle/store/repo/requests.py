"""Requests: their life cycle (``transition``, leases, retries), the rows each job works on,
and the proof stored with a request. Who may make which transition is written in
``oracle.store.models`` (next to ``TRANSITIONS``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from oracle.store.db import on_postgresql
from oracle.store.models import TERMINAL, TRANSITIONS, Delivery, Proof, Request, State, StateChange


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


# ---------------------------------------------------------------------------- reading rows


def get_request(s: Session, pk: int, *, for_update: bool = False) -> Request | None:
    """The request row ``pk``. ``for_update`` locks it until the transaction ends: a job that
    changes a row another instance may be changing waits for it instead of racing it."""
    if for_update:
        return s.get(Request, pk, with_for_update=True)
    return s.get(Request, pk)


def find_request(
    s: Session, chain_id: int, oracle: str, request_id: int, *, for_update: bool = False
) -> Request | None:
    """The request with on-chain id ``request_id`` of (chain, oracle), optionally locked."""
    q = select(Request).where(Request.chain_id == chain_id, Request.oracle == oracle, Request.request_id == request_id)
    if for_update:
        q = q.with_for_update()
    return s.execute(q).scalar_one_or_none()


def all_requests(s: Session) -> list[Request]:
    """Every request row, by id (for reports: the demo's summary)."""
    return list(s.execute(select(Request).order_by(Request.id)).scalars().all())


# States a reorg can orphan. Rejected, expired and failed are final: they stay as they are
# even if their block leaves the chain (and a request re-using the id is not re-read).
_ORPHANABLE = sorted(st.value for st in State if State.ORPHANED in TRANSITIONS[st])


def orphanable_after(s: Session, chain_id: int, oracle: str, block_number: int) -> list[Request]:
    """Requests of (chain, oracle) from blocks after ``block_number`` that a reorg there would
    orphan, locked: the listener re-checks each one's block and acts on the state it holds,
    not on one another instance just changed."""
    return list(s.execute(
        select(Request).where(
            Request.chain_id == chain_id,
            Request.oracle == oracle,
            Request.block_number > block_number,
            Request.state.in_(_ORPHANABLE),
        ).with_for_update()
    ).scalars())


def awaiting_confirmation(s: Session, chain_id: int, oracle: str, deepest_block: int) -> list[Request]:
    """``seen`` requests of (chain, oracle) from blocks up to ``deepest_block`` (deep enough to
    confirm), locked."""
    return list(s.execute(
        select(Request).where(
            Request.chain_id == chain_id,
            Request.oracle == oracle,
            Request.state == State.SEEN.value,
            Request.block_number <= deepest_block,
        ).with_for_update()
    ).scalars().all())


def past_deadline(s: Session, chain_id: int, chain_time: int) -> list[Request]:
    """Requests of ``chain_id`` whose deadline is before ``chain_time`` and that no worker holds
    and nothing was sent for yet (``seen``, ``confirmed``, ``verified``). A row another
    instance's worker is locking is skipped rather than waited for (SKIP LOCKED)."""
    return list(s.execute(
        select(Request).where(
            Request.chain_id == chain_id,
            Request.deadline < chain_time,
            Request.state.in_([State.SEEN.value, State.CONFIRMED.value, State.VERIFIED.value]),
            Request.lease_until < time.time(),
        ).with_for_update(skip_locked=True)
    ).scalars().all())


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
    if on_postgresql(s):
        # Rows another instance is claiming right now are skipped, not waited for; once that
        # commits, its lease (lease_until) keeps them out of every later claim.
        q = q.with_for_update(skip_locked=True)
    reqs = list(s.execute(q).scalars().all())
    for r in reqs:
        r.lease_owner = owner
        r.lease_until = now + lease_seconds
    return reqs


# ---------------------------------------------------------------------------- the life cycle


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


def record_fulfilment(
    s: Session, req: Request, reason: str, *, tx_hash: str | None = None, block_number: int | None = None,
    callback_succeeded: bool | None = None,
) -> bool:
    """Records that the chain fulfilled ``req`` (the one transition with two owners, see
    ``oracle.store.models``): whichever of the listener and the relayer sees it first records
    it with what it knows of the fulfilment. Returns False, changing nothing, for a request
    already ``fulfilled`` (left as the first one recorded it) and for one this oracle gave up
    on (rejected, failed, expired, orphaned) that someone else fulfilled: that is no
    transition of ours, and refusing it would stop the listener at that log for good."""
    if State.FULFILLED not in TRANSITIONS[State(req.state)]:
        return False
    if tx_hash is not None:
        req.fulfil_tx = tx_hash
    if block_number is not None:
        req.fulfil_block = block_number
    if callback_succeeded is not None:
        req.callback_succeeded = callback_succeeded
    transition(s, req, State.FULFILLED, reason)
    return True


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
    req = find_request(s, ev.chain_id, ev.oracle, ev.request_id)
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


def save_proof(s: Session, req: Request, proof: Proof) -> None:
    if req.proof is not None:
        s.delete(req.proof)
        s.flush()
    proof.request_pk = req.id
    s.add(proof)


def release_stale_leases(s: Session, owner: str) -> int:
    """At start-up: leases held by this worker's previous life are void, on requests and on
    deliveries (the two kinds of row a worker leases); returns how many were released."""
    released = 0
    for table in (Request, Delivery):
        res = s.execute(
            update(table)
            .where(table.lease_owner == owner)
            .values(lease_owner=None, lease_until=0.0, version=table.version + 1)
        )
        released += int(res.rowcount or 0)  # type: ignore[attr-defined]
    return released
