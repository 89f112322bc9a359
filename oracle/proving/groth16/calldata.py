"""Encoding a snarkjs Groth16 proof as the ``bytes proof`` argument the chain expects.

``abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`` is eight 32-byte words (static
arrays are inlined). The snarkjs verifier's ``verifyProof`` takes each G2 coordinate as
(imaginary, real), the reverse of snarkjs' JSON, so the inner pairs of ``pi_b`` are swapped,
exactly as ``snarkjs zkey export soliditycalldata`` does.
"""

from __future__ import annotations

from typing import Any

from oracle.proving.base import BackendError

PROOF_BYTES = 256


def proof_words(proof: dict[str, Any]) -> list[int]:
    try:
        a = [int(proof["pi_a"][0]), int(proof["pi_a"][1])]
        b = [int(proof["pi_b"][0][1]), int(proof["pi_b"][0][0]),
             int(proof["pi_b"][1][1]), int(proof["pi_b"][1][0])]
        c = [int(proof["pi_c"][0]), int(proof["pi_c"][1])]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise BackendError(f"malformed Groth16 proof object ({e})") from e
    return a + b + c


def encode_proof(proof: dict[str, Any]) -> str:
    words = proof_words(proof)
    if any(not 0 <= w < 1 << 256 for w in words):
        raise BackendError("malformed Groth16 proof object (coordinate out of range)")
    return "0x" + b"".join(w.to_bytes(32, "big") for w in words).hex()


def decode_proof(calldata: str) -> dict[str, Any]:
    """Inverse of ``encode_proof`` (projective z coordinates set to 1, as snarkjs writes them)."""
    raw = bytes.fromhex(calldata.removeprefix("0x"))
    if len(raw) != PROOF_BYTES:
        raise BackendError(f"Groth16 proof must be {PROOF_BYTES} bytes, got {len(raw)}")
    w = [str(int.from_bytes(raw[i:i + 32], "big")) for i in range(0, PROOF_BYTES, 32)]
    return {
        "pi_a": [w[0], w[1], "1"],
        "pi_b": [[w[3], w[2]], [w[5], w[4]], ["1", "0"]],
        "pi_c": [w[6], w[7], "1"],
        "protocol": "groth16",
        "curve": "bn128",
    }
