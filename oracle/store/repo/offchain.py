"""Off-chain requests (origin ``offchain``, chain id 0): inserted by the gateway already
``confirmed``, then proven by the dispatcher like any other request and never relayed (see
``oracle.store.models.State``)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oracle.store.models import (
    OFFCHAIN,
    OFFCHAIN_CHAIN_ID,
    OFFCHAIN_ORACLE,
    TERMINAL,
    Request,
    State,
    StateChange,
)

ZERO_ADDRESS = "0x" + "00" * 20
# Ids are random, below 2^53 so that JavaScript reads them exactly; a collision is retried.
_ID_BITS = 53


def record_offchain(
    s: Session, *, model_id: str, input_fixed: list[int], payee: str | None, deadline: int,
    submitted_by: str | None,
) -> Request:
    """Inserts an accepted off-chain request, ``confirmed`` (its input was checked against the
    circuit by the caller; there is no block to wait for). ``requester`` holds the payee the
    proof will name (the zero address when none was asked for)."""
    while True:
        rid = secrets.randbits(_ID_BITS) or 1
        if find_offchain(s, rid) is None:
            break
    req = Request(
        chain_id=OFFCHAIN_CHAIN_ID, oracle=OFFCHAIN_ORACLE, request_id=rid, model_id=model_id.lower(),
        requester=(payee or ZERO_ADDRESS).lower(), input=[str(v) for v in input_fixed], callback=ZERO_ADDRESS,
        callback_gas_limit=0, deadline=deadline, fee="0", block_number=0, block_hash="", tx_hash="",
        log_index=0, state=State.CONFIRMED.value, origin=OFFCHAIN, submitted_by=submitted_by,
    )
    s.add(req)
    s.flush()
    s.add(StateChange(request_pk=req.id, from_state=None, to_state=State.CONFIRMED.value,
                      reason="submitted off-chain" + (f" by {submitted_by}" if submitted_by else "")))
    return req


def find_offchain(s: Session, request_id: int) -> Request | None:
    return s.execute(
        select(Request).where(Request.chain_id == OFFCHAIN_CHAIN_ID, Request.origin == OFFCHAIN,
                              Request.request_id == request_id)
    ).scalar_one_or_none()


def pending_offchain(s: Session) -> int:
    """Off-chain requests not final yet (the gateway's queue bound)."""
    return int(s.execute(
        select(func.count()).select_from(Request).where(
            Request.origin == OFFCHAIN, Request.state.not_in([st.value for st in TERMINAL]))
    ).scalar_one())
