"""Proof backends by name. Instances are shared (they own prover processes): close them with
``close_backends()`` at shutdown."""

from __future__ import annotations

import atexit
import importlib
import threading

from oracle.proving.base import BackendError, ProofBackend

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


def close_backends() -> None:
    """Stop every shared backend's long-lived processes (also run at interpreter exit)."""
    with _lock:
        insts = list(_instances.values())
        _instances.clear()
    for b in insts:
        b.close()


atexit.register(close_backends)
