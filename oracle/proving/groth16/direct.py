"""The "direct" Groth16 generator behind ``Groth16Backend(generator="direct")``.

Compile: ``Plan(qm, packed).constraints()`` -> ``model.r1cs`` (no circom, no .wasm); the setup
that follows is the same snarkjs one as for circom's .r1cs. Prove: the witness comes from the
integer forward pass plus its bit decompositions (``Plan.witness``), is written as a .wtns, and a
prover daemon runs ``snarkjs.groth16.prove`` on it (``prove_wtns``).

snarkjs' prover does not check that a witness satisfies the constraints: a wrong witness gives a
proof that simply does not verify. circom's witness calculator asserts every constraint while it
computes, so the circom path cannot produce such a proof; here the daemon verifies the fresh proof
against the verification key instead (``self_check``, ~15 ms), so a lowering bug surfaces at
prove time as a BackendError, not on-chain as a wasted fulfilment.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.circuits.quantize import QuantizedModel
from oracle.proving.base import BackendError
from oracle.proving.groth16.lowering import Plan
from oracle.proving.groth16.pool import ProverPool
from oracle.proving.groth16.r1cs_writer import R1cs, write_r1cs, wtns_bytes

log = logging.getLogger(__name__)

GENERATORS = ("circom", "direct")
LOWERING_VERSION = 1      # bump when the direct generator's constraints change meaning


@dataclass(frozen=True)
class LoweringStats:
    constraints: int
    wires: int
    terms: int
    macs: int
    lowering_seconds: float
    r1cs_write_seconds: float
    r1cs_bytes: int


def write_circuit(qm: QuantizedModel, packed: bool, r1cs_path: Path,
                  lowered: tuple[Plan, R1cs, float] | None = None) -> LoweringStats:
    """Lower ``qm`` and write its .r1cs; the timings split the two steps. ``lowered`` (plan,
    constraints, seconds) is a lowering already done for the same model (the compile's plan)."""
    t0 = time.monotonic()
    if lowered is None:
        plan = Plan(qm, packed)
        cs = plan.constraints()
    else:
        plan, cs, secs = lowered
        t0 -= secs
    t1 = time.monotonic()
    size = write_r1cs(r1cs_path, cs)
    t2 = time.monotonic()
    log.info("direct lowering: %d multiply-adds -> %d constraints, %d wires, %d terms "
             "(lowering %.2f s, write %.2f s)", plan.macs, cs.n_constraints, cs.n_wires,
             cs.n_terms, t1 - t0, t2 - t1)
    return LoweringStats(cs.n_constraints, cs.n_wires, cs.n_terms, plan.macs,
                         round(t1 - t0, 3), round(t2 - t1, 3), size)


def prove(pool: ProverPool, plan: Plan, zkey: Path, vk: Path, x: list[int], payee: int,
          self_check: bool = True) -> dict[str, Any]:
    """Witness in Python, proof in a daemon; the daemon's answer (proof, publicSignals, ms)."""
    t0 = time.monotonic()
    witness, _ = plan.witness(x, payee)
    data = wtns_bytes(witness)
    fd, name = tempfile.mkstemp(prefix="oracle-", suffix=".wtns")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        witness_ms = (time.monotonic() - t0) * 1e3
        req: dict[str, Any] = {"cmd": "prove_wtns", "wtns": name, "zkey": str(zkey)}
        if self_check:
            req["vk"] = str(vk)
        resp = pool.request(req)
    finally:
        os.unlink(name)
    if self_check and resp.get("valid") is not True:
        raise BackendError(
            "the direct witness does not satisfy the circuit (its proof does not verify): the "
            "circuit folder and the lowering disagree; recompile the circuit"
        )
    resp.setdefault("ms", {})["python_witness"] = round(witness_ms, 3)
    return resp
