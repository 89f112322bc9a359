"""Circuit distribution to miners, network mode against a fake subtensor (stake-gated miner,
chain metagraph, weights on chain), and the scoreboard's persistence."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bittensor import http_auth

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.manifest import Manifest
from oracle.proving.base import BackendError
from oracle.store.db import Database
from oracle.store.models import MinerScore
from oracle.subnet import protocol as P
from oracle.subnet.auth import StakeThreshold, hotkey_of, load_or_create_wallet
from oracle.subnet.circuits import CircuitServer
from oracle.subnet.config import SubnetConfig
from oracle.subnet.local import start_local_miners, stop_local_miners
from oracle.subnet.metagraph import ChainMetagraph
from oracle.subnet.miner.app import MinerSettings, build_app, make_state
from oracle.subnet.scoring import PRIOR, Outcome, Scoreboard
from oracle.subnet.server import ThreadedServer
from oracle.subnet.validator import SubnetProver
from tests.fake_subtensor import FakeSubtensor, neuron
from tests.malicious_miner import start_miners

PAYEE = "0x" + "ab" * 20


def _prove(url: str, wallet: Any, miner_hotkey: str, m: Manifest, x: int = 1) -> httpx.Response:
    body = P.dumps(P.ProveRequest(request_id=f"q{x}", circuit_id=m.circuit_id, input_fixed=[x] * m.input_size,
                                  payee=PAYEE))
    h = http_auth.sign(wallet, method="POST", path=P.PROVE_PATH, body=body, receiver_ss58=miner_hotkey)
    return httpx.post(url + P.PROVE_PATH, content=body, headers=h, timeout=60)


def test_miner_fetches_a_missing_circuit_and_refuses_a_tampered_one(risk_circuit: Path, tmp_path: Path) -> None:
    m = Manifest.load(risk_circuit)
    validator = load_or_create_wallet("validator", tmp_path / "vw")
    # A "validator" whose copy of the circuit has a different verification key under the same id.
    bad_dir = tmp_path / "tampered"
    shutil.copytree(risk_circuit, bad_dir)
    vk = json.loads((bad_dir / "verification_key.json").read_text())
    vk["IC"] = vk["IC"][::-1]
    (bad_dir / "verification_key.json").write_text(json.dumps(vk))
    good = CircuitServer(CircuitCatalog.scan(risk_circuit)).start()
    bad = CircuitServer(CircuitCatalog({m.circuit_id: Circuit(dir=bad_dir, manifest=m)})).start()
    empty_a, empty_b = tmp_path / "ma", tmp_path / "mb"
    empty_a.mkdir()
    empty_b.mkdir()
    a = start_local_miners(1, empty_a, hotkey_of(validator), base_dir=tmp_path / "a", validator_url=good.url)
    b = start_local_miners(1, empty_b, hotkey_of(validator), base_dir=tmp_path / "b", validator_url=bad.url)
    try:
        r = _prove(a[0].url, validator, a[0].hotkey, m)
        assert r.status_code == 200, r.text
        assert (empty_a / ".fetched" / m.circuit_id / "model.zkey").exists()
        assert a[0].health()["circuits"] == [m.circuit_id]
        r = _prove(b[0].url, validator, b[0].hotkey, m)
        assert r.status_code == 404 and r.json()["code"] == "fetch_failed", r.text
        assert "verification key hash" in r.json()["reason"]
        assert b[0].health()["proofs_started"] == 0
        assert not (empty_b / ".fetched" / m.circuit_id).exists()
    finally:
        stop_local_miners(a + b)
        good.stop()
        bad.stop()


def test_network_mode_stake_gate_and_weights_with_a_fake_subtensor(risk_circuit: Path, tmp_path: Path) -> None:
    m = Manifest.load(risk_circuit)
    rich = load_or_create_wallet("rich", tmp_path / "w")
    poor = load_or_create_wallet("poor", tmp_path / "w")
    miner_wallet = load_or_create_wallet("miner", tmp_path / "w")
    models = tmp_path / "models"
    models.mkdir()
    (models / "risk").symlink_to(risk_circuit)
    fake = FakeSubtensor()
    # An in-process miner in network mode: validators admitted by stake on the chain metagraph.
    miner_view = ChainMetagraph(7, subtensor=fake, refresh_interval=0.0)
    state = make_state(MinerSettings(models_dir=models), miner_wallet, StakeThreshold(miner_view, 1000.0))
    with ThreadedServer(build_app(state), name="miner") as srv:
        fake.subnets_neurons[7] = [
            neuron(0, hotkey_of(rich), stake=5000.0, validator_permit=True),
            neuron(1, hotkey_of(poor), stake=10.0),
            neuron(2, hotkey_of(miner_wallet), axon=f"{srv.host}:{srv.port}"),
            neuron(3, "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM", axon=None),   # serves nothing
        ]
        assert _prove(srv.url, rich, hotkey_of(miner_wallet), m).status_code == 200
        r = _prove(srv.url, poor, hotkey_of(miner_wallet), m, x=2)
        assert r.status_code == 403 and r.json()["code"] == "not_allowed" and "stake" in r.json()["reason"]
        assert state.proofs_started == 1

        # The validator side: miners from the chain, proofs through them, weights set on chain.
        cfg = SubnetConfig(netuid=7, k=1, exploration=0.0, weights_interval=0)
        mg = ChainMetagraph(7, subtensor=fake, wallet=rich)
        assert [(x.hotkey, x.uid) for x in mg.miners()] == [(hotkey_of(miner_wallet), 2)]
        catalog = CircuitCatalog.scan(models)
        circuit = catalog.get(m.circuit_id)
        assert circuit is not None
        sp = SubnetProver(rich, mg, cfg, catalog=catalog)
        try:
            res = sp.prove(circuit, [5] * m.input_size, timeout=30, payee=PAYEE)
            assert res.prover == hotkey_of(miner_wallet) and res.proof.payee == PAYEE
            weights = sp.set_weights()
        finally:
            sp.close()
    assert weights == {hotkey_of(miner_wallet): 1.0}
    (intent, signer), = fake.executed
    assert type(intent).__name__ == "SetWeights" and intent.netuid == 7 and list(intent.uids) == [2]
    assert signer is rich


def test_scores_rank_punish_and_persist(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    sb = Scoreboard(db)
    for _ in range(10):
        sb.record("fast", Outcome.VERIFIED, circuit_id="c", latency=0.05, proof_bytes=256)
        sb.record("slow", Outcome.VERIFIED, circuit_id="c", latency=1.0, proof_bytes=256)
    sb.record("liar", Outcome.VERIFIED, circuit_id="c", latency=0.01, proof_bytes=256)
    sb.record("liar", Outcome.INVALID, reason="proof does not verify")
    sb.record("dead", Outcome.TIMEOUT)
    assert sb.score("fast") > sb.score("slow") > PRIOR > sb.score("dead") > sb.score("liar") == 0.0
    assert sb.score("never-seen") == PRIOR
    w = sb.weights(["fast", "slow", "liar"])
    assert abs(sum(w.values()) - 1) < 1e-9 and w["liar"] == 0 and w["fast"] > w["slow"]
    assert sb.flush() == 4
    with db.session() as s:
        liar = s.get(MinerScore, "liar")
        assert liar is not None and liar.invalid == 1 and liar.score == 0.0 and liar.successes == 1
    again = Scoreboard(db)
    assert again.score("fast") == sb.score("fast") and again.snapshot()["liar"].invalid == 1
    db.dispose()


def test_idle_benchmark_keeps_every_miner_scored(risk_circuit: Path, tmp_path: Path) -> None:
    validator = load_or_create_wallet("validator", tmp_path / "vw")
    models = tmp_path / "models"
    models.mkdir()
    (models / "risk").symlink_to(risk_circuit)
    miners = start_miners(2, models, hotkey_of(validator), base_dir=tmp_path / "m", behaviours=["honest", "mixed"])
    cfg = SubnetConfig(metagraph=tmp_path / "m" / "miners.json", benchmark_interval=0.25, idle_after=0.0,
                       miner_timeout=2.0)
    from oracle.subnet.metagraph import LocalMetagraph

    sp = SubnetProver(validator, LocalMetagraph(cfg.metagraph or Path()), cfg, catalog=CircuitCatalog.scan(models))
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            bench = [d for d in sp.history if d.benchmark]
            if len({d.asked[0] for d in bench}) == 2 and len(bench) >= 4:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        bench = [d for d in sp.history if d.benchmark]
    finally:
        sp.close()
        stop_local_miners(miners)
    honest, bad = miners[0].hotkey, miners[1].hotkey
    assert {d.asked[0] for d in bench} == {honest, bad}
    assert len(bench) <= elapsed / 0.25 + 2                       # rate-limited
    assert sp.scores.score(honest) > PRIOR > sp.scores.score(bad)
    assert all(d.winner == honest for d in bench if d.asked[0] == honest)


def test_each_kind_of_lie_is_caught_and_slashed(risk_circuit: Path, tmp_path: Path) -> None:
    """One miner per behaviour, asked alone: no lie ever comes back as a proof."""
    from oracle.dispatch.provers import LocalProver
    from oracle.subnet.local import free_port
    from oracle.subnet.metagraph import LocalMetagraph, MinerInfo, write_local_metagraph
    from oracle.subnet.validator import SubnetError

    validator = load_or_create_wallet("validator", tmp_path / "vw")
    models = tmp_path / "models"
    models.mkdir()
    (models / "risk").symlink_to(risk_circuit)
    circuit = CircuitCatalog.scan(models).get(Manifest.load(risk_circuit).circuit_id)
    assert circuit is not None
    lies = {"wrong_output": "proof does not verify", "invalid_proof": "proof does not verify",
            "other_input": "proof does not verify", "other_payee": f"expected {PAYEE}",
            "bad_signature": "not by the miner asked",
            "hang": "timeout"}
    miners = start_miners(len(lies), models, hotkey_of(validator), base_dir=tmp_path / "m", behaviours=list(lies))
    x = [7] * circuit.manifest.input_size
    try:
        for m, (behaviour, why) in zip(miners, lies.items(), strict=True):
            f = write_local_metagraph(tmp_path / f"{behaviour}.json", [m.info])
            sp = SubnetProver(validator, LocalMetagraph(f), SubnetConfig(metagraph=f, k=1, miner_timeout=1.5))
            try:
                sp.prove(circuit, x, timeout=10, payee=PAYEE)
                raise AssertionError(f"{behaviour}: a lie was accepted")
            except SubnetError as e:
                assert why in str(e), (behaviour, str(e))
            finally:
                sp.close()
            st = sp.scores.snapshot()[m.hotkey]
            if behaviour == "hang":
                assert st.score < PRIOR and st.invalid == 0
            else:
                assert st.score == 0.0 and st.invalid == 1, behaviour
        # Every miner dead or lying, with the local fallback configured: proven here instead.
        f = write_local_metagraph(tmp_path / "dead.json",
                                  [MinerInfo(hotkey=miners[0].hotkey, url=f"http://127.0.0.1:{free_port()}")])
        sp = SubnetProver(validator, LocalMetagraph(f), SubnetConfig(metagraph=f, fallback_local=True),
                          fallback=LocalProver())
        try:
            res = sp.prove(circuit, x, timeout=10, payee=PAYEE)
        finally:
            sp.close()
        assert res.prover == "local" and res.proof.input_fixed == x and res.proof.payee == PAYEE
        # A malformed payee is the request's fault: refused before any miner is asked or scored.
        f = write_local_metagraph(tmp_path / "one.json", [miners[0].info])
        sp = SubnetProver(validator, LocalMetagraph(f), SubnetConfig(metagraph=f, k=1))
        try:
            with pytest.raises(BackendError, match="payee"):
                sp.prove(circuit, x, timeout=10, payee="0x1234")
        finally:
            sp.close()
        assert sp.scores.snapshot() == {}
    finally:
        stop_local_miners(miners)


def test_service_config_subnet_section_is_optional(tmp_path: Path) -> None:
    from oracle.service.config import ConfigError, ServiceConfig

    base = '[[chains]]\nrpc_url = "http://x"\noracle = "0x' + "11" * 20 + '"\n[prover]\nmodels_dir = "m"\n'
    f = tmp_path / "a.toml"
    f.write_text(base)
    assert ServiceConfig.load(f).subnet is None
    f.write_text(base + '[subnet]\nmetagraph = "miners.json"\nk = 3\nbenchmark_interval = 5\n')
    sub = ServiceConfig.load(f).subnet
    assert sub is not None and sub.k == 3 and sub.metagraph == Path("miners.json") and sub.netuid is None
    f.write_text(base + '[subnet]\nmetagraph = "miners.json"\nnetuid = 2\n')
    try:
        ServiceConfig.load(f)
        raise AssertionError("both sources accepted")
    except ConfigError as e:
        assert "exactly one" in str(e)
