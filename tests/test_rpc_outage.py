"""RPC outage: anvil is stopped for 10 s mid-run and restarted on the same port with its state
(anvil --state dumps on exit and loads on start). The oracle recovers by itself."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

from eth_account import Account

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_all
from tests.protocol import last_request_id, setup_protocol
from tests.service_harness import models_dir_with, running_service, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_oracle_recovers_from_a_10s_rpc_outage(risk_circuit: Path, tmp_path: Path) -> None:
    port, state = _free_port(), tmp_path / "anvil-state.json"
    node = Anvil(port=port, state_file=state).start()
    try:
        chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(chain)
        p = setup_protocol(chain, d, risk_circuit, vault_deposit=0)
        cfg = service_config(
            node.url, d.oracle, models_dir_with(tmp_path, risk_circuit), f"sqlite:///{tmp_path / 'oracle.db'}"
        )
        fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
        ids: list[int] = []

        def request(k: int) -> None:
            deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
            x = [(k * 53 + 7 * i) % 1024 for i in range(8)]
            chain.transact(p.oracle.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
            ids.append(last_request_id(p))

        def all_fulfilled() -> bool:
            return all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids)

        with running_service(cfg) as svc:
            for k in range(4):
                request(k)
            wait_for(all_fulfilled, 60, "requests before the outage")
            for k in range(4, 6):  # in flight when the node goes away
                request(k)
            node.stop()  # SIGTERM: anvil dumps its state
            assert state.exists()
            time.sleep(10)
            node = Anvil(port=port, state_file=state).start()
            chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
            assert int(p.oracle.functions.nextRequestId().call()) >= 7  # state survived
            for k in range(6, 9):
                request(k)
            wait_for(all_fulfilled, 90, "every request after the node came back")
            failures = sum(b.failures for b in svc._backoff.values())
        per_id = Counter(
            int(e["args"]["requestId"]) for e in p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
        )
        assert all(per_id[i] == 1 for i in ids)
        assert len(ids) == 9
        assert failures == 0, "every job recovered (no job left in back-off)"
    finally:
        node.stop()
