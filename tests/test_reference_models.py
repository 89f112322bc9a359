"""Both backends on both reference models (risk, digits): off-chain and on a real anvil
through the oracle contract. A valid proof is accepted; a tampered output is rejected."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
from hexbytes import HexBytes
from web3.logs import DISCARD

from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import deploy_all
from oracle.chain.registration import register_circuit
from oracle.chain.structs import read_model
from oracle.circuits.fixedpoint import to_fixed
from oracle.circuits.manifest import Manifest, ManifestError
from oracle.paths import CACHE_DIR, ROOT
from oracle.proving.base import CompileOptions, ProofBackend
from oracle.proving.groth16 import Groth16Backend
from oracle.proving.groth16.cache import compile_cached
from oracle.proving.registry import get_backend
from tests.ezkl_model import ezkl_sources
from tests.protocol import commit_fulfilment, rpc_url

NO_CALLBACK = "0x" + "00" * 20
FULFIL_GAS = 5_000_000


def _ezkl_cached(model: str) -> Path:
    """EZKL circuit of a reference model, rebuilt only when its inputs or the backend change."""
    onnx, calib = ROOT / "models" / model / "model.onnx", ROOT / "models" / model / "calibration.json"
    b = get_backend("ezkl")
    h = hashlib.sha256()
    for part in (onnx.read_bytes(), calib.read_bytes(), json.dumps(b.config(), sort_keys=True).encode(),  # type: ignore[attr-defined]
                 version("ezkl").encode(), ezkl_sources()):
        h.update(part)
    out = CACHE_DIR / "test-circuits" / f"{model}-ezkl-{h.hexdigest()[:12]}"
    try:
        Manifest.load(out).check_circuit_id(out)
        return out
    except ManifestError:
        pass
    for stale in out.parent.glob(f"{model}-ezkl-*"):   # old builds: ~160 MB each
        shutil.rmtree(stale, ignore_errors=True)
    build = out.with_name(out.name + ".building")
    shutil.rmtree(build, ignore_errors=True)
    b.compile(onnx, build, CompileOptions(calibration=calib, name=model))
    build.rename(out)
    return out


@pytest.fixture(scope="module")
def circuits(groth16_backend: Groth16Backend, risk_circuit: Path) -> dict[tuple[str, str], Path]:
    digits = compile_cached(groth16_backend, ROOT / "models/digits/model.onnx",
                            ROOT / "models/digits/calibration.json",
                            CACHE_DIR / "test-circuits" / f"digits-{groth16_backend.generator}")
    return {("groth16", "risk"): risk_circuit, ("groth16", "digits"): digits,
            ("ezkl", "risk"): _ezkl_cached("risk"), ("ezkl", "digits"): _ezkl_cached("digits")}


@pytest.mark.parametrize("backend", ["groth16", "ezkl"])
@pytest.mark.parametrize("model", ["risk", "digits"])
def test_reference_model_off_chain_and_through_the_oracle(
    backend: str, model: str, circuits: dict[tuple[str, str], Path], chain: Chain
) -> None:
    circuit = circuits[(backend, model)]
    m = Manifest.load(circuit)
    sample = json.loads((ROOT / "models" / model / "calibration.json").read_text())["input"][3]
    x = to_fixed(sample, m.input_scale, m.input_bits)
    b: ProofBackend = get_backend(backend)
    assert chain.account is not None
    payee = chain.account.address
    proof = b.prove(circuit, x, payee)
    assert b.verify(circuit, proof)
    bad = list(proof.output_fixed)
    bad[0] += 1
    from dataclasses import replace

    assert not b.verify(circuit, replace(proof, output_fixed=bad, public_signals=m.public_signals(x, bad, payee)))

    d = deploy_all(chain)
    reg = register_circuit(chain, d.registry, circuit, rpc_url=rpc_url(chain))
    oracle = chain.contract("InferenceOracle", d.oracle)
    mid = bytes.fromhex(reg.model_id[2:])
    # Groth16 binds the payee into its proof; EZKL's verifier cannot, so it goes by commit-reveal.
    assert read_model(oracle, mid).binds_payee is (backend == "groth16") is m.binds_payee
    fee = int(oracle.functions.quoteFee(mid, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    chain.transact(oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
    rid = int(oracle.functions.nextRequestId().call()) - 1
    raw = bytes(HexBytes(proof.calldata))
    if not m.binds_payee:
        with pytest.raises(ContractError, match=r"FulfillmentNotCommitted"):   # reveal without commit
            chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, payee, raw), gas=FULFIL_GAS)
        commit_fulfilment(chain, oracle, rid, bad, payee, raw)   # so the tampered output reaches the verifier
    with pytest.raises(ContractError, match=r"InvalidProof|PackedOutputOutOfRange"):
        chain.transact(oracle.functions.fulfill(rid, bad, payee, raw), gas=FULFIL_GAS)
    if not m.binds_payee:
        commit_fulfilment(chain, oracle, rid, proof.output_fixed, payee, raw)
    rcpt = chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, payee, raw), gas=FULFIL_GAS)
    assert int(oracle.functions.requestStatus(rid).call()) == 2
    ev = oracle.events.InferenceFulfilled().process_receipt(rcpt, errors=DISCARD)[0]
    assert [int(v) for v in ev["args"]["output"]] == list(proof.output_fixed)
    assert ev["args"]["payee"] == payee and int(oracle.functions.balances(payee).call()) == fee
    print(f"\n{backend}/{model}: fulfil {rcpt['gasUsed']:,} gas, proof {len(proof.calldata) // 2 - 1} bytes")
