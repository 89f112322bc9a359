"""Relayer behaviour on a real anvil: stuck transactions replaced with bumped fees under the
same nonce, no transaction for a request another relayer already fulfilled, batching."""

from __future__ import annotations

import time
from pathlib import Path

from eth_account import Account
from hexbytes import HexBytes

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.proving.groth16 import Groth16Backend
from oracle.service.app import OracleService
from oracle.store.models import RelayerTx, Request, State
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
        rt.relayer.track()                          # stuck -> replacement, same nonce, +25 % fees
        with svc.db.session() as s:
            txs = s.query(RelayerTx).order_by(RelayerTx.id).all()
            assert [t.status for t in txs] == ["replaced", "pending"]
            assert txs[0].nonce == txs[1].nonce
            assert int(txs[1].max_fee) >= int(txs[0].max_fee) * 125 // 100
            assert int(txs[1].priority_fee) >= int(txs[0].priority_fee) * 125 // 100
            new_hash = txs[1].tx_hash
        _rpc(chain, "evm_mine")
        _rpc(chain, "evm_setAutomine", True)
        wait_for(lambda: (rt.relayer.track(), _state(svc, rid) == State.FULFILLED.value)[1], 30, "fulfilment")
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
        # A competitor fulfils first.
        proof = groth16_backend.prove(risk_circuit, x)
        chain.transact(p.oracle.functions.fulfill(rid, proof.output_fixed, HexBytes(proof.calldata)), gas=1_500_000)
        assert rt.relayer.submit_ready() == 0
        assert _state(svc, rid) == State.FULFILLED.value
        with svc.db.session() as s:
            assert s.query(RelayerTx).count() == 0  # no gas spent
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
        wait_for(lambda: (rt.relayer.track(), all(_state(svc, i) == State.FULFILLED.value for i in ids))[1],
                 30, "batch fulfilment")
        with svc.db.session() as s:
            txs = s.query(RelayerTx).all()
            assert len(txs) == 1 and txs[0].kind == "fulfillBatch"
    finally:
        svc.stop()


def _state(svc: OracleService, rid: int) -> str:
    with svc.db.session() as s:
        return s.query(Request).filter_by(request_id=rid).one().state


def _count(svc: OracleService, st: State) -> int:
    with svc.db.session() as s:
        return s.query(Request).filter_by(state=st.value).count()
