"""A sliced model on-chain (issue #12 item 3): ``register_circuit`` on a sliced folder deploys one
SlicedGroth16Adapter with every slice's key and registers the model; a real sliced proof
(oracle.proving.groth16.sliced) fulfils a request through InferenceOracle on anvil, and broken
chains are refused by the chain itself. Folders that do not hold what their manifest says are
refused before anything is deployed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi.abi import encode
from hexbytes import HexBytes

from oracle.chain.anvil import Anvil
from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import Deployment
from oracle.chain.registration import register_circuit
from oracle.chain.sliced import is_sliced, load_sliced
from oracle.chain.structs import read_model
from oracle.chain.vk import groth16_vk_words
from oracle.circuits.manifest import Manifest, ManifestError
from oracle.proving.groth16 import sliced
from oracle.proving.groth16.calldata import proof_words
from oracle.proving.groth16.pool import ProverPool
from tests.test_r1cs_direct import _inputs
from tests.test_sliced import _compiled

PAYEE = "0x00000000000000000000000000000000000000AA"  # checksummed: web3 takes no other
NO_CALLBACK = "0x" + "00" * 20


@pytest.fixture(scope="module")
def k3() -> Path:
    return _compiled("sliced-mlp-k3", [0, 1, 2, 4])


@pytest.fixture(scope="module")
def pool() -> Iterator[ProverPool]:
    with ProverPool(2) as p:
        yield p


def _request(chain: Chain, deployment: Deployment, model_id: str, x: list[int]) -> int:
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    mid = bytes.fromhex(model_id[2:])
    fee = int(oracle.functions.quoteFee(mid, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    chain.transact(oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
    return int(oracle.functions.nextRequestId().call()) - 1


def test_register_and_fulfil_a_sliced_model(chain: Chain, deployment: Deployment, k3: Path, pool: ProverPool,
                                            anvil: Anvil) -> None:
    assert is_sliced(k3)
    r = register_circuit(chain, deployment.registry, k3, model_id="0x" + "5c" * 32, rpc_url=anvil.url)
    m = Manifest.load(k3)
    model = read_model(chain.contract("ModelRegistry", deployment.registry), bytes.fromhex(r.model_id[2:]))
    assert (model.verifier, model.circuit_id, model.binds_payee) == (r.adapter, m.circuit_id, True)
    adapter = chain.contract("SlicedGroth16Adapter", r.adapter)
    assert adapter.functions.numSlices().call() == 3
    assert model.verify_gas == r.verify_gas == adapter.functions.minVerifyGas().call()
    for j, vk in enumerate(load_sliced(k3).vk_files):
        assert adapter.functions.verificationKey(j).call() == groth16_vk_words(vk)

    xs = _inputs(sliced.load(k3).qm, 5, 7)[3:]
    proofs = [sliced.prove_sliced(k3, x, PAYEE, pool) for x in xs]
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    rid = _request(chain, deployment, r.model_id, proofs[0].input_fixed)

    # Slices 0-1 of request 0 with slice 2 of request 1 (and its commitment): a valid proof each,
    # not one chain. The chain refuses it.
    a, b = proofs
    mixed = encode(["uint256[]", "uint256[8][]"],
                   [[a.commitments[0], b.commitments[1]],
                    [proof_words(a.proofs[0]), proof_words(a.proofs[1]), proof_words(b.proofs[2])]])
    with pytest.raises(ContractError, match="InvalidProof"):
        chain.transact(oracle.functions.fulfill(rid, a.output_fixed, PAYEE, HexBytes(mixed)), gas=3_000_000)
    with pytest.raises(ContractError, match="InvalidProof"):
        chain.transact(oracle.functions.fulfill(rid, b.output_fixed, PAYEE, HexBytes(b.calldata)), gas=3_000_000)
    # One slice missing: the adapter names it.
    short = encode(["uint256[]", "uint256[8][]"],
                   [a.commitments, [proof_words(p) for p in a.proofs[:2]]])
    with pytest.raises(ContractError, match="SliceCountMismatch"):
        chain.transact(oracle.functions.fulfill(rid, a.output_fixed, PAYEE, HexBytes(short)), gas=3_000_000)

    receipt = chain.transact(oracle.functions.fulfill(rid, a.output_fixed, PAYEE, HexBytes(a.calldata)),
                             gas=3_000_000)
    assert receipt["status"] == 1
    assert oracle.functions.requestStatus(rid).call() == 2  # Fulfilled
    assert oracle.functions.balances(PAYEE).call() > 0


def _copy(k3: Path, tmp_path: Path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(k3, d, ignore=shutil.ignore_patterns("*.zkey", "*.r1cs"))
    return d


def test_folders_that_do_not_match_their_manifest_are_refused(k3: Path, tmp_path: Path,
                                                               risk_circuit: Path) -> None:
    assert not is_sliced(risk_circuit)  # plain circuits carry "slices": null
    d = _copy(k3, tmp_path)
    load_sliced(d)
    # A slice's key replaced (another slice's): its hash is not the listed circuit id.
    vk1 = d / "slices" / "1" / "verification_key.json"
    shutil.copyfile(d / "slices" / "0" / "verification_key.json", vk1)
    with pytest.raises(ManifestError, match="slice 1's circuit id"):
        load_sliced(d)
    # Slices listed in another order: the model id no longer matches.
    d = _copy(k3, tmp_path / "b")
    raw = json.loads((d / "manifest.json").read_text())
    raw["slices"][0], raw["slices"][1] = raw["slices"][1], raw["slices"][0]
    (d / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="not the hash of its slices' ids"):
        load_sliced(d)
    # One slice is not a sliced model.
    raw["slices"] = raw["slices"][:1]
    (d / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="at least 2 needed"):
        load_sliced(d)
