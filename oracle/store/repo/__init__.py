"""The store's named operations: every query the pipeline runs lives here, grouped by table,
and is used as ``from oracle.store import repo; repo.claim(s, ...)``. Outside ``oracle/store/``
code opens transactions (``db.session()``) and passes the session to these functions; it never
builds a query (``tests/test_store_boundary.py`` checks that). Each function runs inside the
caller's transaction, so a state change and whatever it enables commit together.

Several oracle instances may share one PostgreSQL database: ``claim`` and
``claim_deliveries`` hand each ready row to one worker (row locks with SKIP LOCKED, then a
lease), ``reserve_nonce`` takes a row lock on the account's counter, ``lock_listener`` makes
the instances' listeners of one (chain, oracle) take turns, and the rows a job is about to
change are read ``for_update``. On SQLite every transaction already holds the write lock
(BEGIN IMMEDIATE), so these locks are no-ops there.

- ``requests``: the request life cycle (transitions, leases, retries, proofs);
- ``transactions``: relayer transactions and nonces;
- ``deliveries``: cross-chain deliveries;
- ``checkpoints``: the listener's block checkpoints and turn-taking lock;
- ``scores``: the subnet validator's miner scores."""

from oracle.store.repo.checkpoints import get_checkpoint, lock_listener, set_checkpoint
from oracle.store.repo.deliveries import (
    claim_deliveries,
    get_delivery,
    record_cross_chain,
    submitted_deliveries,
    undeliverable,
)
from oracle.store.repo.requests import (
    InvalidTransition,
    SeenRequest,
    all_requests,
    awaiting_confirmation,
    claim,
    defer,
    find_request,
    get_request,
    orphanable_after,
    past_deadline,
    record_fulfilment,
    record_seen,
    release,
    release_stale_leases,
    retry_later,
    save_proof,
    send_back_to_prove,
    transition,
)
from oracle.store.repo.scores import miner_score, miner_scores
from oracle.store.repo.transactions import (
    add_tx,
    get_tx,
    has_open_call,
    open_txs,
    reserve_nonce,
    same_nonce,
    settled_since,
)

__all__ = [
    "InvalidTransition",
    "SeenRequest",
    "add_tx",
    "all_requests",
    "awaiting_confirmation",
    "claim",
    "claim_deliveries",
    "defer",
    "find_request",
    "get_checkpoint",
    "get_delivery",
    "get_request",
    "get_tx",
    "has_open_call",
    "lock_listener",
    "miner_score",
    "miner_scores",
    "open_txs",
    "orphanable_after",
    "past_deadline",
    "record_cross_chain",
    "record_fulfilment",
    "record_seen",
    "release",
    "release_stale_leases",
    "reserve_nonce",
    "retry_later",
    "same_nonce",
    "save_proof",
    "send_back_to_prove",
    "set_checkpoint",
    "settled_since",
    "submitted_deliveries",
    "transition",
    "undeliverable",
]
