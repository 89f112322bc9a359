"""EZKL backend against real EZKL (no mocks): compile once (cached), prove, verify, tamper,
and check the generated Halo2 verifier on anvil.

Tolerance against onnxruntime: the circuit works at the calibrated scales (11 for this model:
inputs, weights and the sigmoid table are rounded to 1/2048) and rescales after each Gemm, so
its outputs may differ from the float model by a few units of the last place. We allow
8 / 2**output_scale (~0.004 here); EZKL's own calibration report shows max |error| ~0.0006.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.compiler import compile_sources
from oracle.circuits.fixedpoint import BN254_R, to_field
from oracle.circuits.manifest import Manifest, circuit_id_of
from oracle.proving.base import BackendError, Proof
from oracle.proving.ezkl import EzklBackend
from oracle.proving.ezkl.instances import felt_from_hex
from tests.ezkl_model import N_IN, N_OUT, cached_mlp_circuit

VERIFY_GAS = 3_000_000   # explicit: never trust eth_estimateGas around pairing checks


@pytest.fixture(scope="session")
def ezkl_backend() -> Iterator[EzklBackend]:
    b = EzklBackend()
    yield b
    b.close()


@pytest.fixture(scope="session")
def mlp_ezkl(ezkl_backend: EzklBackend) -> Path:
    return cached_mlp_circuit(ezkl_backend)


@pytest.fixture(scope="session")
def mlp_manifest(mlp_ezkl: Path) -> Manifest:
    return Manifest.load(mlp_ezkl)


@pytest.fixture(scope="session")
def x_fixed(mlp_manifest: Manifest) -> list[int]:
    s = 1 << mlp_manifest.input_scale
    xs = [0.5, 0.25, -0.125, 1.0, 0.0, 0.75, 0.333, 0.999]
    return [round(v * s) for v in xs]


@pytest.fixture(scope="session")
def proof(ezkl_backend: EzklBackend, mlp_ezkl: Path, x_fixed: list[int]) -> Proof:
    return ezkl_backend.prove(mlp_ezkl, x_fixed)


def _ort(onnx_file: Path, x: list[float]) -> list[float]:
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": np.asarray([x], dtype=np.float32)})[0]
    return [float(v) for v in np.asarray(out).reshape(-1)]


def _with_signals(p: Proof, inp: list[int], out: list[int]) -> Proof:
    """A self-consistent claim for (inp, out) reusing p's proof bytes (no native object)."""
    return dataclasses.replace(
        p, input_fixed=inp, output_fixed=out, proof={},
        public_signals=[str(to_field(v)) for v in [*inp, *out]])


# -- compile ---------------------------------------------------------------------------------
def test_manifest(mlp_ezkl: Path, mlp_manifest: Manifest) -> None:
    m = mlp_manifest
    assert m.backend == "ezkl" and m.signal_layout == "inputs_then_outputs"
    assert m.circuit_id == circuit_id_of(mlp_ezkl / m.files["vk"])
    assert (m.input_size, m.output_size) == (N_IN, N_OUT)
    assert m.verifier_contract == "Halo2Verifier" and m.dev_keys
    for role in ("onnx", "settings", "compiled", "pk", "vk", "srs", "verifier_sol",
                 "verifier_json", "calibration"):
        assert m.path(mlp_ezkl, role).stat().st_size > 0
    settings = json.loads(m.path(mlp_ezkl, "settings").read_text())
    assert m.input_scale == settings["model_input_scales"][0]
    assert m.output_scale == settings["model_output_scales"][0]
    assert m.stats["logrows"] == settings["run_args"]["logrows"]
    # The calibration samples ([0, 1]) fit the registered input range.
    assert (1 << m.input_scale) <= (1 << (m.input_bits - 1)) - 1
    # Sigmoid outputs (at most 2**scale) fit the registered output range.
    assert (1 << m.output_scale) <= (1 << (m.output_bits - 1)) - 1


def test_verifier_compiled(mlp_ezkl: Path, mlp_manifest: Manifest) -> None:
    art = json.loads(mlp_manifest.path(mlp_ezkl, "verifier_json").read_text())
    assert len(art["bytecode"]) > 2 and len(art["deployedBytecode"]) > 2
    assert (len(art["deployedBytecode"]) - 2) // 2 <= 24_576      # EIP-170
    fn = next(e for e in art["abi"] if e.get("name") == "verifyProof")
    assert [i["type"] for i in fn["inputs"]] == ["bytes", "uint256[]"]
    assert [o["type"] for o in fn["outputs"]] == ["bool"]


# -- prove / verify --------------------------------------------------------------------------
def test_valid_proof_verifies(ezkl_backend: EzklBackend, mlp_ezkl: Path, proof: Proof,
                              x_fixed: list[int], mlp_manifest: Manifest) -> None:
    assert proof.input_fixed == x_fixed and len(proof.output_fixed) == N_OUT
    assert proof.circuit_id == mlp_manifest.circuit_id
    # EZKL's instances are [inputs..., outputs...] as field elements.
    inst = [felt_from_hex(h) for h in proof.proof["instances"][0]]
    assert inst == [to_field(v) for v in [*x_fixed, *proof.output_fixed]]
    assert proof.public_signals == [str(f) for f in inst]
    assert to_field(-256) == BN254_R - 256 and inst[2] == BN254_R - 256   # negative input
    assert proof.calldata == "0x" + bytes(proof.proof["proof"]).hex()
    assert len(proof.calldata) == 2 + 2 * mlp_manifest.stats["proof_bytes"]
    assert ezkl_backend.verify(mlp_ezkl, proof)
    # Rebuilt from calldata + (input, output) alone, as the chain sees it.
    assert ezkl_backend.verify(mlp_ezkl, _with_signals(proof, x_fixed, proof.output_fixed))


def test_outputs_match_onnxruntime(ezkl_backend: EzklBackend, mlp_ezkl: Path, proof: Proof,
                                   mlp_manifest: Manifest) -> None:
    m = mlp_manifest
    tol = 8 / (1 << m.output_scale)
    onnx_file = m.path(mlp_ezkl, "onnx")
    other = [round(v * (1 << m.input_scale)) for v in
             [0.9, -0.5, 0.1, 0.0, 0.6, -0.3, 0.2, 1.2]]
    p2 = ezkl_backend.prove(mlp_ezkl, other)
    for p in (proof, p2):
        x = [v / (1 << m.input_scale) for v in p.input_fixed]
        got = [v / (1 << m.output_scale) for v in p.output_fixed]
        want = _ort(onnx_file, x)
        assert np.max(np.abs(np.subtract(got, want))) <= tol, (got, want)


def test_tampered_proof_bytes(ezkl_backend: EzklBackend, mlp_ezkl: Path, proof: Proof) -> None:
    raw = bytearray(bytes.fromhex(proof.calldata[2:]))
    for pos in (100, len(raw) - 40):          # a commitment, an evaluation
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        forged = dataclasses.replace(proof, calldata="0x" + bad.hex(), proof={})
        assert not ezkl_backend.verify(mlp_ezkl, forged)
    # calldata no longer matching the native proof object is rejected before EZKL
    bad = bytearray(raw)
    bad[7] ^= 0x80
    assert not ezkl_backend.verify(mlp_ezkl, dataclasses.replace(proof, calldata="0x" + bad.hex()))


def test_tampered_input_or_output(ezkl_backend: EzklBackend, mlp_ezkl: Path,
                                  proof: Proof) -> None:
    x, y = list(proof.input_fixed), list(proof.output_fixed)
    assert not ezkl_backend.verify(mlp_ezkl, _with_signals(proof, [x[0] + 1, *x[1:]], y))
    assert not ezkl_backend.verify(mlp_ezkl, _with_signals(proof, x, [*y[:-1], y[-1] + 1]))
    assert not ezkl_backend.verify(mlp_ezkl, _with_signals(proof, x, [-v for v in y]))
    # claim fields that disagree with the public signals / native instances
    assert not ezkl_backend.verify(mlp_ezkl, dataclasses.replace(proof, output_fixed=[0, 0, 0]))
    assert not ezkl_backend.verify(mlp_ezkl, dataclasses.replace(proof, circuit_id="0x00"))


def test_bad_inputs_raise(ezkl_backend: EzklBackend, mlp_ezkl: Path, x_fixed: list[int],
                          mlp_manifest: Manifest) -> None:
    with pytest.raises(BackendError, match=f"expected {N_IN} inputs, got {N_IN - 1}"):
        ezkl_backend.prove(mlp_ezkl, x_fixed[:-1])
    too_big = 1 << (mlp_manifest.input_bits - 1)
    with pytest.raises(BackendError, match=f"input 3 = {too_big} is outside"):
        ezkl_backend.prove(mlp_ezkl, [*x_fixed[:3], too_big, *x_fixed[4:]])
    with pytest.raises(BackendError, match=f"input 0 = {-too_big - 1} is outside"):
        ezkl_backend.prove(mlp_ezkl, [-too_big - 1, *x_fixed[1:]])
    with pytest.raises(BackendError, match="not an integer"):
        ezkl_backend.prove(mlp_ezkl, [0.5, *x_fixed[1:]])   # type: ignore[list-item]


def test_lookup_overflow_raises_instead_of_hanging(
        ezkl_backend: EzklBackend, mlp_ezkl: Path, mlp_manifest: Manifest) -> None:
    """An input inside input_bits whose lookups leave the calibrated table: ezkl.prove would
    hang on it, the backend refuses it up front."""
    x = _overflowing_input(ezkl_backend, mlp_ezkl)
    if x is None:
        pytest.skip("every edge input fits the calibrated lookup range for this model")
    ezkl_backend.check_input(mlp_manifest, x)             # inside the registered range
    with pytest.raises(BackendError, match="outside the circuit's calibrated range"):
        ezkl_backend.prove(mlp_ezkl, x)


def _overflowing_input(b: EzklBackend, d: Path) -> list[int] | None:
    """An edge-of-range input whose witness overflows the lookup table (witness only: cheap)."""
    import ezkl

    c = b.load(d)
    m = c.manifest
    hi = (1 << (m.input_bits - 1)) - 1
    rng = np.random.default_rng(7)
    candidates = [[-hi - 1] * N_IN, [hi] * N_IN] + [
        [int(v) for v in rng.choice([-hi - 1, hi], size=N_IN)] for _ in range(24)]
    t_lo, t_hi = c.lookup_range
    with tempfile.TemporaryDirectory() as tmp:
        data, wit = Path(tmp) / "in.json", Path(tmp) / "w.json"
        for x in candidates:
            data.write_text(json.dumps({"input_data": [[v / (1 << m.input_scale) for v in x]]}))
            w: dict[str, Any] = ezkl.gen_witness(str(data), str(c.file("compiled")), str(wit),
                                                 vk_path=None, srs_path=None)
            if int(w["min_lookup_inputs"]) < t_lo or int(w["max_lookup_inputs"]) > t_hi:
                return x
    return None


def test_verify_rejects_other_backend_claims(ezkl_backend: EzklBackend, mlp_ezkl: Path,
                                             proof: Proof) -> None:
    assert not ezkl_backend.verify(mlp_ezkl, dataclasses.replace(proof, backend="groth16"))
    assert not ezkl_backend.verify(mlp_ezkl, dataclasses.replace(proof, input_fixed=[1, 2]))


# -- on chain --------------------------------------------------------------------------------
# The adapter calls the verifier the way this caller does: abi.encodeWithSignature from memory
# and a staticcall (the generated verifier reads the proof at absolute calldata offsets, so the
# standard encoding with `proof` first is required).
_CALLER = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract StaticCaller {
    function check(address v, bytes calldata proof, uint256[] calldata instances)
        external view returns (bool ok, bytes memory ret)
    {
        bytes memory p = proof;
        uint256[] memory inst = instances;
        (ok, ret) = v.staticcall(abi.encodeWithSignature("verifyProof(bytes,uint256[])", p, inst));
    }
}
"""


def _deploy(w3: Web3, acct: Any, abi: list[dict[str, Any]], bytecode: str) -> Any:
    tx = {"from": acct.address, "data": bytecode, "gas": 6_000_000,
          "nonce": w3.eth.get_transaction_count(acct.address), "chainId": w3.eth.chain_id,
          "gasPrice": w3.eth.gas_price}
    signed = acct.sign_transaction(tx)
    rcpt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert rcpt["status"] == 1
    return w3.eth.contract(address=rcpt["contractAddress"], abi=abi), rcpt["gasUsed"]


def test_verifier_on_chain(anvil: Anvil, mlp_ezkl: Path, mlp_manifest: Manifest,
                           proof: Proof) -> None:
    art = json.loads(mlp_manifest.path(mlp_ezkl, "verifier_json").read_text())
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    acct = Account.from_key(DEV_KEYS[0])
    verifier, deploy_gas = _deploy(w3, acct, art["abi"], art["bytecode"])
    proof_bytes = bytes.fromhex(proof.calldata[2:])
    instances = [to_field(v) for v in [*proof.input_fixed, *proof.output_fixed]]

    def call(pb: bytes, inst: list[int]) -> bool:
        try:
            return bool(verifier.functions.verifyProof(pb, inst).call(
                {"from": acct.address, "gas": VERIFY_GAS}))
        except (ContractLogicError, Web3RPCError):
            return False                               # EZKL verifiers revert on bad proofs

    assert call(proof_bytes, instances)
    bad = bytearray(proof_bytes)
    bad[100] ^= 1
    assert not call(bytes(bad), instances)
    assert not call(proof_bytes, [instances[0] + 1, *instances[1:]])
    assert not call(proof_bytes, [*instances[:-1], instances[-1] + 1])
    assert not call(proof_bytes, instances[:-1])

    # A real transaction: gas of one verification (~613 k in docs/toolchain.md).
    tx = verifier.functions.verifyProof(proof_bytes, instances).build_transaction(
        {"from": acct.address, "gas": VERIFY_GAS, "nonce": w3.eth.get_transaction_count(
            acct.address), "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id})
    rcpt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction))
    assert rcpt["status"] == 1
    print(f"\nHalo2Verifier: deploy {deploy_gas} gas, verifyProof tx {rcpt['gasUsed']} gas")
    assert 300_000 < rcpt["gasUsed"] < 1_500_000

    # staticcall with abi.encodeWithSignature from memory, as Halo2VerifierAdapter does.
    out = compile_sources({"StaticCaller.sol": _CALLER})
    c = out["contracts"]["StaticCaller.sol"]["StaticCaller"]
    caller, _ = _deploy(w3, acct, c["abi"], "0x" + c["evm"]["bytecode"]["object"])
    ok, ret = caller.functions.check(verifier.address, proof_bytes, instances).call(
        {"gas": VERIFY_GAS})
    assert ok and int.from_bytes(ret, "big") == 1
    ok, _ = caller.functions.check(verifier.address, bytes(bad), instances).call(
        {"gas": VERIFY_GAS})
    assert not ok


def test_fulfil_through_oracle_with_halo2_adapter(chain: Chain, mlp_ezkl: Path, proof: Proof) -> None:
    """The EZKL path end to end on anvil: registry + Halo2VerifierAdapter + oracle. EZKL's
    verifier cannot bind the payee, so a fulfilment is revealed only after its commitment
    (commitFulfillment of exactly that id, output, payee and proof) was mined."""
    from hexbytes import HexBytes

    from oracle.chain.client import ContractError
    from oracle.chain.deploy import deploy_all
    from oracle.chain.registration import register_circuit
    from oracle.chain.structs import read_model
    from tests.protocol import commit_fulfilment, rpc_url

    d = deploy_all(chain)
    reg = register_circuit(chain, d.registry, mlp_ezkl, rpc_url=rpc_url(chain))
    oracle = chain.contract("InferenceOracle", d.oracle)
    mid = bytes.fromhex(reg.model_id[2:])
    assert read_model(oracle, mid).binds_payee is False       # read from the Halo2 adapter
    assert chain.account is not None
    payee = chain.account.address
    copier = Account.from_key(DEV_KEYS[6]).address
    raw = bytes(HexBytes(proof.calldata))
    fee = int(oracle.functions.quoteFee(mid, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    no_cb = "0x" + "00" * 20
    chain.transact(oracle.functions.requestInference(mid, proof.input_fixed, no_cb, 0, deadline), value=fee)
    rid = int(oracle.functions.nextRequestId().call()) - 1
    bad = list(proof.output_fixed)
    bad[0] += 1
    commit_fulfilment(chain, oracle, rid, bad, payee, raw)     # committed, so the verifier decides
    with pytest.raises(ContractError, match="InvalidProof"):
        chain.transact(oracle.functions.fulfill(rid, bad, payee, raw), gas=VERIFY_GAS)
    with pytest.raises(ContractError, match="FulfillmentNotCommitted"):   # a valid proof, no commitment
        chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, payee, raw), gas=VERIFY_GAS)
    commit_fulfilment(chain, oracle, rid, proof.output_fixed, payee, raw)
    with pytest.raises(ContractError, match="FulfillmentNotCommitted"):   # the commitment names the payee
        chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, copier, raw), gas=VERIFY_GAS)
    rcpt = chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, payee, raw), gas=VERIFY_GAS)
    assert int(oracle.functions.requestStatus(rid).call()) == 2
    assert int(oracle.functions.balances(payee).call()) == fee
    print(f"\nfulfill through Halo2VerifierAdapter: {rcpt['gasUsed']} gas")
