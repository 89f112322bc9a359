"""Slices as units of work: what a validator hands each miner, what a miner proves, and a sliced
proof as the oracle's one ``Proof`` (docs/sliced-models.md, "Proving across miners").

* ``work_plan``: the integer forward pass, once, giving every slice's input (slice 0: the
  request's input; slice j: boundary j's values) and the commitments c_1..c_{k-1} those values
  hash to. It is only a work plan: a slice proof is accepted because it verifies against public
  signals the verifier rebuilds, and the assembled set because the commitments chain
  (``sliced.why_not``), never because it agrees with this pass.
* ``prove_slice``: one slice for one input activation (a miner's job): the witness from the
  activation alone, a snarkjs proof on the pool, checked by the pool before it is returned.
* ``expected_signals``: slice j's public signals as the verifier rebuilds them.
* ``as_proof`` / ``from_calldata`` / ``why_not_proof``: a sliced proof as ``proving.base.Proof``
  (``calldata`` is the on-chain ``abi.encode(uint256[] commitments, uint256[8][] proofs)``), so
  the dispatcher, the store and the relayer handle it like any proof; verification always
  decodes the calldata, so what is verified is exactly what goes on-chain.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from oracle.circuits.packing import PackingError, check_range, pack
from oracle.circuits.payee import PayeeError, normalize, payee_int, place_payee
from oracle.proving.base import BackendError, Proof
from oracle.proving.groth16 import sliced
from oracle.proving.groth16.calldata import PROOF_BYTES, decode_proof, encode_proof
from oracle.proving.groth16.lowering import I64
from oracle.proving.groth16.pool import ProverPool
from oracle.proving.groth16.r1cs_writer import wtns_bytes
from oracle.proving.groth16.slices import activations, boundary_commitment, boundary_values

BACKEND = "groth16"


def groth16_pool() -> ProverPool:
    """The shared Groth16 backend's prover daemons (sliced models prove and verify on them)."""
    from oracle.proving.groth16.backend import Groth16Backend
    from oracle.proving.registry import get_backend

    backend = get_backend(BACKEND)
    assert isinstance(backend, Groth16Backend)
    return backend.pool


@dataclass(frozen=True)
class WorkPlan:
    """Every slice's input for one request, and the commitments they hash to."""

    inputs: list[list[int]]            # slice j's input: the request input (j = 0) or boundary j
    commitments: list[int]             # c_1 .. c_{k-1}
    output: list[int]                  # the integer reference output (for logs and the demo)


def work_plan(sm: sliced.SlicedModel, input_fixed: Sequence[int]) -> WorkPlan:
    x = [int(v) for v in input_fixed]
    if len(x) != sm.qm.input_size:
        raise BackendError(f"expected {sm.qm.input_size} inputs, got {len(x)}")
    try:
        check_range(x, sm.qm.input_bits, "input")
    except PackingError as e:
        raise BackendError(str(e)) from e
    ref = activations(sm.qm, x)
    inputs, commitments = [x], []
    for plan in sm.plans[1:]:
        assert plan.b_in is not None
        v = boundary_values(plan.b_in, ref)
        inputs.append(v)
        commitments.append(boundary_commitment(plan.b_in, v))
    return WorkPlan(inputs, commitments, [int(v) for v in ref[-1]])


@dataclass(frozen=True)
class SliceProof:
    """One proven slice: the snarkjs proof, its public signals (snarkjs order) and what the
    slice outputs (boundary j+1's values, or the model's output for the last slice)."""

    index: int
    circuit_id: str
    proof: dict[str, Any]
    public_signals: list[str]
    output: list[int]
    ms: dict[str, float] = field(default_factory=dict)


def slice_circuit_id(sm: sliced.SlicedModel, j: int) -> str:
    return str(sm.manifest.slices[j]["circuit_id"]) if sm.manifest.slices else ""


def _ref_from(sm: sliced.SlicedModel, j: int, values: Sequence[int]) -> list[I64 | None]:
    """The base values slice j reads, rebuilt from its input activation alone."""
    plan = sm.plans[j]
    ref: list[I64 | None] = [None] * (plan.lo + 1)
    if j == 0:
        if len(values) != sm.qm.input_size:
            raise BackendError(f"slice 0 takes the {sm.qm.input_size} input values, got {len(values)}")
        check_range(list(values), sm.qm.input_bits, "input")
        ref[0] = np.asarray(values, dtype=np.int64)
        return ref
    bd = plan.b_in
    assert bd is not None
    if len(values) != bd.n_values:
        raise BackendError(f"slice {j} takes boundary {j}'s {bd.n_values} values, got {len(values)}")
    check_range(list(values), bd.bits, f"boundary {j} value")
    v = np.asarray(values, dtype=np.int64)
    for base, at in bd.offsets().items():
        ref[base] = v[at:at + sm.qm.layers[base - 1].size if base else sm.qm.input_size]
    return ref


def prove_slice(folder: Path, j: int, values: Sequence[int], payee: str | None, pool: ProverPool) -> SliceProof:
    """Proves slice ``j`` of the sliced model in ``folder`` on its input activation ``values``
    (the last slice binds ``payee``). BackendError for a slice that does not exist here or an
    activation of the wrong size or range."""
    t0 = time.monotonic()
    sm = sliced.load(folder)
    if not 0 <= j < sm.k:
        raise BackendError(f"slice {j} does not exist: the model has {sm.k} slices")
    try:
        pv = payee_int(normalize(payee)) if j == sm.k - 1 else 0
        ref = _ref_from(sm, j, [int(v) for v in values])
    except (PayeeError, PackingError) as e:
        raise BackendError(str(e)) from e
    w = sm.plans[j].witness_from(ref, pv)
    ms = {"witness": round((time.monotonic() - t0) * 1e3, 3)}
    fd, name = tempfile.mkstemp(prefix=f"oracle-slice{j}-", suffix=".wtns")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wtns_bytes(w.witness))
        resp = pool.request({"cmd": "prove_wtns", "wtns": name, "zkey": str(sm.zkey(j)), "vk": str(sm.vk(j))})
    finally:
        os.unlink(name)
    if resp.get("valid") is not True:
        raise BackendError(f"slice {j}: the witness does not satisfy the circuit (its proof does not verify)")
    signals = [str(s) for s in resp["publicSignals"]]
    if [int(s) for s in signals] != w.public:
        raise BackendError(f"slice {j}: public signals differ from the witness's")
    ms.update({k: float(v) for k, v in dict(resp.get("ms", {})).items()})
    ms["wall"] = round((time.monotonic() - t0) * 1e3, 3)
    return SliceProof(j, slice_circuit_id(sm, j), resp["proof"], signals, list(w.outputs), ms)


def expected_signals(sm: sliced.SlicedModel, j: int, input_fixed: Sequence[int], commitments: Sequence[int],
                     output_fixed: Sequence[int] | None = None, payee: str | None = None) -> list[int]:
    """Slice j's public signals (snarkjs order: outputs, then inputs) rebuilt by the verifier
    from the request input, the commitments c_1..c_{k-1} and, for the last slice, the claimed
    output and payee."""
    m, k = sm.manifest, sm.k
    pub_in = pack([int(v) for v in input_fixed], m.input_bits, "input") if j == 0 else [int(commitments[j - 1])]
    if j < k - 1:
        pub_out = [int(commitments[j])]
    else:
        assert output_fixed is not None and m.payee is not None
        check_range([int(v) for v in output_fixed], m.output_bits, "output")
        pub_out = place_payee(pack([int(v) for v in output_fixed], m.output_bits, "output"), m.payee,
                              payee_int(payee))
    return [*pub_out, *pub_in]


# -- a sliced proof as the oracle's Proof ---------------------------------------------------------
def as_proof(sm: sliced.SlicedModel, input_fixed: Sequence[int], output_fixed: Sequence[int], payee: str | None,
             commitments: Sequence[int], proofs: Sequence[dict[str, Any]], *, prove_seconds: float = 0.0,
             extra: dict[str, Any] | None = None) -> Proof:
    """The oracle's ``Proof`` of a sliced inference: calldata = ``encode_sliced``; the native
    proof keeps the commitments and the k snarkjs proofs; the public signals are the
    commitments (what the chain sees besides input, output and payee)."""
    native = {"sliced": sm.k, "commitments": [str(c) for c in commitments], "proofs": list(proofs)}
    return Proof(backend=BACKEND, circuit_id=sm.manifest.circuit_id, input_fixed=[int(v) for v in input_fixed],
                 output_fixed=[int(v) for v in output_fixed], public_signals=[str(c) for c in commitments],
                 proof=native, calldata=sliced.encode_sliced(commitments, proofs), prove_seconds=prove_seconds,
                 extra=dict(extra or {}), payee=normalize(payee) if payee else None)


def decode_sliced(calldata: str) -> tuple[list[int], list[dict[str, Any]]]:
    """(c_1..c_{k-1}, k snarkjs proofs) from the on-chain bytes; BackendError when they are not
    exactly ``encode_sliced`` of those (a non-canonical encoding is refused, as on-chain)."""
    try:
        raw = bytes.fromhex(calldata.removeprefix("0x"))
        commitments, words = decode(["uint256[]", "uint256[8][]"], raw)
    except (ValueError, DecodingError) as e:
        raise BackendError(f"not a sliced proof encoding: {e}") from e
    proofs = [decode_proof("0x" + b"".join(int(w).to_bytes(32, "big") for w in p).hex()) for p in words]
    if sliced.encode_sliced([int(c) for c in commitments], proofs) != "0x" + raw.hex():
        raise BackendError("sliced proof bytes are not in the canonical encoding")
    assert all(len(encode_proof(p)) == 2 + 2 * PROOF_BYTES for p in proofs)
    return [int(c) for c in commitments], proofs


def from_calldata(folder: Path, input_fixed: Sequence[int], output_fixed: Sequence[int], calldata: str,
                  payee: str | None) -> Proof:
    """A sliced ``Proof`` rebuilt from what the chain saw (the audit's view)."""
    sm = sliced.load(folder)
    commitments, proofs = decode_sliced(calldata)
    return as_proof(sm, input_fixed, output_fixed, payee, commitments, proofs)


def slice_results(folder: Path, proof: Proof, pool: ProverPool) -> tuple[list[tuple[int, bool, str]], str | None]:
    """Per slice (index, valid, detail) with signals rebuilt from the proof's input, output and
    payee and the commitments decoded from its calldata; plus why the set is not one chained
    computation (None when it is). Used by the audit to report slice by slice."""
    sm = sliced.load(folder)
    try:
        commitments, proofs = decode_sliced(proof.calldata)
    except BackendError as e:
        return [], str(e)
    why = sliced.why_not(folder, proof.input_fixed, proof.output_fixed, proof.payee or "", commitments, proofs, pool)
    out: list[tuple[int, bool, str]] = []
    if len(proofs) != sm.k or len(commitments) != sm.k - 1:
        return out, why
    for j in range(sm.k):
        try:
            sig = expected_signals(sm, j, proof.input_fixed, commitments, proof.output_fixed, proof.payee)
            r = pool.request({"cmd": "verify", "vk": str(sm.vk(j)), "proof": proofs[j],
                              "publicSignals": [str(s) for s in sig]})
            ok = r.get("valid") is True
        except (BackendError, PackingError, PayeeError) as e:
            out.append((j, False, str(e)))
            continue
        a, b = sm.cuts[j], sm.cuts[j + 1]
        src = "the request input" if j == 0 else f"c_{j}"
        dst = "the output and payee" if j == sm.k - 1 else f"c_{j + 1}"
        out.append((j, ok, f"layers {a}..{b}, {src} -> {dst}: {'valid' if ok else 'INVALID'}"))
    return out, why


def why_not_proof(folder: Path, proof: Proof, pool: ProverPool) -> str | None:
    """Why ``proof`` is not a sliced proof of this model for its input, output and payee (None
    when it is). Decodes the calldata: the bytes that go on-chain are the bytes verified."""
    sm = sliced.load(folder)
    if proof.backend != BACKEND or proof.circuit_id.lower() != sm.manifest.circuit_id.lower():
        return f"proof is for {proof.backend} circuit {proof.circuit_id}, not sliced model {sm.manifest.circuit_id}"
    try:
        commitments, proofs = decode_sliced(proof.calldata)
    except BackendError as e:
        return str(e)
    return sliced.why_not(folder, proof.input_fixed, proof.output_fixed, proof.payee or "", commitments, proofs, pool)


def prove_whole(folder: Path, input_fixed: Sequence[int], payee: str | None, pool: ProverPool) -> Proof:
    """Every slice on this machine (``sliced.prove_sliced``), as the oracle's ``Proof``."""
    sm = sliced.load(folder)
    sp = sliced.prove_sliced(folder, input_fixed, payee or "", pool)
    return as_proof(sm, sp.input_fixed, sp.output_fixed, sp.payee, sp.commitments, sp.proofs,
                    prove_seconds=sp.prove_seconds, extra={"slice_ms": sp.slice_ms})
