"""Cross-chain deliveries (``deliveries``): recorded by the listener from
``CrossChainRequested``, then owned by the destination chain's ``DeliveryJob``
(``waiting -> submitted -> delivered | failed``, ``cancelled`` when the source request will
never be fulfilled)."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from oracle.store.db import on_postgresql
from oracle.store.models import TERMINAL, Delivery, DeliveryState, Request, State
from oracle.store.repo.requests import find_request

# Source states after which the request will never be fulfilled: nothing to deliver.
_NEVER_FULFILLED = sorted(st.value for st in TERMINAL - {State.FULFILLED})


def record_cross_chain(
    s: Session, chain_id: int, oracle: str, request_id: int, dst_chain_id: int, consumer: str, gas_limit: int
) -> Delivery | None:
    """Records a ``CrossChainRequested`` log as a delivery to make once the request is
    fulfilled. Idempotent for a log read twice; a request re-read after a reorg (possibly
    with another destination) resets a delivery that was not sent yet."""
    req = find_request(s, chain_id, oracle, request_id)
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


def get_delivery(s: Session, pk: int) -> Delivery | None:
    return s.get(Delivery, pk)


def undeliverable(s: Session, dst_chain_id: int) -> list[Delivery]:
    """Waiting deliveries to ``dst_chain_id`` whose source request will never be fulfilled."""
    return list(s.execute(
        select(Delivery).join(Request, Delivery.request_pk == Request.id).where(
            Delivery.dst_chain_id == dst_chain_id,
            Delivery.state == DeliveryState.WAITING.value,
            Request.state.in_(_NEVER_FULFILLED),
        )
    ).scalars().all())


def claim_deliveries(
    s: Session, dst_chain_id: int, owner: str, *, limit: int, lease_seconds: float
) -> list[Delivery]:
    """Leases up to ``limit`` ready deliveries to ``dst_chain_id`` whose source request is
    fulfilled, like ``claim`` does for requests (SKIP LOCKED on PostgreSQL, then a lease)."""
    now = time.time()
    q = (
        select(Delivery).join(Request, Delivery.request_pk == Request.id).where(
            Delivery.dst_chain_id == dst_chain_id,
            Delivery.state == DeliveryState.WAITING.value,
            Delivery.next_attempt_at <= now,
            Delivery.lease_until < now,
            Request.state == State.FULFILLED.value,
        ).order_by(Delivery.id).limit(limit)
    )
    if on_postgresql(s):
        q = q.with_for_update(skip_locked=True, of=Delivery)
    rows = list(s.execute(q).scalars().all())
    for d in rows:
        d.lease_owner = owner
        d.lease_until = now + lease_seconds
    return rows


def submitted_deliveries(s: Session, dst_chain_id: int) -> list[Delivery]:
    return list(s.execute(
        select(Delivery).where(
            Delivery.dst_chain_id == dst_chain_id,
            Delivery.state == DeliveryState.SUBMITTED.value,
        )
    ).scalars().all())
