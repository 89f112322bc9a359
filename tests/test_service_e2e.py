"""The oracle service end to end on anvil: listener -> dispatcher (local Groth16 prover) ->
relayer -> on-chain fulfilment and vault callback. 50 requests from the vault and from plain
accounts, all fulfilled with outputs equal to the numpy reference; the vault acts on them."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.store.models import RelayerTx, State
from tests.conftest import account_chain
from tests.protocol import last_request_id, setup_protocol
from tests.service_harness import db_states, models_dir_with, running_service, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20
VAULT_ROUNDS = 5
PLAIN = 45


def test_service_fulfils_50_vault_and_plain_requests(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit)
    chain.transact(p.vault.functions.setMinRebalanceInterval(0))
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    cfg = service_config(chain.w3.provider.endpoint_uri, deployment.oracle,  # type: ignore[attr-defined]
                         models_dir_with(tmp_path, risk_circuit), f"sqlite:///{tmp_path / 'oracle.db'}")
    rng = random.Random(7)
    inputs: dict[int, list[int]] = {}
    vault_rounds: list[tuple[int, list[int], list[int]]] = []   # (request id, features, risks after)
    lock = threading.Lock()
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600

    def plain_requests() -> None:
        for k in range(PLAIN):
            user = account_chain(chain, 1 + k % 3)
            o = user.contract("InferenceOracle", deployment.oracle)
            x = [rng.randint(0, 1 << qm.input_scale) for _ in range(qm.input_size)]
            with lock:  # request ids are read back right after each transaction
                user.transact(o.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
                inputs[last_request_id(p)] = x

    with running_service(cfg) as svc:
        sender = threading.Thread(target=plain_requests)
        sender.start()
        for _ in range(VAULT_ROUNDS):
            with lock:
                feats = [int(v) for v in p.vault.functions.currentFeatures().call()]
                chain.transact(p.vault.functions.requestRebalance())
                rid = last_request_id(p)
            wait_for(lambda rid=rid: int(p.oracle.functions.requestStatus(rid).call()) == 2, 60, f"vault request {rid}")
            vault_rounds.append((rid, feats, [int(p.vault.functions.lastRisk(i).call()) for i in range(3)]))
        sender.join()
        ids = list(inputs) + [r[0] for r in vault_rounds]
        assert len(ids) == VAULT_ROUNDS + PLAIN == 50
        wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 120,
                 "all 50 requests fulfilled on-chain")
        wait_for(lambda: all(db_states(svc).get(i) == State.FULFILLED.value for i in ids), 30,
                 "the store to record every fulfilment")
        with svc.db.session() as s:
            nonces = sorted(t.nonce for t in s.query(RelayerTx).all() if t.status != "replaced")
    logs = p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
    got = {int(e["args"]["requestId"]): [int(v) for v in e["args"]["output"]] for e in logs}
    # Outputs on-chain equal the numpy integer reference, bit for bit; each exactly once.
    for rid, x in inputs.items():
        assert got[rid] == quantized_forward(qm, x), f"request {rid}"
    assert sum(1 for e in logs if int(e["args"]["requestId"]) in ids) == len(ids)
    # The vault acted on each proven assessment: stored risks are its proven output (clamped
    # to [0, 1] in 1e18 units), and every callback succeeded.
    for rid, feats, risks in vault_rounds:
        assert got[rid] == quantized_forward(qm, feats)
        expected = [min(max(o, 0) * 10**18 >> qm.output_scale, 10**18) for o in got[rid]]
        assert risks == expected, f"vault request {rid}"
    assert all(e["args"]["callbackSucceeded"] for e in logs if int(e["args"]["requestId"]) in ids)
    assert int(p.vault.functions.pendingRequestId().call()) == 0
    # Nonces are consecutive from the relayer's first: no gaps, no reuse.
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
