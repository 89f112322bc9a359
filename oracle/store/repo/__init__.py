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
- ``scores``: the subnet validator's miner scores;
- ``offchain``: the gateway's off-chain requests (origin ``offchain``);
- ``api_keys``: the gateway's API keys and their rate-limit buckets;
- ``reports``: read-only views for the gateway (histories, measured figures, metrics, health)."""

from oracle.store.repo.api_keys import add_api_key, api_key_by_hash, api_key_by_name, api_keys, revoke_api_key
from oracle.store.repo.checkpoints import get_checkpoint, lock_listener, set_checkpoint
from oracle.store.repo.deliveries import (
    claim_deliveries,
    get_delivery,
    record_cross_chain,
    submitted_deliveries,
    undeliverable,
)
from oracle.store.repo.offchain import find_offchain, pending_offchain, record_offchain
from oracle.store.repo.reports import (
    Histogram,
    Spread,
    count_by_state,
    fulfil_gas,
    fulfil_gas_histogram,
    fulfil_gas_spread,
    given_up_counts,
    history,
    ping,
    proofs_by_prover,
    prove_seconds,
    prove_seconds_histogram,
    prove_seconds_spread,
    requests_on_chain,
    schema_revision,
    submit_to_proven_histograms,
    tx_by_hash,
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
    "Histogram",
    "InvalidTransition",
    "SeenRequest",
    "Spread",
    "add_api_key",
    "add_tx",
    "all_requests",
    "api_key_by_hash",
    "api_key_by_name",
    "api_keys",
    "awaiting_confirmation",
    "claim",
    "claim_deliveries",
    "count_by_state",
    "defer",
    "find_offchain",
    "find_request",
    "fulfil_gas",
    "fulfil_gas_histogram",
    "fulfil_gas_spread",
    "get_checkpoint",
    "get_delivery",
    "get_request",
    "get_tx",
    "given_up_counts",
    "has_open_call",
    "history",
    "lock_listener",
    "miner_score",
    "miner_scores",
    "open_txs",
    "orphanable_after",
    "past_deadline",
    "pending_offchain",
    "ping",
    "proofs_by_prover",
    "prove_seconds",
    "prove_seconds_histogram",
    "prove_seconds_spread",
    "record_cross_chain",
    "record_fulfilment",
    "record_offchain",
    "record_seen",
    "release",
    "release_stale_leases",
    "requests_on_chain",
    "reserve_nonce",
    "retry_later",
    "revoke_api_key",
    "same_nonce",
    "save_proof",
    "schema_revision",
    "send_back_to_prove",
    "set_checkpoint",
    "settled_since",
    "submit_to_proven_histograms",
    "submitted_deliveries",
    "transition",
    "tx_by_hash",
    "undeliverable",
]
