"""Rebuilding a backend ``Proof`` from what the chain saw: the request's input, the submitted
output and the ``bytes proof`` of the fulfil call. Nothing comes from the oracle's own store."""

from __future__ import annotations

from oracle.circuits.manifest import Manifest
from oracle.circuits.packing import PackingError
from oracle.circuits.payee import PayeeError
from oracle.proving.base import BackendError, Proof


def public_signals(m: Manifest, input_fixed: list[int], output_fixed: list[int], payee: str | None) -> list[str]:
    """Public signals in the circuit's own order, as decimal field elements (p - |v| if v < 0, or
    packed words for a packed layout, with the payee where the circuit binds it), exactly as the
    on-chain adapter rebuilds them."""
    try:
        return m.public_signals(list(input_fixed), list(output_fixed), payee)
    except (PackingError, PayeeError) as e:   # the chain's adapter refuses such a value too
        raise BackendError(f"cannot rebuild the public signals: {e}") from e


def proof_from_chain(
    m: Manifest, input_fixed: list[int], output_fixed: list[int], proof: bytes, payee: str | None = None
) -> Proof:
    """Raises BackendError when the bytes cannot be a proof of this backend."""
    calldata = "0x" + proof.hex()
    if m.backend == "groth16":
        from oracle.proving.groth16.calldata import decode_proof

        native: object = decode_proof(calldata)
    elif m.backend == "ezkl":
        # EzklBackend.verify rebuilds EZKL's proof object from the calldata bytes and the
        # (input, output) instances itself; there is no other native form to recover.
        native = None
    else:
        raise BackendError(f"audit does not support backend {m.backend!r}")
    return Proof(
        backend=m.backend,
        circuit_id=m.circuit_id,
        input_fixed=list(input_fixed),
        output_fixed=list(output_fixed),
        public_signals=public_signals(m, input_fixed, output_fixed, payee if m.binds_payee else None),
        proof=native,
        calldata=calldata,
        payee=payee.lower() if payee and m.binds_payee else None,
    )
