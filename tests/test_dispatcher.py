"""Dispatcher policy with the real store, catalog and Groth16 prover: an RPC outage costs a
request no attempt; inputs the circuit cannot take are rejected with the reason; an output
outside the model's bit widths is refused, even when it verifies modulo the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import requests

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.fixedpoint import BN254_R, to_field
from oracle.dispatch.dispatcher import Dispatcher, DispatcherConfig, OnChainModel
from oracle.dispatch.provers import LocalProver, Prover, ProveResult, verify_offchain
from oracle.proving.base import BackendError
from oracle.proving.base import Proof as BackendProof
from oracle.proving.groth16 import Groth16Backend
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import Proof, Request, State
from tests.service_harness import models_dir_with

PAYEE = "0x" + "5a" * 20
X = [300, -300, 300, 10, 0, 900, 124, 50]


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
                   lambda _cid: 1_000, DispatcherConfig(owner="t", workers=1, retry_delay=0.0, max_attempts=2,
                                                        payees={1: PAYEE}))
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


def _aliased(proof: BackendProof) -> BackendProof:
    """The same proof claiming ``y + r`` for its first output: every public signal is unchanged
    (values enter the field mod r), so only a range check can tell the two claims apart."""
    y = list(proof.output_fixed)
    return replace(proof, output_fixed=[y[0] + BN254_R, *y[1:]])


def _dispatcher(db: Database, circuit_dir: Path, tmp_path: Path, prover: Prover) -> tuple[Dispatcher, Circuit]:
    catalog = CircuitCatalog.scan(models_dir_with(tmp_path, circuit_dir))
    manifest = json.loads((circuit_dir / "manifest.json").read_text())
    circuit = catalog.get(manifest["circuit_id"])
    assert circuit is not None
    model = OnChainModel(circuit_id=manifest["circuit_id"], input_size=8, output_size=3,
                         input_bits=manifest["input_bits"])
    d = Dispatcher(db, catalog, prover, lambda _c, _m: model, lambda _cid: 1_000,
                   DispatcherConfig(owner="t", workers=1, retry_delay=0.0, max_attempts=3, payees={1: PAYEE}))
    return d, circuit


def test_output_aliased_mod_r_is_refused_offchain(
    groth16_backend: Groth16Backend, risk_circuit_unpacked: Path, tmp_path: Path
) -> None:
    """Unpacked Groth16 (one public signal per value): ``y + r`` has the very public signals of
    ``y``, and the snarkjs verifier accepts them; the off-chain check must not."""
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    d, circuit = _dispatcher(db, risk_circuit_unpacked, tmp_path, LocalProver())
    try:
        assert circuit.manifest.packed is None
        honest = groth16_backend.prove(risk_circuit_unpacked, X, PAYEE)
        forged = _aliased(honest)
        assert [to_field(v) for v in forged.output_fixed] == [to_field(v) for v in honest.output_fixed]
        # The attack is real: the proof verifies for the forged claim's public signals.
        vk = groth16_backend.load(risk_circuit_unpacked).vk
        assert groth16_backend.pool.request(
            {"cmd": "verify", "vk": str(vk), "proof": forged.proof, "publicSignals": forged.public_signals}
        )["valid"]
        assert verify_offchain(circuit, honest, X, PAYEE) is None
        assert verify_offchain(circuit, forged, X, PAYEE) is not None   # refused, not raised

        # Through the dispatcher: a stored `proven` proof claiming y + r goes back to be proven
        # again (the dispatcher's own range check names why), and the new proof is the honest one.
        _confirmed(db, 7, X)
        with db.session() as s:
            req = s.query(Request).filter_by(request_id=7).one()
            repo.transition(s, req, State.DISPATCHED)
            repo.save_proof(s, req, Proof(
                circuit_id=forged.circuit_id, backend=forged.backend, output=[str(v) for v in forged.output_fixed],
                calldata=forged.calldata, public_signals=list(forged.public_signals), native=forged.proof,
                prover="local", payee=forged.payee, prove_seconds=0.0, verified=False))
            repo.transition(s, req, State.PROVEN)
        assert d.run_once() == 0
        state, attempts, reason = _state(db, 7)
        assert (state, attempts) == (State.CONFIRMED.value, 1)
        assert "output out of the model's range" in str(reason)
        assert d.run_once() == 1
        with db.session() as s:
            proof = s.query(Request).filter_by(request_id=7).one().proof
            assert proof is not None and proof.output_ints == list(honest.output_fixed)
    finally:
        d.close()
        db.dispose()


class _ClaimsVerified(Prover):
    """A prover that answers y + r and says it verified the answer itself (as the subnet
    validator's prover does for miners' proofs): the dispatcher does not re-verify those."""

    def __init__(self) -> None:
        self.local = LocalProver()
        self.calls = 0

    def prove(self, circuit: Circuit, input_fixed: list[int], *, timeout: float,
              payee: str | None = None) -> ProveResult:
        self.calls += 1
        honest = self.local.prove(circuit, input_fixed, timeout=timeout, payee=payee).proof
        return ProveResult(proof=_aliased(honest) if self.calls == 1 else honest, prover="miner", verified=True)


def test_output_out_of_range_is_refused_even_when_the_prover_verified_it(
    risk_circuit_unpacked: Path, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    prover = _ClaimsVerified()
    d, _ = _dispatcher(db, risk_circuit_unpacked, tmp_path, prover)
    try:
        _confirmed(db, 8, X)
        assert d.run_once() == 0, "y + r must never reach the relayer"
        state, attempts, reason = _state(db, 8)
        assert (state, attempts) == (State.CONFIRMED.value, 1)
        assert "outside the 12-bit signed range" in str(reason)
        assert d.run_once() == 1                       # the second answer is the honest one
        with db.session() as s:
            proof = s.query(Request).filter_by(request_id=8).one().proof
            assert proof is not None and all(abs(v) < 2048 for v in proof.output_ints)
    finally:
        d.close()
        db.dispose()


def test_missing_payee_fails_the_request_without_blaming_its_input(risk_circuit: Path, tmp_path: Path) -> None:
    """A circuit that binds a payee on a chain the dispatcher has no payee for: our
    configuration is wrong, not the request's input; it fails with that reason at once (the
    prover's refusal used to be taken for a bad input, an illegal dispatched -> rejected move)."""
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    d, circuit = _dispatcher(db, risk_circuit, tmp_path, LocalProver())
    d.cfg.payees.clear()
    try:
        assert circuit.manifest.binds_payee
        _confirmed(db, 9, X)
        assert d.run_once() == 0
        state, _, reason = _state(db, 9)
        assert state == State.FAILED.value and reason == "no payee configured for chain 1: its circuit binds one"
    finally:
        d.close()
        db.dispose()


class _RefusesInput(Prover):
    """The prover's own refusal of an input (EZKL refuses inputs outside its calibrated lookup
    tables after the dispatcher's range check has passed them)."""

    def prove(self, circuit: Circuit, input_fixed: list[int], *, timeout: float,
              payee: str | None = None) -> ProveResult:
        raise BackendError("input 3 is outside the calibrated lookup range")


def test_input_refused_by_the_prover_is_rejected_with_its_reason(risk_circuit: Path, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    d, _ = _dispatcher(db, risk_circuit, tmp_path, _RefusesInput())
    try:
        _confirmed(db, 10, X)
        assert d.run_once() == 0
        state, _, reason = _state(db, 10)
        assert state == State.REJECTED.value
        assert "outside the calibrated lookup range" in str(reason)
    finally:
        d.close()
        db.dispose()
