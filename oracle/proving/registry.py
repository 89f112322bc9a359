"""Proof backends by name. Instances are shared (they own prover processes): close them with
``close_backends()`` at shutdown.

``prove_folder`` / ``why_not_valid`` prove and check any circuit folder, whole or sliced (a
sliced model is k Groth16 slice circuits chained by commitments, proven on the Groth16
backend's daemons): the dispatcher and the CLI go through them, so no caller has to know."""

from __future__ import annotations

import atexit
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path

from oracle.circuits.manifest import Manifest
from oracle.proving.base import BackendError, Proof, ProofBackend

# name -> (module, class); imported lazily so a backend whose dependencies are missing (or
# that is not written yet) does not break the others.
BACKENDS: dict[str, tuple[str, str]] = {
    "groth16": ("oracle.proving.groth16.backend", "Groth16Backend"),
    "ezkl": ("oracle.proving.ezkl", "EzklBackend"),
}

_instances: dict[str, ProofBackend] = {}
_lock = threading.Lock()


def get_backend(name: str) -> ProofBackend:
    """The shared backend instance for ``name`` ("groth16" or "ezkl")."""
    if name not in BACKENDS:
        raise BackendError(f"unknown proof backend {name!r} (known: {', '.join(BACKENDS)})")
    with _lock:
        inst = _instances.get(name)
        if inst is None:
            module, cls = BACKENDS[name]
            try:
                mod = importlib.import_module(module)
            except ImportError as e:
                raise BackendError(f"proof backend {name!r} is not available ({e})") from e
            inst = getattr(mod, cls)()
            assert isinstance(inst, ProofBackend)
            _instances[name] = inst
        return inst


def prove_folder(circuit_dir: Path, manifest: Manifest, input_fixed: Sequence[int], payee: str | None) -> Proof:
    """A proof of ``circuit_dir``'s model on ``input_fixed`` for ``payee``, on this machine."""
    if manifest.slices:
        from oracle.proving.groth16.slice_jobs import groth16_pool, prove_whole

        return prove_whole(circuit_dir, list(input_fixed), payee, groth16_pool())
    return get_backend(manifest.backend).prove(circuit_dir, list(input_fixed), payee)


def why_not_valid(circuit_dir: Path, manifest: Manifest, proof: Proof) -> str | None:
    """None when ``proof`` verifies under ``circuit_dir``'s keys for its own input, output and
    payee; else why not (a sliced proof says which slice or link failed)."""
    if manifest.slices:
        from oracle.proving.groth16.slice_jobs import groth16_pool, why_not_proof

        return why_not_proof(circuit_dir, proof, groth16_pool())
    if not get_backend(manifest.backend).verify(circuit_dir, proof):
        return ("proof does not verify for these public signals (input_fixed, output_fixed, payee, "
                "public_signals, proof or calldata altered)")
    return None


def close_backends() -> None:
    """Stop every shared backend's long-lived processes (also run at interpreter exit)."""
    with _lock:
        insts = list(_instances.values())
        _instances.clear()
    for b in insts:
        b.close()


atexit.register(close_backends)
