"""Which circuit an off-chain request (origin ``offchain``, chain id 0) is proven with.

An off-chain request names a model id as an on-chain one does. It resolves the way a chain
would: the model registered under that id on a configured chain (its circuit id, looked up in
the local catalog), else the circuit whose id it is (``oracle models register`` uses the
circuit id as the model id by default). The gateway (to validate a submission) and the
dispatcher (through the service's model lookup) resolve with this one function, so they can
never disagree about what a request is proven with."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.dispatch.dispatcher import OnChainModel

RegistryLookup = Callable[[str], OnChainModel | None]   # model_id -> its entry on one chain


def circuit_for_model(catalog: CircuitCatalog, model_id: str, registries: Iterable[RegistryLookup] = ()) -> (
        Circuit | None):
    """The circuit ``model_id`` is proven with, or None. A registry that cannot be read is
    skipped; if nothing else resolves the id, its error is raised (the caller retries later
    rather than calling a registered model unknown)."""
    error: Exception | None = None
    for lookup in registries:
        try:
            entry = lookup(model_id)
        except Exception as e:   # one chain's RPC down must not hide a model another one knows
            error = error or e
            continue
        if entry is not None:
            circuit = catalog.get(entry.circuit_id)
            if circuit is not None:
                return circuit
    circuit = catalog.get(model_id)
    if circuit is None and error is not None:
        raise error
    return circuit


def offchain_model(catalog: CircuitCatalog, model_id: str, registries: Iterable[RegistryLookup] = ()) -> (
        OnChainModel | None):
    """The dispatcher's view of an off-chain request's model (``ModelLookup`` for chain id 0):
    the resolved circuit's own manifest stands in for a registry entry."""
    circuit = circuit_for_model(catalog, model_id, registries)
    if circuit is None:
        return None
    m = circuit.manifest
    return OnChainModel(circuit_id=m.circuit_id, input_size=m.input_size, output_size=m.output_size,
                        input_bits=m.input_bits)
