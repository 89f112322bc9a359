"""Crash safety: the oracle process is killed with SIGKILL at random moments while 30 requests
arrive, and restarted each time. Every request is fulfilled exactly once, the relayer's
nonces have no gaps, nothing is lost."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.store.db import Database
from oracle.store.models import Nonce, RelayerTx, Request, State
from tests.conftest import account_chain
from tests.protocol import last_request_id, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, OracleProcess, models_dir_with, wait_for

NO_CALLBACK = "0x" + "00" * 20
N_REQUESTS = 30


def test_sigkill_at_random_moments_loses_nothing(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    db_url = f"sqlite:///{tmp_path / 'oracle.db'}"
    oracle = OracleProcess(chain.w3.provider.endpoint_uri, deployment.oracle,  # type: ignore[attr-defined]
                           models_dir_with(tmp_path, risk_circuit), db_url, tmp_path / "oracle.log")
    relayer_addr = Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]).address
    nonce_before = chain.w3.eth.get_transaction_count(relayer_addr)
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    rng = random.Random(1234)
    ids: list[int] = []
    lock = threading.Lock()

    def send_requests() -> None:
        user = account_chain(chain, 1)
        o = user.contract("InferenceOracle", deployment.oracle)
        for k in range(N_REQUESTS):
            x = [(k * 31 + 17 * i) % 1024 for i in range(8)]
            user.transact(o.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
            with lock:
                ids.append(last_request_id(p))
            time.sleep(rng.uniform(0.05, 0.25))

    oracle.start()
    sender = threading.Thread(target=send_requests)
    sender.start()
    kills = 0
    try:
        while sender.is_alive() or kills < 6:
            time.sleep(rng.uniform(0.3, 1.5))   # kill at a random point of the pipeline
            oracle.kill()
            kills += 1
            oracle.start()
        sender.join()
        wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 120,
                 f"all {N_REQUESTS} requests fulfilled after {kills} SIGKILLs")
        db = Database(db_url, run_migrations=False)
        wait_for(lambda: _all_fulfilled_in_store(db, ids), 30, "the store to catch up")
    finally:
        oracle.stop()
    assert len(ids) == N_REQUESTS and kills >= 6
    # Exactly once: one InferenceFulfilled per request.
    logs = p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
    per_id = Counter(int(e["args"]["requestId"]) for e in logs)
    assert all(per_id[i] == 1 for i in ids), per_id
    # No nonce gaps: everything the oracle signed is mined or replaced, nothing is stuck, and
    # the persisted counter equals the chain's.
    latest = chain.w3.eth.get_transaction_count(relayer_addr, "latest")
    pending = chain.w3.eth.get_transaction_count(relayer_addr, "pending")
    assert latest == pending, "transactions stuck in the mempool (a nonce gap)"
    with db.session() as s:
        txs = s.query(RelayerTx).all()
        used = sorted({t.nonce for t in txs})
        stored = s.get(Nonce, (chain.chain_id, relayer_addr))
        assert stored is not None and stored.next_nonce == latest
    assert used == list(range(nonce_before, latest)), "every nonce from the first to the last is used once"
    db.dispose()


def _all_fulfilled_in_store(db: Database, ids: list[int]) -> bool:
    with db.session() as s:
        states = {r.request_id: r.state for r in s.query(Request).all()}
    return all(states.get(i) == State.FULFILLED.value for i in ids)
