"""Reorgs under the listener (anvil's evm_snapshot / evm_revert). A request whose block left
the chain is never fulfilled from stale data; a request re-included is fulfilled once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.chain.structs import read_request
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.service.app import OracleService
from oracle.store import repo
from oracle.store.models import Request, State, StateChange
from tests.protocol import Protocol, last_request_id, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20
REQUESTER = 2


def _rpc(chain: Chain, method: str, *params: Any) -> Any:
    return chain.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


def _service(chain: Chain, d: Deployment, circuit: Path, tmp: Path) -> OracleService:
    cfg = service_config(chain.w3.provider.endpoint_uri, d.oracle,  # type: ignore[attr-defined]
                         models_dir_with(tmp, circuit), f"sqlite:///{tmp / 'oracle.db'}")
    return OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))


def _signed_request(chain: Chain, p: Protocol, x: list[int]) -> bytes:
    acct = Account.from_key(DEV_KEYS[REQUESTER])
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    tx = p.oracle.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline).build_transaction({
        "from": acct.address, "value": fee, "gas": 400_000, "chainId": chain.chain_id,
        "nonce": chain.w3.eth.get_transaction_count(acct.address),
        "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
    })
    return bytes(acct.sign_transaction(tx).raw_transaction)


def _send_raw(chain: Chain, raw: bytes) -> None:
    h = chain.w3.eth.send_raw_transaction(raw)
    assert chain.w3.eth.wait_for_transaction_receipt(h)["status"] == 1


def _history(svc: OracleService, request_id: int) -> list[str]:
    with svc.db.session() as s:
        req = s.query(Request).filter_by(request_id=request_id).one()
        return [c.to_state for c in s.query(StateChange).filter_by(request_pk=req.id).order_by(StateChange.id)]


def _fulfilled_on_chain(p: Protocol) -> Counter[int]:
    return Counter(int(e["args"]["requestId"]) for e in p.oracle.events.InferenceFulfilled().get_logs(from_block=0))


def test_orphaned_request_is_never_fulfilled_from_stale_data(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    try:
        snap = _rpc(chain, "evm_snapshot")
        stale_x = [100, 200, 300, 0, 0, 0, 400, 24]
        _send_raw(chain, _signed_request(chain, p, stale_x))
        rid = last_request_id(p)
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 1            # proven and verified for the stale input
        # The block with the request leaves the chain; the same id now carries another input.
        assert _rpc(chain, "evm_revert", snap) is True
        _rpc(chain, "anvil_mine", "0x2")
        fresh_x = [700, 50, 150, 300, 0, 120, 24, 0]
        _send_raw(chain, _signed_request(chain, p, fresh_x))
        assert last_request_id(p) == rid

        def settled() -> bool:
            svc.step()
            return int(p.oracle.functions.requestStatus(rid).call()) == 2

        wait_for(settled, 60, "the re-read request to be fulfilled")
        assert read_request(p.oracle, rid).input == fresh_x
        logs = [e for e in p.oracle.events.InferenceFulfilled().get_logs(from_block=0)
                if int(e["args"]["requestId"]) == rid]
        assert len(logs) == 1
        assert [int(v) for v in logs[0]["args"]["output"]] == quantized_forward(qm, fresh_x)
        assert quantized_forward(qm, fresh_x) != quantized_forward(qm, stale_x)
        # The store follows the chain by the next step (anvil may mine the tx just after the
        # receipts job read the head: "mined", not yet 1 confirmation deep).
        wait_for(lambda: (svc.step(), _history(svc, rid)[-1] == State.FULFILLED.value)[1], 30, "store")
        assert State.ORPHANED.value in _history(svc, rid)
    finally:
        svc.stop()


def test_reincluded_request_is_fulfilled_once(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    try:
        snap = _rpc(chain, "evm_snapshot")
        raw = _signed_request(chain, p, [10, 20, 30, 40, 50, 60, 70, 80])
        _send_raw(chain, raw)
        rid = last_request_id(p)

        def fulfilled() -> bool:
            svc.step()
            return int(p.oracle.functions.requestStatus(rid).call()) == 2

        wait_for(fulfilled, 60, "first fulfilment")
        wait_for(lambda: (svc.step(), _history(svc, rid)[-1] == State.FULFILLED.value)[1], 30, "store")
        # Reorg: the request and its fulfilment both leave the chain; the request is re-included.
        assert _rpc(chain, "evm_revert", snap) is True
        _rpc(chain, "anvil_mine", "0x3")
        assert int(p.oracle.functions.requestStatus(rid).call()) == 0
        _send_raw(chain, raw)
        wait_for(fulfilled, 60, "fulfilment of the re-included request")
        for _ in range(10):
            svc.step()
        assert _fulfilled_on_chain(p)[rid] == 1
        hist = _history(svc, rid)
        assert State.ORPHANED.value in hist and hist[-1] == State.FULFILLED.value
        # The relayer's nonces stay gap-free across the reorg.
        relayer = Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]).address
        assert chain.w3.eth.get_transaction_count(relayer, "latest") == \
            chain.w3.eth.get_transaction_count(relayer, "pending")
    finally:
        svc.stop()


def test_reorg_under_a_failed_request_does_not_stop_the_listener(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    """A request this oracle marked failed, whose block then leaves the chain, stays failed
    (failed is final, like rejected and expired) and the listener reads on. Orphaning it used to
    raise InvalidTransition (failed -> orphaned) at every poll, so the chain's listener stalled."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    try:
        snap = _rpc(chain, "evm_snapshot")
        _send_raw(chain, _signed_request(chain, p, [1, 1, 2, 3, 5, 8, 13, 21]))
        rid = last_request_id(p)
        rt.listener.poll()
        with svc.db.session() as s:
            req = repo.find_request(s, rt.chain_id, rt.listener.oracle, rid)
            assert req is not None
            repo.transition(s, req, State.FAILED, "no artifacts for its circuit (test)")
        assert _rpc(chain, "evm_revert", snap) is True
        _rpc(chain, "anvil_mine", "0x3")
        for x in ([2, 3, 5, 7, 11, 13, 17, 19], [4, 6, 8, 9, 10, 12, 14, 15]):
            _send_raw(chain, _signed_request(chain, p, x))
        res = rt.listener.poll()
        assert any(n.startswith("reorg") for n in res.notes), res.notes
        assert last_request_id(p) == rid + 1
        assert _history(svc, rid)[-1] == State.FAILED.value
        assert _history(svc, rid + 1) == [State.SEEN.value, State.CONFIRMED.value]
    finally:
        svc.stop()


def test_request_that_vanished_from_the_chain_does_not_block_the_others(
    chain: Chain, deployment: Deployment, risk_circuit: Path, tmp_path: Path
) -> None:
    """A verified request whose block was reorged away (getRequest reverts UnknownRequest) is
    orphaned by the relayer's pre-check; the requests claimed with it still go out."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    svc = _service(chain, deployment, risk_circuit, tmp_path)
    rt = next(iter(svc.chains.values()))
    try:
        _send_raw(chain, _signed_request(chain, p, [1, 1, 1, 1, 1, 1, 1, 1]))
        keep = last_request_id(p)
        snap = _rpc(chain, "evm_snapshot")
        _send_raw(chain, _signed_request(chain, p, [2, 2, 2, 2, 2, 2, 2, 2]))
        gone = last_request_id(p)
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 2           # both verified off-chain
        assert _rpc(chain, "evm_revert", snap) is True  # `gone` no longer exists on-chain
        assert rt.relayer.submit_ready() == 1           # `keep` is sent; no exception
        hist = _history(svc, gone)
        assert hist[-1] == State.ORPHANED.value
        wait_for(lambda: (svc.step(), int(p.oracle.functions.requestStatus(keep).call()) == 2)[1], 30,
                 "the surviving request fulfilled")
    finally:
        svc.stop()
