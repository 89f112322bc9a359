"""Two oracle instances (``oracle run`` processes with different instance ids) share one
PostgreSQL database and one anvil chain while 30 requests arrive. Every request is fulfilled
exactly once on-chain, proven by exactly one instance (state history: one ``proven`` change,
made under one instance's dispatch lease), and the relayer nonces have no gaps.

Two variants: ``shared-key`` (both instances relay from the SAME account: the nonce row lock
in the database is all that keeps their nonces distinct and consecutive) and ``own-keys``
(one relayer account per instance, the simplest production set-up)."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.store.db import Database
from oracle.store.models import Nonce, Proof, RelayerTx, Request, State, StateChange
from tests.conftest import account_chain
from tests.pg_server import PostgresServer
from tests.protocol import last_request_id, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, OracleProcess, models_dir_with, wait_for

log = logging.getLogger(__name__)

NO_CALLBACK = "0x" + "00" * 20
N_REQUESTS = 30
INSTANCES = ("oracle-a", "oracle-b")
# Relayer key per instance (anvil dev key index).
KEYS = {"shared-key": (RELAYER_KEY_INDEX, RELAYER_KEY_INDEX), "own-keys": (RELAYER_KEY_INDEX, RELAYER_KEY_INDEX + 1)}


@pytest.mark.parametrize("keys", list(KEYS))
def test_two_instances_share_one_postgres_database(
    keys: str, chain: Chain, deployment: Deployment, risk_circuit: Path, postgres: PostgresServer, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    db_url = postgres.create_database("multi")
    models = models_dir_with(tmp_path, risk_circuit)
    rpc = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    procs = [
        OracleProcess(rpc, deployment.oracle, models, db_url, tmp_path / f"{name}.log", key_index=key,
                      extra=("--instance", name, "--workers", "2"))
        for name, key in zip(INSTANCES, KEYS[keys], strict=True)
    ]
    accounts = sorted({Account.from_key(DEV_KEYS[k]).address for k in KEYS[keys]})
    nonce_before = {a: chain.w3.eth.get_transaction_count(a) for a in accounts}
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    ids: list[int] = []

    def send_requests() -> None:
        user = account_chain(chain, 1)
        o = user.contract("InferenceOracle", deployment.oracle)
        for k in range(N_REQUESTS):
            x = [(k * 37 + 11 * i) % 1024 for i in range(8)]
            user.transact(o.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
            ids.append(last_request_id(p))
            # No pause: a burst leaves many confirmed requests at once, and each dispatcher
            # claims at most 2 x workers at a time, so both instances must take a share.

    t0 = time.monotonic()
    for proc in procs:  # both start at once: their schema migrations race (advisory lock)
        proc.start(wait=False)
    try:
        for name, proc in zip(INSTANCES, procs, strict=True):
            wait_for(lambda proc=proc: proc._started_since(0), 60, f"{name} to start", every=0.1)  # type: ignore[misc]
        send_requests()  # while both instances run: they race for every request
        wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 120,
                 f"all {N_REQUESTS} requests fulfilled on-chain")
        db = Database(db_url, run_migrations=False)
        wait_for(lambda: _all_fulfilled_in_store(db, ids), 30,
                 "the store to record every fulfilment and every tx's receipt")
        elapsed = time.monotonic() - t0
    finally:
        codes = [proc.stop() for proc in procs]
    assert codes == [0, 0], [proc.tail() for proc in procs]
    assert len(ids) == N_REQUESTS

    # Exactly once on-chain: one InferenceFulfilled per request.
    logs = p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
    per_id = Counter(int(e["args"]["requestId"]) for e in logs)
    assert all(per_id[i] == 1 for i in ids), per_id

    with db.session() as s:
        reqs = {r.id: r for r in s.query(Request).all()}
        history: dict[int, list[StateChange]] = defaultdict(list)
        for c in s.query(StateChange).order_by(StateChange.id):
            history[reqs[c.request_pk].request_id].append(c)
        proofs = {reqs[pr.request_pk].request_id: pr for pr in s.query(Proof).all()}
        txs = s.query(RelayerTx).all()
        stored_nonces = {n.account: n.next_nonce for n in s.query(Nonce).all()}

    # Each request went through the life cycle once, proven under ONE instance's lease.
    provers: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    for rid in ids:
        path = [c.to_state for c in history[rid]]
        assert path == ["seen", "confirmed", "dispatched", "proven", "verified", "submitted", "fulfilled"], (rid, path)
        owners = {c.to_state: c.lease_owner for c in history[rid]}
        prover = owners["proven"]
        assert prover is not None and prover.endswith("/dispatch"), (rid, owners)
        assert owners["dispatched"] == owners["verified"] == prover, (rid, owners)
        provers[prover.split("/")[0]] += 1
        sender_owner = owners["submitted"]
        assert sender_owner is not None and "/relay/" in sender_owner, (rid, owners)
        senders[sender_owner.split("/")[0]] += 1
        assert proofs[rid].verified, rid
    assert set(provers) == set(INSTANCES), f"both instances must have proven some requests: {dict(provers)}"
    log.info("%s: %d requests in %.1f s; proven by %s, sent by %s", keys, N_REQUESTS, elapsed,
             dict(provers), dict(senders))

    # Each request was sent in exactly one transaction that mined (none failed or was sent
    # twice), and the chain agrees on who relayed it (each instance's payee defaults to its
    # relayer account, and the fee goes to the payee the proof names).
    assert all(t.status in ("confirmed", "replaced") for t in txs), [(t.nonce, t.status) for t in txs]
    sent = Counter(reqs[pk].request_id for t in txs if t.status == "confirmed" for pk in t.request_pks)
    assert sorted(sent) == sorted(ids) and set(sent.values()) == {1}, sent
    assert {e["args"]["payee"] for e in logs if int(e["args"]["requestId"]) in ids} <= set(accounts)

    # No nonce gaps, per account: every nonce from the first to the last is used, nothing is
    # stuck in the mempool, and the stored counter equals the chain's.
    for acct in accounts:
        latest = chain.w3.eth.get_transaction_count(acct, "latest")
        assert chain.w3.eth.get_transaction_count(acct, "pending") == latest, f"{acct}: txs stuck (nonce gap)"
        used = sorted({t.nonce for t in txs if t.account == acct})
        assert used == list(range(nonce_before[acct], latest)), (acct, used, nonce_before[acct], latest)
        assert stored_nonces[acct] == latest, (acct, stored_nonces[acct], latest)
    db.dispose()


def _all_fulfilled_in_store(db: Database, ids: list[int]) -> bool:
    with db.session() as s:
        states = {r.request_id: r.state for r in s.query(Request).all()}
        open_txs = s.query(RelayerTx).filter(RelayerTx.status.in_(["pending", "mined"])).count()
    return open_txs == 0 and all(states.get(i) == State.FULFILLED.value for i in ids)
