"""The on-chain protocol end to end on a real anvil with a real Groth16 proof through the
snarkjs-generated verifier: request -> fulfil -> LRTVault callback, and the refund path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hexbytes import HexBytes
from web3.logs import DISCARD

from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import Deployment
from oracle.chain.structs import read_request
from oracle.circuits.manifest import Manifest
from oracle.proving.groth16 import Groth16Backend
from tests.conftest import account_chain
from tests.protocol import last_request_id, request_input, setup_protocol

FULFIL_GAS = 1_500_000
NO_CALLBACK = "0x" + "00" * 20


def _fulfil_event(p, receipt):  # type: ignore[no-untyped-def]
    evs = p.oracle.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)
    assert len(evs) == 1
    return evs[0]["args"]


def test_vault_rebalance_with_real_groth16_proof(
    chain: Chain, deployment: Deployment, risk_circuit: Path, groth16_backend: Groth16Backend
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit)
    before = [int(v) for v in p.vault.functions.allocations().call()]
    chain.transact(p.vault.functions.requestRebalance())
    rid = last_request_id(p)
    assert int(p.vault.functions.pendingRequestId().call()) == rid
    inp = request_input(p, rid)
    assert inp == [int(v) for v in p.vault.functions.currentFeatures().call()]

    relayer = account_chain(chain, 3)
    payee = account_chain(chain, 4).account.address  # type: ignore[union-attr]
    proof = groth16_backend.prove(risk_circuit, inp, payee)
    oracle_r = relayer.contract("InferenceOracle", deployment.oracle)
    # A proof for the right input but a different output fails on-chain.
    bad_out = list(proof.output_fixed)
    bad_out[0] += 1
    with pytest.raises(ContractError, match=r"InvalidProof\(requestId="):
        relayer.transact(oracle_r.functions.fulfill(rid, bad_out, payee, HexBytes(proof.calldata)), gas=FULFIL_GAS)
    # The same proof claimed for another payee (a copier naming itself) fails on-chain.
    copier = relayer.account.address  # type: ignore[union-attr]
    with pytest.raises(ContractError, match=r"InvalidProof\(requestId="):
        relayer.transact(oracle_r.functions.fulfill(rid, list(proof.output_fixed), copier, HexBytes(proof.calldata)),
                         gas=FULFIL_GAS)

    receipt = relayer.transact(
        oracle_r.functions.fulfill(rid, list(proof.output_fixed), payee, HexBytes(proof.calldata)), gas=FULFIL_GAS
    )
    ev = _fulfil_event(p, receipt)
    assert ev["callbackSucceeded"] is True
    assert ev["payee"] == payee
    assert [int(v) for v in ev["output"]] == list(proof.output_fixed)
    assert int(p.oracle.functions.requestStatus(rid).call()) == 2  # Fulfilled
    assert int(p.vault.functions.pendingRequestId().call()) == 0
    scale = Manifest.load(risk_circuit).output_scale
    risks = [int(p.vault.functions.lastRisk(i).call()) for i in range(3)]
    expected = [min(max(o, 0) * 10**18 >> scale, 10**18) for o in proof.output_fixed]
    assert risks == expected
    after = [int(v) for v in p.vault.functions.allocations().call()]
    assert after != before or len(set(expected)) == 1  # re-weighted unless all risks are equal
    # The payee the proof names earned the whole fee; the sender of the transaction nothing.
    assert int(p.oracle.functions.balances(payee).call()) == read_request(p.oracle, rid).fee > 0
    assert int(p.oracle.functions.balances(copier).call()) == 0
    # A second fulfilment of the same request is rejected by name.
    with pytest.raises(ContractError, match=r"AlreadyFulfilled\(requestId="):
        relayer.transact(
            oracle_r.functions.fulfill(rid, list(proof.output_fixed), payee, HexBytes(proof.calldata)), gas=FULFIL_GAS
        )


def test_proof_for_another_request_input_is_rejected(
    chain: Chain, deployment: Deployment, risk_circuit: Path, groth16_backend: Groth16Backend
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    ids = []
    for inp in ([10] * 8, [20] * 8):
        chain.transact(p.oracle.functions.requestInference(p.model_id, inp, NO_CALLBACK, 0, deadline), value=fee)
        ids.append(last_request_id(p))
    me = chain.account.address  # type: ignore[union-attr]
    proof_for_second = groth16_backend.prove(risk_circuit, [20] * 8, me)
    with pytest.raises(ContractError, match="InvalidProof"):
        chain.transact(p.oracle.functions.fulfill(ids[0], list(proof_for_second.output_fixed), me,
                                                  HexBytes(proof_for_second.calldata)), gas=FULFIL_GAS)
    chain.transact(p.oracle.functions.fulfill(ids[1], list(proof_for_second.output_fixed), me,
                                              HexBytes(proof_for_second.calldata)), gas=FULFIL_GAS)
    assert int(p.oracle.functions.requestStatus(ids[1]).call()) == 2


def test_refund_after_deadline(chain: Chain, deployment: Deployment, risk_circuit: Path,
                               groth16_backend: Groth16Backend) -> None:
    p = setup_protocol(chain, deployment, risk_circuit)
    chain.transact(p.vault.functions.requestRebalance())
    rid = last_request_id(p)
    with pytest.raises(ContractError, match=r"DeadlineNotReached\(requestId="):
        chain.transact(p.oracle.functions.refund(rid))
    vault_eth = chain.w3.eth.get_balance(deployment.vault)
    fee = read_request(p.oracle, rid).fee
    ttl = int(p.vault.functions.requestTtl().call())
    chain.w3.provider.make_request("evm_increaseTime", [ttl + 1])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    me = chain.account.address  # type: ignore[union-attr]
    proof = groth16_backend.prove(risk_circuit, request_input(p, rid), me)
    with pytest.raises(ContractError, match=r"RequestExpired\(requestId="):
        chain.transact(p.oracle.functions.fulfill(rid, list(proof.output_fixed), me, HexBytes(proof.calldata)),
                       gas=FULFIL_GAS)
    chain.transact(p.oracle.functions.refund(rid))
    assert chain.w3.eth.get_balance(deployment.vault) == vault_eth + fee
    assert int(p.oracle.functions.requestStatus(rid).call()) == 3  # Refunded
    with pytest.raises(ContractError, match=r"AlreadyRefunded\(requestId="):
        chain.transact(p.oracle.functions.refund(rid))
    # The vault is unchanged by the refunded request and may ask again.
    assert [int(p.vault.functions.lastRisk(i).call()) for i in range(3)] == [0, 0, 0]
    chain.transact(p.vault.functions.requestRebalance())
    assert last_request_id(p) == rid + 1
