"""ORM models (SQLAlchemy 2). The schema itself is owned by the Alembic migrations in
``migrations/``; these classes must stay in step with them (a test compares the two).

Portable across SQLite and PostgreSQL: generic types only (``JSON`` is ``json`` on
PostgreSQL, so never compare, group or DISTINCT on a JSON column), integers that can exceed
2^31 are ``BigInteger``, and 256-bit values (fees, wei) are decimal strings.

``requests`` and ``deliveries`` carry a version counter (optimistic concurrency): every ORM
update is ``... WHERE id = ? AND version = ?``, so a change computed from a stale read (two
oracle instances on one PostgreSQL database) fails with ``StaleDataError`` and is retried,
instead of silently overwriting a newer state."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class State(enum.StrEnum):
    """The request life cycle, and who owns each transition.

    ``seen -> confirmed -> dispatched -> proven -> verified -> submitted -> fulfilled``, with
    the side exits below. Every transition goes through ``repo.transition`` (which refuses what
    ``TRANSITIONS`` does not allow and records a ``state_changes`` row; ``repo.record_seen``
    for ``seen``), and only the job named here makes it:

    ============  ==========================  =============================================
    to            by (from)                   when
    ============  ==========================  =============================================
    seen          listener (new, orphaned)    its InferenceRequested log is read (again,
                                              after a reorg: ``repo.record_seen``)
    confirmed     listener (seen)             its block is ``confirmations`` deep and canonical
    confirmed     gateway (new)               an off-chain request (origin ``offchain``,
                                              chain id 0) is accepted: its input checked
                                              against the circuit (``repo.record_offchain``)
    confirmed     dispatcher (dispatched,     proving failed or the proof is refused
                  proven)                     off-chain: prove again (attempt counted)
    confirmed     relayer (verified)          the chain refuses the proof (simulated
                                              fulfilment): prove again (``send_back_to_prove``)
    dispatched    dispatcher (confirmed)      committed before the prover runs
    proven        dispatcher (dispatched)     the proof is stored
    verified      dispatcher (proven)         the proof verifies off-chain
    verified      relayer (submitted)         its transaction reverted or skipped the request
    submitted     relayer (verified)          the signed transaction is stored (before broadcast)
    fulfilled     listener AND relayer        the chain fulfilled it (see below)
    fulfilled     dispatcher (verified)       off-chain requests only: the verified proof is
                                              the answer, nothing is relayed (same
                                              transaction as ``verified``, so no relayer
                                              ever sees it ``verified``)
    rejected      dispatcher                  bad input (size, range, refused by the prover)
    failed        dispatcher                  attempts exhausted; model or artifacts missing;
                                              no payee configured
    failed        relayer                     attempts exhausted; its verifier was retired
    expired       listener                    deadline passed before confirmation; refunded
    expired       dispatcher                  deadline too close to prove
    expired       relayer                     refunded or past its deadline on-chain
    expired       service expiry job          deadline passed, not leased, nothing sent
                  (seen, confirmed, verified) (off-chain requests: by the wall clock)
    orphaned      listener (any but the       its block left the canonical chain
                  final rejected, expired,
                  failed)
    orphaned      relayer (verified)          the on-chain request is gone or differs (reorg
                                              seen before sending)
    ============  ==========================  =============================================

    Off-chain requests (``origin`` = ``offchain``) have chain id 0 and no listener or relayer:
    the gateway inserts them ``confirmed``, the dispatcher proves and verifies them like any
    other and makes them ``fulfilled`` itself.

    ``fulfilled`` has two owners for on-chain requests, deliberately, and both write it through
    ``repo.record_fulfilment`` (first writer wins; a second is a no-op, and so is someone
    else's fulfilment of a request this oracle already gave up on). The chain is the
    authority and either job may be the first to see its verdict: the listener reads every
    ``InferenceFulfilled`` log at the head, including fulfilments by anyone else (another
    operator, another instance relaying from its own key, a contract), which stops the
    dispatcher from proving a request already settled; the relayer sees its own
    transaction's receipt (at confirmation depth) and "already fulfilled" in its pre-check,
    its simulation or a batch's ``AlreadyFulfilled`` skip, and has to move those requests on
    itself (they are ``verified``/``submitted`` and in its hands). A single owner would leave
    one of these cases stuck. The listener and the relayer's receipt path read the row
    ``FOR UPDATE`` before writing (the pre-check and the simulation rely on the version
    column), so two instances recording the same fulfilment serialize: the second finds
    ``fulfilled`` and leaves it as recorded (tx, block, callback result).

    Deliveries (``DeliveryState``) are recorded ``waiting`` by the listener and moved on by the
    destination chain's ``DeliveryJob`` only; relayer transactions' statuses by the relayer of
    their (chain, account) only.
    """

    SEEN = "seen"
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    PROVEN = "proven"
    VERIFIED = "verified"
    SUBMITTED = "submitted"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"  # bad input; reason recorded
    EXPIRED = "expired"  # deadline passed before fulfilment
    FAILED = "failed"  # retries exhausted; reason recorded
    ORPHANED = "orphaned"  # its block left the canonical chain (reorg)


# Off-chain requests (the gateway's POST /api/v1/inferences): origin, pseudo chain and oracle.
OFFCHAIN = "offchain"
OFFCHAIN_CHAIN_ID = 0
OFFCHAIN_ORACLE = "0x" + "00" * 20

TERMINAL = frozenset({State.FULFILLED, State.REJECTED, State.EXPIRED, State.FAILED, State.ORPHANED})

# Allowed transitions. Anything else is a bug and raises.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.SEEN: frozenset({State.CONFIRMED, State.ORPHANED, State.EXPIRED, State.FULFILLED}),
    State.CONFIRMED: frozenset(
        {State.DISPATCHED, State.REJECTED, State.EXPIRED, State.ORPHANED, State.FULFILLED, State.FAILED}
    ),
    State.DISPATCHED: frozenset(
        {State.PROVEN, State.CONFIRMED, State.REJECTED, State.FAILED, State.EXPIRED, State.ORPHANED, State.FULFILLED}
    ),
    State.PROVEN: frozenset(
        {State.VERIFIED, State.CONFIRMED, State.FAILED, State.EXPIRED, State.ORPHANED, State.FULFILLED}
    ),
    # -> confirmed: the chain (an eth_call of the fulfilment) rejects the proof: prove again.
    State.VERIFIED: frozenset(
        {State.SUBMITTED, State.CONFIRMED, State.EXPIRED, State.ORPHANED, State.FULFILLED, State.FAILED}
    ),
    State.SUBMITTED: frozenset({State.FULFILLED, State.VERIFIED, State.EXPIRED, State.FAILED, State.ORPHANED}),
    State.FULFILLED: frozenset({State.VERIFIED, State.ORPHANED}),  # a reorg can undo a fulfilment
    State.REJECTED: frozenset(),
    State.EXPIRED: frozenset(),
    State.FAILED: frozenset(),
    State.ORPHANED: frozenset(),
}


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("chain_id", "oracle", "request_id", name="uq_request"),
        Index("ix_requests_state", "state", "chain_id"),
        Index("ix_requests_origin", "origin", "state"),
        # Reports join fulfilled requests to the relayer transaction that fulfilled them.
        Index("ix_requests_fulfil_tx", "fulfil_tx", "chain_id"),
        Index("ix_requests_created_at", "created_at"),         # the dashboard's newest requests
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    oracle: Mapped[str] = mapped_column(String(42))
    request_id: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[str] = mapped_column(String(66))
    requester: Mapped[str] = mapped_column(String(42))
    input: Mapped[list[str]] = mapped_column(JSON)  # decimal strings: int256 overflows JSON numbers elsewhere
    callback: Mapped[str] = mapped_column(String(42))
    callback_gas_limit: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[str] = mapped_column(String(80))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=State.SEEN.value)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    fulfil_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    fulfil_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    callback_succeeded: Mapped[bool | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    # Where the request came from: "chain" (an InferenceRequested log) or "offchain" (the
    # gateway's POST /api/v1/inferences: chain_id 0, no relay; see State).
    origin: Mapped[str] = mapped_column(String(16), default="chain", server_default="chain")
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # API key name (off-chain)

    proof: Mapped[Proof | None] = relationship(back_populates="request", uselist=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as is)

    @property
    def input_ints(self) -> list[int]:
        return [int(v) for v in self.input]


class StateChange(Base):
    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_pk: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who held the request's lease when it changed (e.g. "oracle-2/dispatch"); None for
    # changes made outside a lease (listener, expiry). Tells which instance did the work.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Proof(Base):
    __tablename__ = "proofs"
    __table_args__ = (Index("ix_proofs_created_at", "created_at"),)    # the dashboard's newest proofs

    request_pk: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    circuit_id: Mapped[str] = mapped_column(String(66))
    backend: Mapped[str] = mapped_column(String(16))
    output: Mapped[list[str]] = mapped_column(JSON)
    calldata: Mapped[str] = mapped_column(Text)
    public_signals: Mapped[list[str]] = mapped_column(JSON)
    native: Mapped[Any] = mapped_column(JSON, nullable=True)  # backend-native proof object
    # The fee recipient the proof names (bound in the proof for Groth16; for other backends the
    # fulfilment is committed to it first). The relayer fulfils with exactly this payee.
    payee: Mapped[str | None] = mapped_column(String(42), nullable=True)
    prover: Mapped[str] = mapped_column(String(80))  # "local" or a miner hotkey
    prove_seconds: Mapped[float] = mapped_column(Float)
    verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    request: Mapped[Request] = relationship(back_populates="proof")

    @property
    def output_ints(self) -> list[int]:
        return [int(v) for v in self.output]


class Checkpoint(Base):
    """Last processed block per (chain, oracle), with recent hashes for reorg detection."""

    __tablename__ = "checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    oracle: Mapped[str] = mapped_column(String(42), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # {block_number: hash} for the last few processed blocks: ancestry checks after restarts.
    recent_hashes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Nonce(Base):
    __tablename__ = "nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)


class RelayerTx(Base):
    __tablename__ = "relayer_txs"
    __table_args__ = (
        Index("ix_relayer_txs_status", "status", "chain_id"),
        Index("ix_relayer_txs_hash", "tx_hash", "chain_id"),      # a transaction by its hash
        Index("ix_relayer_txs_sent_at", "sent_at"),               # the dashboard's newest transactions
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # fulfill | fulfillBatch | noop
    request_pks: Mapped[list[int]] = mapped_column(JSON)
    tx_hash: Mapped[str] = mapped_column(String(66))
    raw_tx: Mapped[str] = mapped_column(Text)  # signed bytes, for rebroadcast
    to: Mapped[str] = mapped_column(String(42))
    data: Mapped[str] = mapped_column(Text)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    max_fee: Mapped[str] = mapped_column(String(80))
    priority_fee: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|mined|confirmed|failed|replaced
    replaced_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revert_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeliveryState(enum.StrEnum):
    """A cross-chain delivery (one per cross-chain request), on the destination chain."""

    WAITING = "waiting"  # source request not fulfilled yet, or retrying after a failure
    SUBMITTED = "submitted"  # deliver tx signed, stored and broadcast (tx_pk)
    DELIVERED = "delivered"  # CrossChainDelivered seen at confirmation depth (or delivered by someone else)
    FAILED = "failed"  # retries exhausted; reason recorded
    CANCELLED = "cancelled"  # the source request will never be fulfilled (expired, rejected, ...)


class Delivery(Base):
    """Delivery of a fulfilled source request to the inbox of its destination chain. The tx
    itself is a ``relayer_txs`` row of the destination chain's relayer account (kind
    ``deliver``, no request_pks), so nonces, rebroadcasts, fee bumps and reorg re-checks are
    the relayer's; this row follows it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("request_pk", name="uq_delivery_request"),
        Index("ix_deliveries_state", "state", "dst_chain_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_pk: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    src_chain_id: Mapped[int] = mapped_column(BigInteger)
    src_oracle: Mapped[str] = mapped_column(String(42))
    request_id: Mapped[int] = mapped_column(BigInteger)
    dst_chain_id: Mapped[int] = mapped_column(BigInteger)
    consumer: Mapped[str] = mapped_column(String(42))
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    inbox: Mapped[str | None] = mapped_column(String(42), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.WAITING.value)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    tx_pk: Mapped[int | None] = mapped_column(ForeignKey("relayer_txs.id"), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)  # the tx that mined
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    callback_succeeded: Mapped[bool | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    request: Mapped[Request] = relationship()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class MinerScore(Base):
    __tablename__ = "miner_scores"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    latency_ema: Mapped[float] = mapped_column(Float, default=0.0)
    proof_size_ema: Mapped[float] = mapped_column(Float, default=0.0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A gateway API key: only the sha256 of the key is stored (the key itself is printed once,
    at creation). ``tokens``/``refilled_at`` are the key's rate-limit bucket, kept here so every
    gateway in front of one database draws from the same bucket."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_hash", name="uq_api_key_hash"),
        UniqueConstraint("name", name="uq_api_key_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))      # hex sha256 of the key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    refilled_at: Mapped[float] = mapped_column(Float, default=0.0)   # unix time of the last refill
