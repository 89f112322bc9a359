"""The validator's side of a sliced model (docs/sliced-models.md, "Proving across miners").

One request for a model cut into k slices becomes k units of work proven at once:

1. The integer forward pass runs once (``slice_jobs.work_plan``): every slice's input
   activation and the commitments c_1..c_{k-1} they hash to. It is only a work plan.
2. Slice j goes to the miners hedged exactly as a whole request does (``SubnetProver._hedge``:
   the best ``k`` at once, one more after ``hedge_delay``, a failed or late miner replaced),
   starting at the j-th miner of the ranking, so the slices land on different miners whenever
   there are enough. With more slices in flight than free proving slots, a slice answered
   "busy" waits for a slot until its deadline (asking again at most every 0.5 s; busy answers
   are not scored: the validator itself queued them), instead of giving up after a few tries.
3. Each answer is checked as it arrives: signed by the miner asked, for this request, nonce,
   model and slice; its public signals equal the ones the verifier rebuilds (the request input
   for slice 0, c_j and c_{j+1} of the work plan, the claimed output and the payee for the last
   slice) and the proof verifies under slice j's key. A valid proof of another activation has
   other commitments and is refused as invalid (the miner is slashed like any liar).
4. When all k are in, the set is checked as the chain will check it (``sliced.why_not``: the
   signals rebuilt from input, output, payee and commitments; the commitments chain) and
   encoded (``encode_sliced``): the dispatcher, store and relayer then handle it as any proof.

Scores: every slice answer is scored on its own (``Scoreboard.record`` under the SLICE's circuit
id), so a slice proven is one unit of work: reward 0.5 + 0.4 speed + 0.1 compact with the speed
against the median latency of the same slice, a lie resets the score, as for whole requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from pydantic import ValidationError

from oracle.circuits.catalog import Circuit
from oracle.circuits.packing import PackingError
from oracle.circuits.payee import PayeeError
from oracle.proving.base import BackendError, Proof
from oracle.proving.groth16 import slice_jobs, sliced
from oracle.proving.groth16.pool import SnarkjsError
from oracle.proving.groth16.slice_jobs import groth16_pool
from oracle.subnet import protocol as P
from oracle.subnet.metagraph import MinerInfo
from oracle.subnet.scoring import Outcome
from oracle.subnet.validator import (
    Attempt,
    SubnetError,
    SubnetProver,
)

log = logging.getLogger(__name__)

PROVER_LABEL_MAX = 80           # the store's Proof.prover column


class SlicedDispatch:
    """One request of a sliced model across the subnet's miners (see the module doc)."""

    def __init__(self, prover: SubnetProver, circuit: Circuit, input_fixed: list[int], timeout: float,
                 payee: str | None) -> None:
        self.v = prover
        self.circuit = circuit
        self.x = list(input_fixed)
        self.timeout = timeout
        self.payee = payee
        self.sm: sliced.SlicedModel | None = None
        self.plan: slice_jobs.WorkPlan | None = None
        self.winners: list[str] = []

    async def run(self) -> tuple[Proof, str]:
        t0 = time.monotonic()
        # Bad input is the request's fault (BackendError): raised before any miner is asked.
        self.sm = sm = await asyncio.to_thread(sliced.load, self.circuit.dir)
        self.plan = plan = await asyncio.to_thread(slice_jobs.work_plan, sm, self.x)
        ranked = self.v.ranked()              # one ranking: slice j starts at its j-th miner
        tasks = [asyncio.ensure_future(self._one(j, ranked)) for j in range(sm.k)]
        try:
            attempts = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()                   # one slice found no miner: stop the others' work
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        answers: list[P.SliceResponse] = [a.proof for a in attempts]
        output = list(answers[-1].output_fixed)
        proofs = [a.proof for a in answers]
        why = await asyncio.to_thread(sliced.why_not, self.circuit.dir, self.x, output, self.payee or "",
                                      plan.commitments, proofs, groth16_pool())
        if why is not None:   # each slice verified on arrival: this is the assembled set's own check
            raise SubnetError(f"slice proofs do not chain into one computation: {why}")
        self.winners = [a.miner.hotkey for a in attempts]
        elapsed = time.monotonic() - t0
        proof = slice_jobs.as_proof(
            sm, self.x, output, self.payee, plan.commitments, proofs, prove_seconds=elapsed,
            extra={"slices": [{"miner": a.miner.hotkey, "latency": round(a.latency, 3),
                               "prove_seconds": ans.prove_seconds} for a, ans in zip(attempts, answers, strict=True)]})
        log.info("sliced model %s: %d slices proven by %d miner(s) in %.2f s", self.circuit.circuit_id[:10], sm.k,
                 len(set(self.winners)), elapsed)
        return proof, prover_label(self.winners)

    async def _one(self, j: int, ranked: list[MinerInfo]) -> Attempt:
        assert self.sm is not None
        sid = slice_jobs.slice_circuit_id(self.sm, j)
        label = f"{self.circuit.circuit_id}#slice{j}"
        return await self.v._hedge(label, lambda m, budget: self.v._scored(
            m, sid, lambda: self._ask(m, j, sid, budget), score_busy=False), self.timeout, rotate=j, ranked=ranked,
            patient=True)

    async def _ask(self, m: MinerInfo, j: int, sid: str, timeout: float) -> Attempt:
        """Slice j to miner ``m``: one answer, fully checked. Never raises (but cancellation)."""
        assert self.sm is not None and self.plan is not None
        req = P.SliceRequest(request_id=uuid.uuid4().hex, model_id=self.circuit.circuit_id, slice_index=j,
                             slice_circuit_id=sid, input_fixed=self.plan.inputs[j], timeout=timeout,
                             payee=self.payee if j == self.sm.k - 1 else None)
        ex = await self.v.exchange(m, P.PROVE_SLICE_PATH, P.dumps(req), timeout, what=f"slice {j}: ")
        if isinstance(ex, Attempt):
            return ex
        content, nonce, latency = ex
        try:
            ans = P.SliceResponse.model_validate_json(content)
        except ValidationError as e:
            return Attempt(m, Outcome.INVALID, latency, f"malformed slice answer ({e.error_count()} error(s))")
        if (ans.request_id != req.request_id or ans.request_nonce != nonce or ans.miner_hotkey != m.hotkey
                or ans.model_id.lower() != req.model_id.lower() or ans.slice_index != j
                or ans.slice_circuit_id.lower() != sid.lower()):
            return Attempt(m, Outcome.INVALID, latency, "answer is not for this request and slice")
        why = await asyncio.to_thread(self.check, j, ans)
        if why is not None:
            return Attempt(m, Outcome.INVALID, latency, f"slice {j}: {why}")
        return Attempt(m, Outcome.VERIFIED, latency, "", ans)

    def check(self, j: int, ans: P.SliceResponse) -> str | None:
        """Why slice j's answer is not a proof of slice j from c_j (or the request input) to
        c_{j+1} (or its claimed output, for the payee); None when it is."""
        sm, plan = self.sm, self.plan
        assert sm is not None and plan is not None
        last = j == sm.k - 1
        try:
            expected = slice_jobs.expected_signals(sm, j, self.x, plan.commitments,
                                                   ans.output_fixed if last else None, self.payee)
        except (PackingError, PayeeError, ValueError) as e:
            return f"claimed output refused ({e})"
        if [str(s) for s in expected] != list(ans.public_signals):
            return "public signals differ from the ones rebuilt for this request (proven on another activation?)"
        try:
            r = groth16_pool().request({"cmd": "verify", "vk": str(sm.vk(j)), "proof": ans.proof,
                                        "publicSignals": [str(s) for s in expected]})
        except (SnarkjsError, BackendError) as e:
            return f"malformed proof ({e})"
        return None if r.get("valid") is True else "proof does not verify"


def prover_label(hotkeys: list[str]) -> str:
    """The store's 'prover' of a sliced proof: the slices' miners in slice order (abridged)."""
    label = "slices:" + ",".join(h[:8] for h in hotkeys)
    return label if len(label) <= PROVER_LABEL_MAX else label[: PROVER_LABEL_MAX - 3] + "..."


def slice_answers(proof: Proof) -> list[dict[str, Any]]:
    """Per slice: the miner that proved it, its latency and proving time (from ``Proof.extra``)."""
    got = proof.extra.get("slices", [])
    return list(got) if isinstance(got, list) else []
