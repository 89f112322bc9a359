"""Sliced models across the subnet (issue #12 items 4-5): the validator runs the integer
forward pass once as a work plan, sends every slice to a different real ``oracle miner``
process at once over signed HTTP, verifies each slice proof as it arrives, re-sends a refused or
late slice elsewhere, and assembles the on-chain encoding; then on anvil: the sliced model
registered behind its SlicedGroth16Adapter, requested on-chain, fulfilled through the oracle
service with the integer reference's output, and ``oracle audit`` re-verifying it slice by slice.

Model: the residual MLP of tests/sliced_model.py cut in 3 slices (compiled once into
``.cache/test-circuits/sliced-subnet-k3``, reused while its circuits match the current code;
the three tests take ~2-4 min on a loaded 2-core box once it is cached).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from bittensor import http_auth

from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.chain.registration import register_circuit
from oracle.circuits.catalog import CircuitCatalog
from oracle.circuits.manifest import Manifest
from oracle.circuits.quantize import quantized_forward
from oracle.dispatch.provers import verify_offchain
from oracle.proving.groth16 import slice_jobs, sliced
from oracle.subnet import protocol as P
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.circuits import CircuitServer
from oracle.subnet.config import SubnetConfig
from oracle.subnet.local import MinerProcess, stop_local_miners
from oracle.subnet.metagraph import LocalMetagraph, write_local_metagraph
from oracle.subnet.scoring import Outcome
from oracle.subnet.validator import SubnetProver
from tests.service_harness import models_dir_with, running_service, service_config, wait_for
from tests.slice_miner import start_slice_miners
from tests.test_audit import audit_json, rpc_of, statuses
from tests.test_r1cs_direct import _inputs
from tests.test_sliced import _compiled

PAYEE = "0x00000000000000000000000000000000000a11ce"
NO_CALLBACK = "0x" + "00" * 20


@pytest.fixture(scope="module")
def k3() -> Path:
    # Its own cached folder: a shared one may be recompiled by another test run meanwhile.
    return _compiled("sliced-subnet-k3", [0, 1, 2, 4])


def _prover(tmp: Path, miners: list[MinerProcess], catalog: CircuitCatalog, **kw: object) -> SubnetProver:
    wallet = load_or_create_wallet("validator", tmp / "wallets")
    cfg = SubnetConfig(metagraph=tmp / "miners" / "miners.json", wallet_name="validator", wallet_path=tmp / "wallets",
                       exploration=0.0, **kw)  # type: ignore[arg-type]
    return SubnetProver(wallet, LocalMetagraph(cfg.metagraph), cfg, catalog=catalog, seed=1)  # type: ignore[arg-type]


def _slice_job(p: SubnetProver, m: MinerProcess, req: P.SliceRequest) -> httpx.Response:
    body = P.dumps(req)
    headers = http_auth.sign(p.wallet, method="POST", path=P.PROVE_SLICE_PATH, body=body, receiver_ss58=m.hotkey)
    return httpx.post(m.url + P.PROVE_SLICE_PATH, content=body, timeout=60,
                      headers={**headers, "Content-Type": "application/json"})


def _capacity(p: SubnetProver, m: MinerProcess) -> P.Capacity:
    headers = http_auth.sign(p.wallet, method="GET", path=P.CAPACITY_PATH, receiver_ss58=m.hotkey)
    r = httpx.get(m.url + P.CAPACITY_PATH, headers=headers, timeout=5)
    r.raise_for_status()
    return P.Capacity.model_validate_json(r.content)


@pytest.fixture
def validator_hotkey(tmp_path: Path) -> str:
    return hotkey_of(load_or_create_wallet("validator", tmp_path / "wallets"))


def test_slices_proven_in_parallel_on_different_miners(k3: Path, tmp_path: Path, validator_hotkey: str) -> None:
    """3 slices, 3 honest miners (one holds no circuit and fetches each slice it is asked from
    the validator's circuit server): every slice of a request on a different miner, every slice
    proof checked, the assembled proof verifies for the request's input and payee, and the output
    is the integer reference's."""
    catalog = CircuitCatalog.scan(models_dir_with(tmp_path, k3))
    sm = sliced.load(k3)
    server = CircuitServer(catalog).start()
    empty = tmp_path / "empty-models"
    empty.mkdir()
    miners = start_slice_miners(2, models_dir_with(tmp_path, k3), validator_hotkey, behaviours=["honest"] * 2,
                                base_dir=tmp_path / "miners", workers=1)
    miners += start_slice_miners(1, empty, validator_hotkey, behaviours=["honest"], base_dir=tmp_path / "miners-f",
                                 metagraph_file=tmp_path / "fetcher.json", workers=1, validator_url=server.url)
    write_local_metagraph(tmp_path / "miners" / "miners.json", [m.info for m in miners], {validator_hotkey: 0.0})
    p = _prover(tmp_path, miners, catalog, k=1, miner_timeout=60.0, hedge_delay=30.0)
    circuit = catalog.get(sm.manifest.circuit_id)
    assert circuit is not None
    try:
        caps = [_capacity(p, m) for m in miners]
        assert caps[0].slices == {sm.manifest.circuit_id: [0, 1, 2]} and caps[2].slices == {}
        fetcher_proved: set[int] = set()
        xs = _inputs(sm.qm, 4, 5)[1:]
        for x in xs:
            res = p.prove(circuit, x, timeout=90.0, payee=PAYEE)
            proof = res.proof
            assert proof.output_fixed == quantized_forward(sm.qm, x)
            assert res.verified and res.prover.startswith("slices:")
            by = [s["miner"] for s in proof.extra["slices"]]
            assert len(set(by)) == 3, by                       # one slice per miner
            fetcher_proved |= {j for j, h in enumerate(by) if h == miners[2].hotkey}
            assert verify_offchain(circuit, proof, x, PAYEE) is None
            assert proof.calldata == sliced.encode_sliced(*slice_jobs.decode_sliced(proof.calldata))
            assert verify_offchain(circuit, proof, [*x[:-1], x[-1] ^ 1], PAYEE) is not None  # another input
        # Bad slice jobs get a clear, specific refusal (and nothing is proven for them).
        plan = slice_jobs.work_plan(sm, xs[0])
        sid = slice_jobs.slice_circuit_id(sm, 1)
        job = P.SliceRequest(request_id="r", model_id=sm.manifest.circuit_id, slice_index=1, slice_circuit_id=sid,
                             input_fixed=plan.inputs[1])
        r = _slice_job(p, miners[0], job.model_copy(update={"slice_circuit_id": slice_jobs.slice_circuit_id(sm, 2)}))
        assert r.status_code == 404 and r.json()["error"] == "unknown_circuit", r.text   # id of another slice
        r = _slice_job(p, miners[0], job.model_copy(update={"input_fixed": plan.inputs[1][:-1]}))
        assert r.status_code == 422 and "boundary 1" in r.json()["reason"], r.text      # wrong-size activation
        r = _slice_job(p, miners[0], job.model_copy(update={"slice_index": 7}))
        assert r.status_code == 404, r.text                                               # no such slice
        unsigned = httpx.post(miners[0].url + P.PROVE_SLICE_PATH, content=P.dumps(job), timeout=10)
        assert unsigned.status_code == 401
        huge = _slice_job(p, miners[0], job.model_copy(update={"input_fixed": [100_000] * 40_000}))
        assert huge.status_code == 413, huge.text                                        # > 256 KiB body
        r = _slice_job(p, miners[0], job)
        assert r.status_code == 200 and P.SliceResponse.model_validate_json(r.content).public_signals == \
            [str(plan.commitments[1]), str(plan.commitments[0])]
        # The fetching miner holds exactly the slices it was asked for (fetched one by one).
        assert fetcher_proved and _capacity(p, miners[2]).slices == {sm.manifest.circuit_id: sorted(fetcher_proved)}
        # One slice proven = one unit of work, scored under the slice's own circuit id.
        done = {m.hotkey: p.scores.snapshot()[m.hotkey].successes for m in miners}
        assert done == {m.hotkey: len(xs) for m in miners}
    finally:
        p.close()
        stop_local_miners(miners)
        server.stop()


def test_refused_and_late_slices_are_resent_elsewhere(k3: Path, tmp_path: Path, validator_hotkey: str) -> None:
    """Miners that prove a slice on another activation (a valid proof, other commitments), forge
    a proof, or answer too late: each such slice is refused or abandoned and proven by the honest
    miner; the liars are slashed, and the result still verifies."""
    catalog = CircuitCatalog.scan(models_dir_with(tmp_path, k3))
    sm = sliced.load(k3)
    miners = start_slice_miners(4, models_dir_with(tmp_path, k3), validator_hotkey,
                                behaviours=["other_activation", "invalid_proof", "slow", "honest"], delay=20.0,
                                base_dir=tmp_path / "miners", workers=2)
    liar, forger, slow, honest = (m.hotkey for m in miners)
    p = _prover(tmp_path, miners, catalog, k=1, miner_timeout=8.0, hedge_delay=30.0, max_attempts=4)
    circuit = catalog.get(sm.manifest.circuit_id)
    assert circuit is not None
    # The honest miner ranks last (an old timeout): each liar is some slice's first choice.
    p.scores.record(honest, Outcome.TIMEOUT, circuit_id="0x" + "00" * 32)
    try:
        x = _inputs(sm.qm, 4, 9)[3]
        t0 = time.monotonic()
        res = p.prove(circuit, x, timeout=60.0, payee=PAYEE)
        took = time.monotonic() - t0
        assert res.proof.output_fixed == quantized_forward(sm.qm, x)
        assert verify_offchain(circuit, res.proof, x, PAYEE) is None
        assert {s["miner"] for s in res.proof.extra["slices"]} == {honest}
        fails = " | ".join(f for d in p.history for f in d.failures)
        assert "another activation" in fails and "does not verify" in fails and "timeout" in fails, fails
        assert p.scores.snapshot()[liar].invalid >= 1 and p.scores.snapshot()[forger].invalid >= 1
        assert p.scores.score(liar) == 0.0 and p.scores.score(forger) == 0.0
        assert p.scores.snapshot()[slow].failures >= 1
        assert took < 40, took
    finally:
        p.close()
        stop_local_miners(miners)


def test_sliced_model_fulfilled_on_anvil_and_audited(chain: Chain, deployment: Deployment, k3: Path,
                                                     tmp_path: Path, validator_hotkey: str) -> None:
    """Registered (one SlicedGroth16Adapter for the 3 slice keys), requested on-chain, proven
    slice-parallel by 3 miners through the oracle service, fulfilled with the integer
    reference's output; ``oracle audit`` passes every slice and the chaining (only ``setup``
    fails: local development keys)."""
    reg = register_circuit(chain, deployment.registry, k3, rpc_url=rpc_of(chain))
    m = Manifest.load(k3)
    assert reg.circuit_id == m.circuit_id
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    models = models_dir_with(tmp_path, k3)
    miners = start_slice_miners(3, models, validator_hotkey, behaviours=["honest"] * 3, base_dir=tmp_path / "miners",
                                workers=1)
    cfg = service_config(rpc_of(chain), deployment.oracle, models, f"sqlite:///{tmp_path / 'oracle.db'}")
    cfg.subnet = SubnetConfig(metagraph=tmp_path / "miners" / "miners.json", wallet_name="validator",
                              wallet_path=tmp_path / "wallets", k=1, miner_timeout=60.0, hedge_delay=30.0,
                              exploration=0.0)
    sm = sliced.load(k3)
    xs = _inputs(sm.qm, 2, 21)
    mid = bytes.fromhex(reg.model_id.removeprefix("0x"))
    ids = []
    try:
        with running_service(cfg) as svc:
            fee = int(oracle.functions.quoteFee(mid, 0).call())
            for x in xs:
                deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 900
                chain.transact(oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
                ids.append(int(oracle.functions.nextRequestId().call()) - 1)
            wait_for(lambda: all(int(oracle.functions.requestStatus(i).call()) == 2 for i in ids), 240,
                     "both sliced requests fulfilled on-chain")
            assert svc.prover is not None
    finally:
        stop_local_miners(miners)
    logs = oracle.events.InferenceFulfilled().get_logs(from_block=0)
    got = {int(e["args"]["requestId"]): [int(v) for v in e["args"]["output"]] for e in logs}
    for i, x in zip(ids, xs, strict=True):
        assert got[i] == quantized_forward(sm.qm, x)
    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, ids[0], "--models", str(models))
    st = statuses(rep)
    assert {n: s for n, s in st.items() if s != "PASS"} == {"setup": "FAIL"}, (st, err)
    assert [st[f"slice_{j}"] for j in range(3)] == ["PASS"] * 3 and st["chaining"] == "PASS"
    assert rc != 0                 # dev keys: the audit fails on setup alone


def test_catalog_checks_sliced_folders(k3: Path, tmp_path: Path) -> None:
    """A sliced folder is served only when its model id is the hash over its slices' ids and
    every slice present has the key its id names; a miner's copy holding some slices is valid
    (it advertises those); a tampered slice key or model id is refused."""
    import json
    import shutil

    def copy(name: str) -> Path:
        d = tmp_path / name / "m"
        shutil.copytree(k3, d, symlinks=False, ignore=shutil.ignore_patterns("*.r1cs", "*.sol", "verifier.json"))
        return d

    m = Manifest.load(k3)
    ok = CircuitCatalog.scan(copy("ok").parent).get(m.circuit_id)
    assert ok is not None and ok.manifest.held_slices(ok.dir) == [0, 1, 2]
    partial = copy("partial")
    shutil.rmtree(partial / "slices" / "0")
    shutil.rmtree(partial / "slices" / "2")
    got = CircuitCatalog.scan(partial.parent).get(m.circuit_id)
    assert got is not None and got.manifest.held_slices(got.dir) == [1]
    tampered = copy("tampered")
    vk = tampered / "slices" / "1" / "verification_key.json"
    doc = json.loads(vk.read_text())
    doc["nPublic"] = int(doc["nPublic"]) + 1
    vk.write_text(json.dumps(doc))
    assert CircuitCatalog.scan(tampered.parent).get(m.circuit_id) is None
    other_id = copy("other-id")
    raw = json.loads((other_id / "manifest.json").read_text())
    raw["slices"][0], raw["slices"][1] = raw["slices"][1], raw["slices"][0]     # slices out of order
    (other_id / "manifest.json").write_text(json.dumps(raw))
    assert len(CircuitCatalog.scan(other_id.parent)) == 0


def test_local_prover_proves_every_slice_here(k3: Path, tmp_path: Path) -> None:
    """Without a subnet the dispatcher's LocalProver proves all slices on this machine; the result
    is the same on-chain encoding, verified by the same off-chain check (another payee refused)."""
    from oracle.dispatch.provers import LocalProver

    catalog = CircuitCatalog.scan(models_dir_with(tmp_path, k3))
    sm = sliced.load(k3)
    circuit = catalog.get(sm.manifest.circuit_id)
    assert circuit is not None
    x = _inputs(sm.qm, 4, 13)[3]
    res = LocalProver().prove(circuit, x, timeout=120.0, payee=PAYEE)
    assert res.prover == "local" and res.proof.output_fixed == quantized_forward(sm.qm, x)
    assert verify_offchain(circuit, res.proof, x, PAYEE) is None
    assert verify_offchain(circuit, res.proof, x, "0x" + "22" * 20) is not None
    assert len(bytes.fromhex(res.proof.calldata[2:])) == sliced.proof_bytes(sm.k)
