"""The subnet end to end on anvil: the oracle service with a ``[subnet]`` section dispatches
on-chain requests to real ``oracle miner`` processes over signed HTTP.

* three miners (honest fast, honest slow, malicious: wrong outputs, invalid proofs, proofs of
  other inputs, answers signed by someone else, hanging): 50 requests all fulfilled with the
  reference outputs; the malicious miner ends last and is no longer asked first.
* a miner SIGKILLed mid-run: its requests go to the other miner, none is lost.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.service.config import ServiceConfig
from oracle.store.db import Database
from oracle.store.models import MinerScore, Proof, Request, State
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.config import SubnetConfig
from oracle.subnet.local import MinerProcess, stop_local_miners
from oracle.subnet.validator import SubnetProver
from tests.conftest import account_chain
from tests.malicious_miner import start_miners
from tests.protocol import Protocol, last_request_id, setup_protocol
from tests.service_harness import db_states, models_dir_with, running_service, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20


def _subnet_service(chain: Chain, deployment: Deployment, risk_circuit: Path, tmp: Path, miners_file: Path,
                    **subnet: object) -> ServiceConfig:
    cfg = service_config(chain.w3.provider.endpoint_uri, deployment.oracle,  # type: ignore[attr-defined]
                         models_dir_with(tmp, risk_circuit), f"sqlite:///{tmp / 'oracle.db'}")
    cfg.subnet = SubnetConfig(metagraph=miners_file, wallet_name="validator", wallet_path=tmp / "wallets",
                              **subnet)  # type: ignore[arg-type]
    return cfg


def _send(chain: Chain, p: Protocol, deployment: Deployment, qm: QuantizedModel, n: int,
          seed: int) -> dict[int, list[int]]:
    rng = random.Random(seed)
    lo, hi = qm.input_range()
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 900
    inputs: dict[int, list[int]] = {}
    for k in range(n):
        user = account_chain(chain, 1 + k % 3)
        o = user.contract("InferenceOracle", deployment.oracle)
        x = [rng.randint(lo, hi) for _ in range(qm.input_size)]
        user.transact(o.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
        inputs[last_request_id(p)] = x
    return inputs


def _check_onchain(p: Protocol, qm: QuantizedModel, inputs: dict[int, list[int]]) -> None:
    logs = p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
    got = {int(e["args"]["requestId"]): [int(v) for v in e["args"]["output"]] for e in logs}
    for rid, x in inputs.items():
        assert got[rid] == quantized_forward(qm, x), f"request {rid}"
    assert sum(1 for e in logs if int(e["args"]["requestId"]) in inputs) == len(inputs)   # exactly once each


def test_three_miners_one_malicious_fifty_requests(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    t_start = time.monotonic()
    p = setup_protocol(chain, deployment, risk_circuit)
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    validator = hotkey_of(load_or_create_wallet("validator", tmp_path / "wallets"))
    miners = start_miners(3, models_dir_with(tmp_path, risk_circuit), validator, base_dir=tmp_path / "miners",
                          behaviours=["honest", "honest", "mixed"], delays=[0.0, 0.4, 0.0])
    fast, slow, bad = (m.hotkey for m in miners)
    cfg = _subnet_service(chain, deployment, risk_circuit, tmp_path, tmp_path / "miners" / "miners.json",
                          k=2, miner_timeout=3.0, hedge_delay=0.5, exploration=0.1)
    try:
        with running_service(cfg) as svc:
            assert isinstance(svc.prover, SubnetProver)
            inputs = _send(chain, p, deployment, qm, 50, seed=11)
            ids = list(inputs)
            wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 120,
                     "all 50 requests fulfilled on-chain")
            wait_for(lambda: all(db_states(svc).get(i) == State.FULFILLED.value for i in ids), 30,
                     "the store to record every fulfilment")
            sp = svc.prover
            scores = {h: sp.scores.score(h) for h in (fast, slow, bad)}
            ranking = [m.hotkey for m in sp.ranked()]
            real = [d for d in sp.history if not d.benchmark]
            bad_health = miners[2].health()
    finally:
        stop_local_miners(miners)
    _check_onchain(p, qm, inputs)
    # The malicious miner was caught, ends last, and is not asked first any more.
    assert scores[bad] < scores[slow] and scores[bad] < scores[fast], scores
    assert ranking[-1] == bad
    assert bad_health["proofs_done"] > 0                  # it did answer (and lie)
    assert all(d.asked[0] != bad for d in real[-25:]), [d.asked for d in real[-25:]]
    # Every proof came from an honest miner. A dispatch may fail as a whole on this 2-core box
    # (every miner asked timed out): the dispatcher retries it, so it is still fulfilled.
    assert all(d.winner in (fast, slow, None) for d in real)
    assert sum(d.winner is None for d in real) <= 2, [(d.asked, d.failures) for d in real if d.winner is None]
    assert any(bad in d.asked and "invalid" in " ".join(d.failures) for d in real)
    # Scores and provers are in the store.
    db = Database(cfg.database_url)
    with db.session() as s:
        rows = {r.hotkey: r for r in s.query(MinerScore).all()}
        provers = {r.prover for r in s.query(Proof).all()}
        failed = s.query(Request).filter(Request.state == State.FAILED.value).count()
    db.dispose()
    assert rows[bad].invalid >= 1 and rows[bad].score == min(r.score for r in rows.values())
    assert provers <= {fast, slow} and failed == 0
    assert time.monotonic() - t_start < 120


def test_killed_miner_requests_are_redispatched(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit)
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    validator = hotkey_of(load_or_create_wallet("validator", tmp_path / "wallets"))
    miners = start_miners(2, models_dir_with(tmp_path, risk_circuit), validator, base_dir=tmp_path / "miners",
                          delays=[0.3, 0.3])
    cfg = _subnet_service(chain, deployment, risk_circuit, tmp_path, tmp_path / "miners" / "miners.json",
                          k=1, miner_timeout=5.0, hedge_delay=3.0, exploration=0.0)
    victim: MinerProcess | None = None
    try:
        with running_service(cfg) as svc:
            inputs = _send(chain, p, deployment, qm, 20, seed=5)
            ids = list(inputs)

            def someone_busy() -> bool:
                nonlocal victim
                for m in miners:
                    if m.health()["in_flight"] > 0:
                        victim = m
                        return True
                return False

            wait_for(lambda: sum(s == State.FULFILLED.value for s in db_states(svc).values()) >= 2, 60,
                     "the first fulfilments")
            wait_for(someone_busy, 30, "a miner with a proof in flight", every=0.02)
            assert victim is not None
            victim.kill()                                    # SIGKILL, mid-request
            wait_for(lambda: all(int(p.oracle.functions.requestStatus(i).call()) == 2 for i in ids), 90,
                     "all requests fulfilled despite the dead miner")
            wait_for(lambda: all(db_states(svc).get(i) == State.FULFILLED.value for i in ids), 30,
                     "the store to record every fulfilment")
            history = list(svc.prover.history)               # type: ignore[attr-defined]
    finally:
        stop_local_miners(miners)
    _check_onchain(p, qm, inputs)
    survivor = next(m.hotkey for m in miners if m is not victim)
    # At least one request was in the dead miner's hands and went to the survivor instead.
    moved = [d for d in history if d.asked[0] == victim.hotkey and d.winner == survivor]
    assert moved, [(d.asked, d.winner, d.failures) for d in history]
