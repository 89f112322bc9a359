"""Dispatcher policy with the real store, catalog and Groth16 prover: an RPC outage costs a
request no attempt; inputs the circuit cannot take are rejected with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from oracle.circuits.catalog import CircuitCatalog
from oracle.dispatch.dispatcher import Dispatcher, DispatcherConfig, OnChainModel
from oracle.dispatch.provers import LocalProver
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import Request, State
from tests.service_harness import models_dir_with


def _confirmed(db: Database, rid: int, x: list[int], model_id: str = "0x" + "aa" * 32) -> None:
    with db.session() as s:
        req = repo.record_seen(s, repo.SeenRequest(
            chain_id=1, oracle="0x" + "11" * 20, request_id=rid, model_id=model_id, requester="0x" + "22" * 20,
            input=x, callback="0x" + "00" * 20, callback_gas_limit=0, deadline=10**10, fee=1,
            block_number=1, block_hash="0x01", tx_hash="0x02", log_index=rid))
        assert req is not None
        repo.transition(s, req, State.CONFIRMED)


def _state(db: Database, rid: int) -> tuple[str, int, str | None]:
    with db.session() as s:
        r = s.query(Request).filter_by(request_id=rid).one()
        return r.state, r.attempts, r.reason


def test_rpc_outage_costs_no_attempt_and_bad_input_is_rejected(risk_circuit: Path, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    manifest = json.loads((risk_circuit / "manifest.json").read_text())
    model = OnChainModel(circuit_id=manifest["circuit_id"], input_size=8, output_size=3,
                         input_bits=manifest["input_bits"])
    outage = {"left": 4}

    def lookup(chain_id: int, model_id: str) -> OnChainModel | None:
        if outage["left"] > 0:
            outage["left"] -= 1
            raise requests.exceptions.ConnectionError("connection refused (anvil down)")
        return model if model_id == "0x" + "aa" * 32 else None

    d = Dispatcher(db, CircuitCatalog.scan(models_dir_with(tmp_path, risk_circuit)), LocalProver(), lookup,
                   lambda _cid: 1_000, DispatcherConfig(owner="t", workers=1, retry_delay=0.0, max_attempts=2))
    try:
        _confirmed(db, 1, [100, 200, 300, 0, 0, 0, 400, 24])
        _confirmed(db, 2, [1] * 7)                            # wrong size for this circuit
        _confirmed(db, 3, [1] * 8, model_id="0x" + "bb" * 32)  # not registered
        d.run_once()  # one worker, requests in id order: request 1 meets the outage first
        assert _state(db, 1)[:2] == (State.CONFIRMED.value, 0), "the outage cost no attempt"
        for _ in range(6):
            d.run_once()
        # max_attempts is 2: had the 4 outage hits counted, requests would have FAILED.
        assert outage["left"] == 0
        assert _state(db, 1)[:2] == (State.VERIFIED.value, 0)
        state, _, reason = _state(db, 2)
        assert state == State.REJECTED.value and reason == "input has 7 values, the model takes 8"
        state, _, reason = _state(db, 3)
        assert state == State.FAILED.value and "is not registered" in str(reason)
    finally:
        d.close()
        db.dispose()
