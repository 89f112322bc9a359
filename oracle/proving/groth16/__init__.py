"""Groth16 over BN254 with circom + snarkjs (run as child processes, never imported)."""

from oracle.proving.groth16.backend import Groth16Backend
from oracle.proving.groth16.pool import ProverPool

__all__ = ["Groth16Backend", "ProverPool"]
