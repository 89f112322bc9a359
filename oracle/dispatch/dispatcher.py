"""Confirmed requests -> validated -> proven -> verified off-chain -> ready for the relayer.

Every transition is committed before the work it enables (``dispatched`` before proving,
``proven`` with the proof before verifying), so a crash anywhere resumes from the last
committed state. Requests are leased, so several workers or oracle instances never prove
the same request at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from sqlalchemy.orm import Session
from web3.exceptions import Web3RPCError

from oracle.circuits import packing
from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.fixedpoint import check_range
from oracle.dispatch.provers import Prover, verify_offchain
from oracle.proving.base import BackendError
from oracle.proving.base import Proof as BackendProof
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import OFFCHAIN, Proof, Request, State

log = logging.getLogger(__name__)

# Infrastructure failures that say nothing about the request itself.
TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError, TimeoutError, OSError, requests.exceptions.RequestException, Web3RPCError,
)


@dataclass(frozen=True)
class OnChainModel:
    """What the dispatcher needs from the registry entry of a model."""

    circuit_id: str
    input_size: int
    output_size: int
    input_bits: int
    verify_gas: int = 0   # the registry's gas budget for one verification (relayer gas limits)


ModelLookup = Callable[[int, str], OnChainModel | None]   # (chain_id, model_id) -> model
ChainTime = Callable[[int], int]                            # chain_id -> latest block timestamp


@dataclass
class DispatcherConfig:
    owner: str = "oracle"               # lease owner id (stable across restarts of one instance)
    workers: int = 2
    batch: int = 16
    max_attempts: int = 3
    retry_delay: float = 2.0
    prove_timeout: float = 120.0
    deadline_margin: int = 5            # don't start work that cannot land before the deadline
    # chain_id -> the fee recipient proofs are made for (the chain's relayer payee). The
    # contract credits the payee the proof names, so a copied fulfilment pays us, not the copier.
    payees: dict[int, str] = field(default_factory=dict)


class Dispatcher:
    """The proving stage: turns ``confirmed`` requests into ``verified`` ones.

    Owns its worker pool and the request transitions ``confirmed -> dispatched -> proven ->
    verified``, with their side exits: back to ``confirmed`` to prove again (attempt counted),
    ``rejected`` (input of the wrong size or range, or refused by the prover), ``failed``
    (attempts exhausted, model not registered, no artifacts for its circuit, no payee configured
    for a circuit that binds one) and ``expired`` (deadline too close to prove). It claims
    requests under a lease (``repo.claim``), so workers and oracle instances never prove the same
    one at once; checks the input against the circuit before any proving; asks its ``Prover``
    (the local pool, or the subnet's miners) for a proof made for the chain's payee
    (``DispatcherConfig.payees``); and range-checks every output against the model's bit widths
    and verifies the proof off-chain against the request's own stored input (unless the prover
    already did) before marking it ``verified``.

    Never signs or sends a transaction (the relayer does) and never reads the chain's logs (the
    listener does); the chain reaches it only through the two callables it is given (a model's
    registry entry, the head's timestamp). It does not pick miners or know where a proof was made:
    that is the ``Prover``'s business.
    """

    def __init__(
        self,
        db: Database,
        catalog: CircuitCatalog,
        prover: Prover,
        models: ModelLookup,
        chain_time: ChainTime,
        cfg: DispatcherConfig | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.prover = prover
        self.models = models
        self.chain_time = chain_time
        self.cfg = cfg or DispatcherConfig()
        self._pool = ThreadPoolExecutor(max_workers=self.cfg.workers, thread_name_prefix="dispatch")
        self._inflight: set[Future[int]] = set()
        self._inflight_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run_once(self, wait: bool = True) -> int:
        """Claims ready requests and processes them on the worker pool.

        ``wait=True`` (tests, single steps): returns how many reached ``verified``.
        ``wait=False`` (the scheduler): keeps at most ``2 x workers`` requests in flight and
        returns at once, so one slow proof never holds back the next claims.
        """
        with self._inflight_lock:
            self._inflight = {f for f in self._inflight if not f.done()}
            room = self.cfg.batch if wait else max(0, 2 * self.cfg.workers - len(self._inflight))
        if room == 0:
            return 0
        with self.db.session() as s:
            reqs = repo.claim(
                s, [State.CONFIRMED, State.DISPATCHED, State.PROVEN], self.cfg.owner, limit=room,
                lease_seconds=self.cfg.prove_timeout * 2,
            )
            ids = [r.id for r in reqs]
        if not ids:
            return 0
        futures = [self._pool.submit(self._process, pk) for pk in ids]
        if wait:
            return sum(f.result() for f in futures)
        with self._inflight_lock:
            self._inflight.update(futures)
        return len(futures)

    # ------------------------------------------------------------------ one request

    def _process(self, pk: int) -> int:
        try:
            return self._process_inner(pk)
        except TRANSIENT as e:
            # The chain's RPC (model lookup, chain time) is unreachable: not the request's
            # fault, so it costs no attempt; the request waits and is claimed again.
            log.warning("dispatch of request row %d waits for the RPC: %s: %s", pk, type(e).__name__, e)
            with self.db.session() as s:
                req = repo.get_request(s, pk)
                if req is not None:
                    repo.release(req)
                    req.next_attempt_at = time.time() + self.cfg.retry_delay
            return 0
        except Exception:
            log.exception("dispatch of request row %d failed unexpectedly", pk)
            with self.db.session() as s:
                req = repo.get_request(s, pk)
                if req is not None:
                    self._retry_or_fail(s, req, "internal error (see logs)")
            return 0

    def _process_inner(self, pk: int) -> int:
        with self.db.session() as s:
            req = repo.get_request(s, pk)
            if req is None or req.lease_owner != self.cfg.owner:
                return 0
            tag = f"{req.chain_id}:{req.request_id}"
            if self.chain_time(req.chain_id) + self.cfg.deadline_margin > req.deadline:
                repo.transition(s, req, State.EXPIRED, "deadline too close or passed: not proven")
                return 0
            circuit, why = self._circuit_for(req)
            if circuit is None:
                repo.transition(s, req, State.REJECTED if why.startswith("input") else State.FAILED, why)
                log.warning("request %s: %s", tag, why)
                return 0
            payee = self._payee(req)
            if circuit.manifest.binds_payee and payee is None:
                # Our configuration, not the request: the prover would refuse for want of a payee
                # and the request would be rejected as if its input were bad.
                why = f"no payee configured for chain {req.chain_id}: its circuit binds one"
                repo.transition(s, req, State.FAILED, why)
                log.error("request %s: %s", tag, why)
                return 0
            if req.state == State.PROVEN.value and req.proof is not None:
                pass  # crashed after proving: go straight to verification
            else:
                repo.transition(s, req, State.DISPATCHED)
            input_fixed = req.input_ints
            state = State(req.state)
            offchain = req.origin == OFFCHAIN
        # Committed: the request is `dispatched` (or `proven`) before the prover runs.

        if state == State.DISPATCHED:
            try:
                result = self.prover.prove(circuit, input_fixed, timeout=self.cfg.prove_timeout, payee=payee)
            except BackendError as e:
                with self.db.session() as s:
                    req = repo.get_request(s, pk)
                    assert req is not None
                    repo.transition(s, req, State.REJECTED, f"input rejected by the prover: {e}")
                return 0
            except Exception as e:
                with self.db.session() as s:
                    req = repo.get_request(s, pk)
                    assert req is not None
                    self._retry_or_fail(s, req, f"proving failed: {e}")
                return 0
            with self.db.session() as s:
                req = repo.get_request(s, pk)
                assert req is not None
                p = result.proof
                repo.save_proof(
                    s, req,
                    Proof(
                        circuit_id=p.circuit_id, backend=p.backend, output=[str(v) for v in p.output_fixed],
                        calldata=p.calldata, public_signals=list(p.public_signals), native=p.proof,
                        prover=result.prover, payee=p.payee or payee,
                        prove_seconds=p.prove_seconds, verified=False,
                    ),
                )
                repo.transition(s, req, State.PROVEN)
            proof, checked = result.proof, result.verified
        else:
            proof, checked = self._stored_proof(pk, circuit), False

        why_not = self._refusal(circuit, proof, input_fixed, payee, checked)
        with self.db.session() as s:
            req = repo.get_request(s, pk)
            assert req is not None
            if why_not is not None:
                log.warning("request %s: proof rejected off-chain: %s", tag, why_not)
                repo.transition(s, req, State.CONFIRMED, f"invalid proof: {why_not}")
                self._retry_or_fail(s, req, f"invalid proof: {why_not}")
                return 0
            assert req.proof is not None
            req.proof.verified = True
            repo.transition(s, req, State.VERIFIED)
            if offchain:
                # Nothing to relay: the verified proof is the answer. In the same transaction,
                # so no relayer ever sees an off-chain request `verified`.
                repo.transition(s, req, State.FULFILLED, "off-chain: verified proof delivered (no relay)")
            repo.release(req)
        log.info("request %s verified (%.0f ms proving)", tag, proof.prove_seconds * 1000)
        return 1

    def _payee(self, req: Request) -> str | None:
        """The fee recipient the request's proof names: the chain's relayer payee; for an
        off-chain request, the payee its submitter asked for (stored as ``requester``)."""
        if req.origin == OFFCHAIN:
            return req.requester
        return self.cfg.payees.get(req.chain_id)

    @staticmethod
    def _refusal(
        circuit: Circuit, proof: BackendProof, input_fixed: list[int], payee: str | None, checked: bool
    ) -> str | None:
        """Why ``proof`` must not go to the relayer, or None.

        The output range is checked here whoever verified the proof (a miner's answer the subnet
        validator already verified included): the chain refuses values outside the model's bit
        widths, and an out-of-range ``y + r`` (r the BN254 scalar field order) maps to the same
        public signal as ``y``, so a verification that only compares field elements accepts it.
        A backend's verify that raises on such values (PackingError, FixedPointError,
        PayeeError: all ValueErrors) refuses the proof instead of crashing the dispatch."""
        try:
            packing.check_range(list(proof.output_fixed), circuit.manifest.output_bits, "output")
        except ValueError as e:
            return f"output out of the model's range: {e}"
        if checked:
            return None
        try:
            return verify_offchain(circuit, proof, input_fixed, payee)
        except ValueError as e:
            return f"refused by the verifier: {e}"

    def _circuit_for(self, req: Request) -> tuple[Circuit | None, str]:
        model = self.models(req.chain_id, req.model_id)
        if model is None:
            return None, f"model {req.model_id} is not registered on chain {req.chain_id}"
        circuit = self.catalog.get(model.circuit_id)
        if circuit is None:
            return None, f"no artifacts for circuit {model.circuit_id} (model {req.model_id})"
        m = circuit.manifest
        values = req.input_ints
        if len(values) != m.input_size:
            return None, f"input has {len(values)} values, the model takes {m.input_size}"
        try:
            check_range(values, m.input_bits, "input")
        except ValueError as e:
            return None, f"input out of the circuit's range: {e}"
        return circuit, ""

    def _stored_proof(self, pk: int, circuit: Circuit) -> BackendProof:
        with self.db.session() as s:
            req = repo.get_request(s, pk)
            assert req is not None and req.proof is not None
            p = req.proof
            return BackendProof(
                backend=p.backend, circuit_id=p.circuit_id, input_fixed=req.input_ints,
                output_fixed=p.output_ints, public_signals=list(p.public_signals), proof=p.native,
                calldata=p.calldata, prove_seconds=p.prove_seconds, payee=p.payee,
            )

    def _retry_or_fail(self, s: Session, req: Request, reason: str) -> None:
        if req.attempts + 1 >= self.cfg.max_attempts:
            if req.state in (State.DISPATCHED.value, State.PROVEN.value, State.CONFIRMED.value):
                repo.transition(s, req, State.FAILED, f"{reason} (after {req.attempts + 1} attempts)")
            return
        if req.state in (State.DISPATCHED.value, State.PROVEN.value):
            repo.transition(s, req, State.CONFIRMED, reason)
        repo.retry_later(req, reason, self.cfg.retry_delay * (2 ** req.attempts))
