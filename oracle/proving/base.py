"""The one interface every proof system implements.

A backend turns an ONNX model into a circuit folder (artifacts + ``manifest.json``), proves
an inference for a fixed-point input, verifies a proof, and encodes the proof as the ``bytes``
argument of ``InferenceOracle.fulfill``. The oracle contract passes the request's input and the
claimed output to the model's on-chain adapter, which rebuilds the public signals itself; so a
proof only verifies for the exact (input, output) pair it was made for.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oracle.circuits.manifest import Manifest

# The backends' errors live in oracle.errors (the model layer under the backends raises them
# too); re-exported here, where backend callers import them from.
from oracle.errors import BackendError as BackendError
from oracle.errors import UnsupportedOperator as UnsupportedOperator


@dataclass(frozen=True)
class Proof:
    """A proof of one inference, in the backend's own format plus what the chain needs."""

    backend: str
    circuit_id: str                 # 0x-prefixed sha256 of the verification key
    input_fixed: list[int]          # at manifest.input_scale
    output_fixed: list[int]         # at manifest.output_scale
    public_signals: list[str]       # decimal field elements, in the circuit's own order
    proof: Any                      # backend-native JSON-able proof object
    calldata: str                   # 0x-hex: the `bytes proof` argument of fulfill()
    prove_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # 0x-address (lower case) the proof pays: part of its public signals when the circuit binds a
    # payee (manifest ``payee``), so a copied fulfilment cannot be redirected. None otherwise.
    payee: str | None = None


@dataclass(frozen=True)
class CompileOptions:
    calibration: Path | None = None   # .npy/.json array of sample inputs (floats)
    setup_file: Path | None = None    # --ptau (groth16) or --srs (ezkl); None = local dev setup
    cache_dir: Path | None = None     # where expensive shared setup (ptau, SRS) is cached
    name: str | None = None
    # groth16: pack several small values per public signal (oracle.circuits.packing), ~6 k gas
    # saved per signal avoided on-chain. False keeps one public signal per value.
    packed_signals: bool = True
    # groth16, local ceremony only: set up from the local ptau of exactly this power (built once,
    # cached) instead of the smallest cached one that fits; circuits that must share one
    # ceremony (a sliced model) all pass the same power. None: the backend's default.
    ptau_power: int | None = None
    # groth16: refuse up front (before any long work) when the local ceremony this compile
    # needs is not cached and would take longer than this (estimated). None: no limit.
    max_ceremony_seconds: float | None = None


def shape_mismatch(backend: str, m: Manifest, proof: Proof) -> str | None:
    """What every backend checks first: the proof claims this backend, this circuit and the
    manifest's input/output sizes. None when it does."""
    if proof.backend != backend:
        return f"backend {proof.backend!r} is not {backend!r}"
    if proof.circuit_id != m.circuit_id:
        return f"circuit id {proof.circuit_id} is not {m.circuit_id}"
    if len(proof.input_fixed) != m.input_size or len(proof.output_fixed) != m.output_size:
        return "input/output sizes do not match the manifest"
    return None


class ProofBackend(abc.ABC):
    """One proof system. Implementations must be safe to call from several threads."""

    name: str

    @abc.abstractmethod
    def compile(self, onnx_path: Path, out_dir: Path, options: CompileOptions) -> Manifest:
        """Quantize, build the circuit, run the setup, export + compile the Solidity verifier."""

    @abc.abstractmethod
    def prove(self, circuit_dir: Path, input_fixed: list[int], payee: str | None = None) -> Proof:
        """Prove one inference for ``payee`` (the address the oracle will credit; bound into the
        proof when the circuit supports it, else ignored). Raises BackendError on wrong size /
        out-of-range input."""

    @abc.abstractmethod
    def verify(self, circuit_dir: Path, proof: Proof) -> bool:
        """Verify off-chain, checking public signals equal (input_fixed, output_fixed)."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stateless backends
        """Release long-lived resources (prover processes)."""
