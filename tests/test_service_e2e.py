"""The oracle service end to end on anvil: listener -> dispatcher (local Groth16 prover) ->
relayer -> on-chain fulfilment and vault callback; outputs equal the numpy reference."""

from __future__ import annotations

import random
from pathlib import Path

from web3.logs import DISCARD

from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.store.models import RelayerTx, State
from tests.conftest import account_chain
from tests.protocol import last_request_id, setup_protocol
from tests.service_harness import db_states, models_dir_with, running_service, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20


def test_service_fulfils_vault_and_plain_requests(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit)
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    lo, hi = qm.input_range()
    cfg = service_config(chain.w3.provider.endpoint_uri, deployment.oracle,  # type: ignore[attr-defined]
                         models_dir_with(tmp_path, risk_circuit), f"sqlite:///{tmp_path / 'oracle.db'}")
    rng = random.Random(7)
    with running_service(cfg) as svc:
        chain.transact(p.vault.functions.requestRebalance())
        vault_rid = last_request_id(p)
        ids = [vault_rid]
        fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
        deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
        inputs = {}
        for k in range(6):
            user = account_chain(chain, 1 + k % 3)
            o = user.contract("InferenceOracle", deployment.oracle)
            x = [rng.randint(max(lo, 0), min(hi, 1 << qm.input_scale)) for _ in range(qm.input_size)]
            user.transact(o.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
            rid = last_request_id(p)
            ids.append(rid)
            inputs[rid] = x
        wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 90,
                 "all requests fulfilled on-chain")
        wait_for(lambda: all(db_states(svc).get(i) == State.FULFILLED.value for i in ids), 30,
                 "the store to record every fulfilment")
        with svc.db.session() as s:
            txs = s.query(RelayerTx).all()
            nonces = sorted(t.nonce for t in txs if t.status != "replaced")
    # Outputs on-chain equal the numpy integer reference, bit for bit.
    logs = p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
    got = {int(e["args"]["requestId"]): [int(v) for v in e["args"]["output"]] for e in logs}
    for rid, x in inputs.items():
        assert got[rid] == quantized_forward(qm, x), f"request {rid}"
    assert sum(1 for e in logs if int(e["args"]["requestId"]) in ids) == len(ids)  # exactly once each
    # The vault acted on its proven scores.
    assert int(p.vault.functions.pendingRequestId().call()) == 0
    assert [int(p.vault.functions.lastRisk(i).call()) for i in range(3)] != [0, 0, 0] or got[vault_rid] == [0, 0, 0]
    # Nonces are consecutive from the relayer's first: no gaps, no reuse.
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
    vault_ev = [e for e in logs if int(e["args"]["requestId"]) == vault_rid][0]
    assert vault_ev["args"]["callbackSucceeded"] is True
    _ = DISCARD
