"""Packing many small signed fixed-point values into few BN254 field elements (public signals).

Every public signal of a snarkjs Groth16 verifier costs an ecMul + ecAdd on-chain (~6-7 k gas),
and the model values are small signed integers of a known width, so several share one signal:

* a value v of b signed bits is offset to u = v + 2**(b-1), in [0, 2**b);
* a word holds up to k = floor(253 / b) values, little-endian by index:
  word = sum_i u_i * 2**(b*i); the last word may hold fewer;
* inputs are packed with b = input_bits, outputs with b = output_bits, each list on its own
  (a word never mixes inputs and outputs);
* public signals are ``[output words..., input words...]`` (circom: main's outputs first).

k * b <= 253 < log2(r) keeps every word below the field order, so the map from in-range value
lists to words is injective; the circuit decomposes each word into exactly k * b bits (which
also range-checks each value) and ``PackedGroth16Adapter`` refuses out-of-range values before
packing. Without those range checks a carry from one value into the next would let two value
lists share a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oracle.errors import UserError

WORD_BITS = 253   # < log2(BN254 r) ~ 253.6: every packed word is a canonical field element


class PackingError(UserError, ValueError):
    """A value does not fit the packing's bit width, or a word is not a valid packing."""


def per_word(bits: int) -> int:
    if not 1 <= bits <= WORD_BITS:
        raise PackingError(f"cannot pack {bits}-bit values into {WORD_BITS}-bit words")
    return WORD_BITS // bits


def n_words(n_values: int, bits: int) -> int:
    k = per_word(bits)
    return (n_values + k - 1) // k


def check_range(values: Sequence[int], bits: int, what: str = "value") -> None:
    """PackingError unless every value is an integer in the ``bits``-bit signed range (what the
    chain enforces; off-chain checks must refuse the same values, e.g. ``v + r`` aliases)."""
    half = 1 << (bits - 1)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise PackingError(f"{what} {i} = {v!r} is not an integer")
        if not -half <= v < half:
            raise PackingError(f"{what} {i} = {v} is outside the {bits}-bit signed range [{-half}, {half - 1}]")


def pack(values: Sequence[int], bits: int, what: str = "value") -> list[int]:
    """Words for ``values`` (signed, ``bits`` wide each); PackingError when one is out of range."""
    k = per_word(bits)
    half = 1 << (bits - 1)
    words: list[int] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise PackingError(f"{what} {i} = {v!r} is not an integer")
        if not -half <= v < half:
            raise PackingError(f"{what} {i} = {v} is outside the {bits}-bit signed range [{-half}, {half - 1}]")
        if i % k == 0:
            words.append(0)
        words[-1] |= (v + half) << (bits * (i % k))
    return words


def unpack(words: Sequence[int], bits: int, n_values: int) -> list[int]:
    """Inverse of ``pack``; PackingError unless ``words`` is exactly the packing of n values."""
    k = per_word(bits)
    if len(words) != n_words(n_values, bits):
        raise PackingError(f"{len(words)} words cannot hold exactly {n_values} values of {bits} bits")
    half, mask = 1 << (bits - 1), (1 << bits) - 1
    out: list[int] = []
    for w_i, w in enumerate(words):
        count = min(k, n_values - w_i * k)
        if not 0 <= w < 1 << (bits * count):
            raise PackingError(f"word {w_i} = {w} is not a packing of {count} values of {bits} bits")
        out += [((w >> (bits * j)) & mask) - half for j in range(count)]
    return out


@dataclass(frozen=True)
class Packing:
    """The ``packing`` entry of a manifest whose signal_layout is packed_outputs_then_inputs."""

    input_bits: int
    output_bits: int
    per_word_in: int
    per_word_out: int

    @classmethod
    def for_bits(cls, input_bits: int, output_bits: int) -> Packing:
        return cls(input_bits, output_bits, per_word(input_bits), per_word(output_bits))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Packing:
        p = cls(int(d["input_bits"]), int(d["output_bits"]), int(d["per_word_in"]), int(d["per_word_out"]))
        if p != cls.for_bits(p.input_bits, p.output_bits):
            raise PackingError(f"inconsistent packing {d} (expected per_word = floor({WORD_BITS} / bits))")
        return p

    def to_dict(self) -> dict[str, int]:
        return {"input_bits": self.input_bits, "output_bits": self.output_bits,
                "per_word_in": self.per_word_in, "per_word_out": self.per_word_out}

    def signals(self, input_fixed: Sequence[int], output_fixed: Sequence[int]) -> list[int]:
        """``[output words..., input words...]`` as integers (already canonical field elements)."""
        return [*pack(output_fixed, self.output_bits, "output"), *pack(input_fixed, self.input_bits, "input")]
