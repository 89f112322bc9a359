"""Public instances and proof bytes as EZKL writes them and the Halo2 verifier reads them.

With input and output visibility ``public`` and parameters ``fixed`` (``settings``), the proof's
instances are exactly ``[inputs..., outputs...]`` (one column, flattened row-major), each a
BN254 scalar field element (``v`` or ``r - |v|``), serialized by EZKL as 32-byte little-endian
hex. The ``bytes proof`` of ``fulfill`` is the native proof's bytes, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oracle.circuits.fixedpoint import BN254_R, to_field


def felt_from_hex(h: str) -> int:
    """EZKL's 32-byte little-endian hex (no 0x) -> field element."""
    return int.from_bytes(bytes.fromhex(h.removeprefix("0x")), "little")


def felt_to_hex(f: int) -> str:
    return (f % BN254_R).to_bytes(32, "little").hex()


def expected_instances(input_fixed: Sequence[int], output_fixed: Sequence[int]) -> list[int]:
    """The verifier's ``uint256[] instances``: inputs then outputs as field elements."""
    return [to_field(int(v)) for v in [*input_fixed, *output_fixed]]


def norm_hex(h: str) -> str:
    h = h.lower()
    return h if h.startswith("0x") else "0x" + h


def native_mismatch(native: dict[str, Any], expected: list[int], calldata: str) -> str | None:
    """Why EZKL's native proof object does not belong to ``expected`` instances and ``calldata``,
    or None. Only the fields present are checked (a claim may carry no native object)."""
    try:
        if "instances" in native and [felt_from_hex(h) for h in native["instances"][0]] != expected:
            return "the native proof's instances differ from (input, output)"
        if "proof" in native and "0x" + bytes(native["proof"]).hex() != norm_hex(calldata):
            return "the native proof's bytes differ from the calldata"
    except (TypeError, ValueError, IndexError, KeyError) as e:
        return f"malformed native proof ({e})"
    return None


def snark_for(expected: list[int], proof_bytes: bytes) -> dict[str, Any]:
    """EZKL's proof JSON for exactly these instances and bytes (what the chain checks)."""
    return {"instances": [[felt_to_hex(f) for f in expected]], "proof": list(proof_bytes),
            "protocol": None, "split": None}
