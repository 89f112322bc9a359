"""Relayer behaviour on a real anvil: stuck transactions replaced with bumped fees under the
same nonce, no transaction for a request another relayer already fulfilled, batching, and the
eth_call simulation before any nonce is taken: a proof the chain refuses is proven again (no
gas spent on it), settled requests are settled, a gas shortfall never sends a transaction."""

from __future__ import annotations

import json
import time
from pathlib import Path

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector
from hexbytes import HexBytes

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain, ErrorDecoder
from oracle.chain.deploy import Deployment
from oracle.proving.groth16 import Groth16Backend
from oracle.service.app import OracleService
from oracle.store import repo
from oracle.store.models import RelayerTx, Request, State
from relayer.relayer import Rejection, Relayer, RelayerConfig, classify
from tests.protocol import Protocol, last_request_id, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20


def _service(chain: Chain, d: Deployment, circuit: Path, tmp: Path, **relayer: object) -> OracleService:
    cfg = service_config(chain.w3.provider.endpoint_uri, d.oracle,  # type: ignore[attr-defined]
                         models_dir_with(tmp, circuit), f"sqlite:///{tmp / 'oracle.db'}")
    for k, v in relayer.items():
        setattr(cfg.relayer, k, v)
    return OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))


def _request(chain: Chain, p: Protocol, x: list[int]) -> int:
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    chain.transact(p.oracle.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
    return last_request_id(p)


def _rival_fulfils(chain: Chain, p: Protocol, backend: Groth16Backend, circuit: Path, rid: int,
                   x: list[int]) -> None:
    """Another operator (the deployer's account) proves ``rid`` for itself and fulfils it."""
    rival = chain.account.address  # type: ignore[union-attr]
    proof = backend.prove(circuit, x, rival)
    chain.transact(p.oracle.functions.fulfill(rid, proof.output_fixed, rival, HexBytes(proof.calldata)),
                   gas=1_500_000)


def _rpc(chain: Chain, method: str, *params: object) -> object:
    return chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def test_stuck_transaction_is_replaced_with_bumped_fees(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path, stuck_after=0.5)
    rt = next(iter(svc.chains.values()))
    rid = _request(chain, p, [1, 2, 3, 4, 5, 6, 7, 8])
    try:
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 1
        _rpc(chain, "evm_setAutomine", False)       # nothing gets mined: the tx is stuck
        assert rt.relayer.submit_ready() == 1
        time.sleep(0.7)
        rt.txs.track()                          # stuck -> replacement, same nonce, +25 % fees
        with svc.db.session() as s:
            txs = s.query(RelayerTx).order_by(RelayerTx.id).all()
            assert [t.status for t in txs] == ["replaced", "pending"]
            assert txs[0].nonce == txs[1].nonce
            assert int(txs[1].max_fee) >= int(txs[0].max_fee) * 125 // 100
            assert int(txs[1].priority_fee) >= int(txs[0].priority_fee) * 125 // 100
            new_hash = txs[1].tx_hash
        _rpc(chain, "evm_mine")
        _rpc(chain, "evm_setAutomine", True)
        wait_for(lambda: (rt.txs.track(), _state(svc, rid) == State.FULFILLED.value)[1], 30, "fulfilment")
        rc = chain.w3.eth.get_transaction_receipt(HexBytes(new_hash))
        assert rc["status"] == 1                    # the replacement is what got mined
        assert int(p.oracle.functions.requestStatus(rid).call()) == 2
    finally:
        _rpc(chain, "evm_setAutomine", True)
        svc.stop()


def test_no_transaction_when_another_relayer_fulfilled_first(
    chain: Chain, deployment: Deployment, risk_circuit: Path, groth16_backend: Groth16Backend, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    x = [9, 8, 7, 6, 5, 4, 3, 2]
    rid = _request(chain, p, x)
    try:
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 1
        _rival_fulfils(chain, p, groth16_backend, risk_circuit, rid, x)   # a competitor fulfils first
        assert rt.relayer.submit_ready() == 0
        assert _state(svc, rid) == State.FULFILLED.value
        with svc.db.session() as s:
            assert s.query(RelayerTx).count() == 0  # no gas spent
    finally:
        svc.stop()


def test_listener_goes_on_when_a_request_it_gave_up_on_is_fulfilled_by_another(
    chain: Chain, deployment: Deployment, risk_circuit: Path, groth16_backend: Groth16Backend, tmp_path: Path
) -> None:
    """This oracle marked a request failed (say it has no artifacts for its circuit); another
    operator fulfils it. The listener leaves it failed and reads on: recording that log used to
    raise InvalidTransition (failed -> fulfilled) at every poll, so the chain's listener stalled."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    x = [3, 1, 4, 1, 5, 9, 2, 6]
    rid = _request(chain, p, x)
    try:
        rt.listener.poll()
        with svc.db.session() as s:
            req = repo.find_request(s, rt.chain_id, rt.listener.oracle, rid)
            assert req is not None
            repo.transition(s, req, State.FAILED, "no artifacts for its circuit (test)")
        _rival_fulfils(chain, p, groth16_backend, risk_circuit, rid, x)
        later = _request(chain, p, [2, 7, 1, 8, 2, 8, 1, 8])
        rt.listener.poll()
        assert _state(svc, rid) == State.FAILED.value
        assert _state(svc, later) == State.CONFIRMED.value
    finally:
        svc.stop()


def test_ready_requests_go_out_in_one_fulfill_batch(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    ids = [_request(chain, p, [k, k + 1, k + 2, 0, 0, 0, 100, 10]) for k in range(6)]
    try:
        rt.listener.poll()
        wait_for(lambda: _count(svc, State.VERIFIED) == 6 or svc.dispatcher.run_once() < 0, 60, "6 verified")
        assert rt.relayer.submit_ready() == 6
        wait_for(lambda: (rt.txs.track(), all(_state(svc, i) == State.FULFILLED.value for i in ids))[1],
                 30, "batch fulfilment")
        with svc.db.session() as s:
            txs = s.query(RelayerTx).all()
            assert len(txs) == 1 and txs[0].kind == "fulfillBatch"
    finally:
        svc.stop()


def _nonce(chain: Chain) -> int:
    """The relayer account's transaction count, mined and pending: any transaction sent shows."""
    return int(chain.w3.eth.get_transaction_count(Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]).address, "pending"))


def _tamper(svc: OracleService, rid: int, *, output: list[int] | None = None, flip_proof_byte: bool = False) -> None:
    """Changes the stored proof of a ``verified`` request the way a faulty prover or a
    corrupted store could: another output, or damaged proof bytes."""
    with svc.db.session() as s:
        req = s.query(Request).filter_by(request_id=rid).one()
        assert req.state == State.VERIFIED.value and req.proof is not None
        if output is not None:
            req.proof.output = [str(v) for v in output]
        if flip_proof_byte:
            raw = bytearray.fromhex(req.proof.calldata[2:])
            raw[40] ^= 0x01                     # inside the first point's y coordinate
            req.proof.calldata = "0x" + raw.hex()


def _row(svc: OracleService, rid: int) -> Request:
    with svc.db.session() as s:
        req = s.query(Request).filter_by(request_id=rid).one()
        s.expunge(req)
        return req


def _has_proof(svc: OracleService, rid: int) -> bool:
    with svc.db.session() as s:
        return s.query(Request).filter_by(request_id=rid).one().proof is not None


def _output(svc: OracleService, rid: int) -> list[int]:
    with svc.db.session() as s:
        proof = s.query(Request).filter_by(request_id=rid).one().proof
        assert proof is not None
        return proof.output_ints


def test_refused_proof_is_proven_again_without_sending(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    rid = _request(chain, p, [3, 1, 4, 1, 5, 9, 2, 6])
    try:
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 1
        _tamper(svc, rid, flip_proof_byte=True)
        nonce = _nonce(chain)
        assert rt.relayer.submit_ready() == 0
        assert _nonce(chain) == nonce, "a transaction was sent for a proof the chain refuses"
        with svc.db.session() as s:
            assert s.query(RelayerTx).count() == 0
        req = _row(svc, rid)
        assert req.state == State.CONFIRMED.value, "handed back to the dispatcher, not resent"
        assert req.attempts == 1 and req.lease_owner is None
        assert "InvalidProof" in str(req.reason)
        assert not _has_proof(svc, rid), "the refused proof is dropped"
        # The dispatcher proves it again; that proof is sent and lands.
        assert svc.dispatcher.run_once() == 1
        assert rt.relayer.submit_ready() == 1
        wait_for(lambda: (rt.txs.track(), _state(svc, rid) == State.FULFILLED.value)[1], 30, "fulfilment")
        assert _nonce(chain) == nonce + 1
        assert int(p.oracle.functions.requestStatus(rid).call()) == 2
    finally:
        svc.stop()


def test_refused_proof_fails_after_max_attempts(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    rt.relayer.cfg.max_attempts = 2
    rid = _request(chain, p, [2, 7, 1, 8, 2, 8, 1, 8])
    try:
        rt.listener.poll()
        nonce = _nonce(chain)
        for attempt in (1, 2):
            assert svc.dispatcher.run_once() == 1
            good = _output(svc, rid)
            _tamper(svc, rid, output=[good[0] + 1, *good[1:]])   # in range, but not what was proven
            assert rt.relayer.submit_ready() == 0
            req = _row(svc, rid)
            assert "InvalidProof" in str(req.reason)
            if attempt == 1:
                assert (req.state, req.attempts) == (State.CONFIRMED.value, 1)
        assert req.state == State.FAILED.value and "after 2 attempts" in str(req.reason)
        assert _nonce(chain) == nonce, "no gas spent on either refused proof"
        assert int(p.oracle.functions.requestStatus(rid).call()) == 1   # still pending on-chain
    finally:
        svc.stop()


def test_batch_sends_only_entries_the_chain_accepts(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    good, out_of_range, bad_bytes, other_output = (
        _request(chain, p, [k, 2 * k, 3 * k, 0, 0, 0, 50, 5]) for k in range(1, 5))
    ids = [good, out_of_range, bad_bytes, other_output]
    try:
        rt.listener.poll()
        wait_for(lambda: _count(svc, State.VERIFIED) == 4 or svc.dispatcher.run_once() < 0, 60, "4 verified")
        bits = int(json.loads((risk_circuit / "manifest.json").read_text())["output_bits"])
        o = _output(svc, out_of_range)
        _tamper(svc, out_of_range, output=[1 << (bits - 1), *o[1:]])       # OutputOutOfRange
        _tamper(svc, bad_bytes, flip_proof_byte=True)                       # InvalidProof
        o = _output(svc, other_output)
        _tamper(svc, other_output, output=[*o[:-1], o[-1] - 1])             # InvalidProof
        nonce = _nonce(chain)
        assert rt.relayer.submit_ready() == 1
        assert _nonce(chain) == nonce + 1, "one transaction, for the one good entry"
        good_pk = _row(svc, good).id
        with svc.db.session() as s:
            (tx,) = s.query(RelayerTx).all()
            assert tx.kind == "fulfill" and tx.request_pks == [good_pk]
        reasons = {rid: _row(svc, rid) for rid in ids[1:]}
        assert all(r.state == State.CONFIRMED.value and r.attempts == 1 for r in reasons.values())
        assert "OutputOutOfRange" in str(reasons[out_of_range].reason)
        assert "InvalidProof" in str(reasons[bad_bytes].reason)
        assert "InvalidProof" in str(reasons[other_output].reason)
        # Re-proven, the three go out together and land; no transaction ever reverted.
        wait_for(lambda: _count(svc, State.VERIFIED) == 3 or svc.dispatcher.run_once() < 0, 60, "3 re-proven")
        assert rt.relayer.submit_ready() == 3
        wait_for(lambda: (rt.txs.track(), all(_state(svc, i) == State.FULFILLED.value for i in ids))[1],
                 30, "all fulfilled")
        with svc.db.session() as s:
            txs = s.query(RelayerTx).order_by(RelayerTx.id).all()
            assert [(t.kind, t.status) for t in txs] == [("fulfill", "confirmed"), ("fulfillBatch", "confirmed")]
        assert _nonce(chain) == nonce + 2
    finally:
        svc.stop()


def test_simulation_settles_fulfilled_and_expired_entries(
    chain: Chain, deployment: Deployment, risk_circuit: Path, groth16_backend: Groth16Backend, tmp_path: Path
) -> None:
    """Between the pre-check and the send, a competitor fulfils one request and another one
    expires: the simulation sees it and settles both without a transaction for them."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    x_taken = [5, 5, 5, 5, 5, 5, 5, 5]
    taken = _request(chain, p, x_taken)
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    soon = int(chain.w3.eth.get_block("latest")["timestamp"]) + 60
    chain.transact(p.oracle.functions.requestInference(p.model_id, [6] * 8, NO_CALLBACK, 0, soon), value=fee)
    expiring = last_request_id(p)
    kept = _request(chain, p, [7] * 8)
    try:
        rt.listener.poll()
        wait_for(lambda: _count(svc, State.VERIFIED) == 3 or svc.dispatcher.run_once() < 0, 60, "3 verified")
        pks = [_row(svc, rid).id for rid in (taken, expiring, kept)]
        with svc.db.session() as s:   # lease them as submit_ready does
            assert len(repo.claim(s, [State.VERIFIED], rt.relayer.cfg.owner, chain_id=rt.chain_id)) == 3
        rival = chain.account.address  # type: ignore[union-attr]
        proof = groth16_backend.prove(risk_circuit, x_taken, rival)
        chain.transact(p.oracle.functions.fulfill(taken, proof.output_fixed, rival, HexBytes(proof.calldata)),
                       gas=1_500_000)
        _rpc(chain, "evm_increaseTime", 120)
        _rpc(chain, "evm_mine")
        nonce = _nonce(chain)
        assert rt.relayer._send(pks) == 1            # what submit_ready calls after its pre-check
        assert _nonce(chain) == nonce + 1
        assert _state(svc, taken) == State.FULFILLED.value
        assert _state(svc, expiring) == State.EXPIRED.value and "RequestExpired" in str(_row(svc, expiring).reason)
        with svc.db.session() as s:
            (tx,) = s.query(RelayerTx).all()
            assert tx.kind == "fulfill" and tx.request_pks == [pks[2]]
        wait_for(lambda: (rt.txs.track(), _state(svc, kept) == State.FULFILLED.value)[1], 30, "fulfilment")
    finally:
        svc.stop()


def test_gas_shortfall_sends_nothing_and_keeps_the_proof(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    """A budget too small for the fulfilment (the whole batch, then each entry, fails for gas)
    is not the proof's fault: no transaction, no re-proving, an attempt counted."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    ids = [_request(chain, p, [k] * 8) for k in (11, 12)]
    starved = Relayer(svc.db, rt.txs, p.oracle.abi, lambda _model: 1_000,
                      RelayerConfig(chain_id=rt.chain_id, oracle=deployment.oracle, owner=rt.relayer.cfg.owner))
    try:
        rt.listener.poll()
        wait_for(lambda: _count(svc, State.VERIFIED) == 2 or svc.dispatcher.run_once() < 0, 60, "2 verified")
        proofs = [_output(svc, rid) for rid in ids]
        nonce = _nonce(chain)
        assert starved.submit_ready() == 0
        assert _nonce(chain) == nonce
        for rid, out in zip(ids, proofs, strict=True):
            req = _row(svc, rid)
            assert (req.state, req.attempts) == (State.VERIFIED.value, 1)
            assert _output(svc, rid) == out, "the proof is kept: gas is not the proof's fault"
        assert "Gas" in str(_row(svc, ids[0]).reason)
    finally:
        svc.stop()


def test_revert_reasons_map_to_what_the_relayer_does(chain: Chain) -> None:
    """Decoded with the real artifacts: the verifier's own errors (not declared by the oracle)
    are refused proofs; gas and model state are not the proof's fault."""
    errors = ErrorDecoder(chain.artifacts)
    declared = frozenset(i["name"] for i in chain.artifacts["InferenceOracle"].abi if i.get("type") == "error")

    def revert(signature: str, types: list[str], values: list[object]) -> Rejection:
        data = function_signature_to_4byte_selector(signature) + abi_encode(types, values)
        return classify(errors.decode(data), declared)

    assert revert("PackedOutputOutOfRange(uint256,int256)", ["uint256", "int256"], [0, 4096]) == Rejection.REPROVE
    assert revert("InvalidProof(uint256)", ["uint256"], [7]) == Rejection.REPROVE
    assert revert("OutputOutOfRange(uint256,int256)", ["uint256", "int256"], [1, -5000]) == Rejection.REPROVE
    assert classify(errors.decode(b""), declared) == Rejection.REPROVE              # a bare verifier revert
    assert revert("Error(string)", ["string"], ["pairing failed"]) == Rejection.REPROVE
    assert revert("AlreadyFulfilled(uint256)", ["uint256"], [7]) == Rejection.FULFILLED
    assert revert("RequestExpired(uint256,uint64)", ["uint256", "uint64"], [7, 1]) == Rejection.EXPIRED
    assert revert("AlreadyRefunded(uint256)", ["uint256"], [7]) == Rejection.EXPIRED
    assert revert("UnknownRequest(uint256)", ["uint256"], [7]) == Rejection.ORPHANED
    assert revert("RequestVerifierRetired(uint256)", ["uint256"], [7]) == Rejection.UNFULFILLABLE
    assert revert("InsufficientVerificationGas(uint256,uint256)", ["uint256", "uint256"], [1, 0]) == Rejection.RETRY
    assert revert("InsufficientGasForCallback(uint256,uint32)", ["uint256", "uint32"], [7, 1]) == Rejection.RETRY
    assert revert("UnknownModel(bytes32)", ["bytes32"], [b"\x01" * 32]) == Rejection.RETRY


def _state(svc: OracleService, rid: int) -> str:
    with svc.db.session() as s:
        return s.query(Request).filter_by(request_id=rid).one().state


def _count(svc: OracleService, st: State) -> int:
    with svc.db.session() as s:
        return s.query(Request).filter_by(state=st.value).count()
