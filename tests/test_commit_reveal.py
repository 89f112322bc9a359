"""Commit-reveal for a model whose verifier cannot bind the payee (EZKL/Halo2), through the
real service on anvil: the relayer commits the fulfilment first, fulfils only once the
commitment is mined, commits once per proof, and the fee reaches the relayer's payee."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_all
from oracle.chain.registration import register_circuit
from oracle.chain.structs import read_model
from oracle.proving.ezkl import EzklBackend
from oracle.service.app import OracleService
from oracle.store.models import RelayerTx, Request, State
from relayer.commit_reveal import COMMIT_GAS, commitment
from tests.ezkl_model import cached_mlp_circuit
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20


def _state(svc: OracleService, rid: int) -> str:
    with svc.db.session() as s:
        return s.query(Request).filter_by(request_id=rid).one().state


def test_unbound_payee_model_is_committed_then_fulfilled(chain: Chain, tmp_path: Path) -> None:
    backend = EzklBackend()
    try:
        circuit = cached_mlp_circuit(backend)
    finally:
        backend.close()
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    d = deploy_all(chain)
    reg = register_circuit(chain, d.registry, circuit, rpc_url=url)
    oracle = chain.contract("InferenceOracle", d.oracle)
    mid = bytes.fromhex(reg.model_id[2:])
    assert read_model(oracle, mid).binds_payee is False       # read by the registry from the Halo2 adapter

    cfg = service_config(url, d.oracle, models_dir_with(tmp_path, circuit), f"sqlite:///{tmp_path / 'o.db'}")
    svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))
    rt = next(iter(svc.chains.values()))
    try:
        fee = int(oracle.functions.quoteFee(mid, 0).call())
        deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
        x = [64, 32, -16, 128, 0, 96, 42, 127]
        chain.transact(oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
        rid = int(oracle.functions.nextRequestId().call()) - 1
        rt.listener.poll()
        assert svc.dispatcher.run_once() == 1
        assert _state(svc, rid) == State.VERIFIED.value

        # First round: only the commitment goes out; no fulfilment yet.
        assert rt.relayer.submit_ready() == 0
        with svc.db.session() as s:
            req = s.query(Request).filter_by(request_id=rid).one()
            assert req.state == State.VERIFIED.value and req.attempts == 0   # waiting is not a failure
            assert req.proof is not None
            c = commitment(rid, req.proof.output_ints, rt.relayer.payee, bytes.fromhex(req.proof.calldata[2:]))
            kinds = [t.kind for t in s.query(RelayerTx).all()]
        assert kinds == ["commit"]
        assert int(oracle.functions.commitments(c).call()) > 0               # mined (automine)

        payee_before = int(oracle.functions.balances(rt.relayer.payee).call())
        # Not before the commitment is a block old (the chain would refuse: FulfillmentNotCommitted).
        assert rt.relayer.submit_ready() == 0
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # the chain moves on
        wait_for(lambda: (rt.relayer.submit_ready(), rt.txs.track(),
                          _state(svc, rid) == State.FULFILLED.value)[2], 60, "fulfilment after the commit")
        with svc.db.session() as s:
            kinds = sorted(t.kind for t in s.query(RelayerTx).all())
            commit_gas = next(t.gas_used for t in s.query(RelayerTx).all() if t.kind == "commit")
        assert kinds == ["commit", "fulfill"]                                # one commit, one reveal
        assert commit_gas is not None and commit_gas < COMMIT_GAS           # the gas limit suffices
        print(f"\ncommitFulfillment: {commit_gas} gas")
        assert int(oracle.functions.requestStatus(rid).call()) == 2
        assert int(oracle.functions.balances(rt.relayer.payee).call()) == payee_before + fee
    finally:
        svc.stop()
