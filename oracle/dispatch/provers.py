"""Where proofs come from. The dispatcher only sees the ``Prover`` interface: a local pool
of backend provers here, the subnet's miners in network mode (same interface)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from oracle.circuits.catalog import Circuit
from oracle.proving.base import Proof
from oracle.proving.registry import prove_folder, why_not_valid


@dataclass(frozen=True)
class ProveResult:
    proof: Proof
    prover: str          # "local" or the miner's hotkey
    # True only when the prover itself ran ``verify_offchain`` on this circuit and input (the
    # subnet validator must, to pick the first valid answer): the dispatcher does not repeat it.
    verified: bool = False


class Prover(abc.ABC):
    @abc.abstractmethod
    def prove(self, circuit: Circuit, input_fixed: list[int], *, timeout: float,
              payee: str | None = None) -> ProveResult:
        """Returns a proof for ``payee`` (not yet verified by the caller). Raises BackendError for inputs the
        circuit cannot take, any other exception for transient failures."""

    def close(self) -> None:
        return None


class LocalProver(Prover):
    """Proves on this machine with the circuit's own backend (its prover pool)."""

    def prove(self, circuit: Circuit, input_fixed: list[int], *, timeout: float,
              payee: str | None = None) -> ProveResult:
        return ProveResult(proof=prove_folder(circuit.dir, circuit.manifest, input_fixed, payee), prover="local")


def verify_offchain(circuit: Circuit, proof: Proof, input_fixed: list[int], payee: str | None = None) -> str | None:
    """None when ``proof`` is a valid proof for exactly this request's input (and, when the
    circuit binds one, for ``payee``); else why not."""
    if circuit.manifest.binds_payee and (proof.payee or "").lower() != (payee or "").lower():
        return f"proof pays {proof.payee}, expected {payee}"
    if proof.circuit_id.lower() != circuit.circuit_id.lower():
        return f"proof is for circuit {proof.circuit_id}, expected {circuit.circuit_id}"
    if list(proof.input_fixed) != list(input_fixed):
        return "proof is for another input"
    if len(proof.output_fixed) != circuit.manifest.output_size:
        return f"proof has {len(proof.output_fixed)} outputs, expected {circuit.manifest.output_size}"
    # A sliced proof is k slice proofs chained by their commitments (docs/sliced-models.md),
    # checked from the calldata itself: what is verified is what goes on-chain.
    return why_not_valid(circuit.dir, circuit.manifest, proof)
