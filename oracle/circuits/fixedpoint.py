"""Signed fixed-point encoding shared by every backend and the contracts.

A real number x at scale s is the integer round(x * 2**s). On-chain, values travel as int256
and are range-checked against the model's registered bit width b: -(2**(b-1)) <= v < 2**(b-1).
In a circuit over a prime field, a negative v is the field element p - |v|.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from oracle.errors import UserError

BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617


class FixedPointError(UserError, ValueError):
    """A value cannot be represented at the requested scale and bit width."""


def to_fixed(values: Iterable[float], scale: int, bits: int) -> list[int]:
    arr = np.asarray(list(values), dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = [i for i, v in enumerate(arr) if not np.isfinite(v)]
        raise FixedPointError(f"input contains NaN or infinity at positions {bad}")
    fixed = [int(v) for v in np.round(arr * (1 << scale))]
    check_range(fixed, bits)
    return fixed


def from_fixed(values: Iterable[int], scale: int) -> list[float]:
    return [v / float(1 << scale) for v in values]


def check_range(values: Sequence[int], bits: int, what: str = "value") -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for i, v in enumerate(values):
        if not lo <= v <= hi:
            raise FixedPointError(
                f"{what} {i} = {v} is outside the {bits}-bit signed range [{lo}, {hi}]"
            )


def to_field(v: int, modulus: int = BN254_R) -> int:
    return v % modulus


def from_field(f: int, modulus: int = BN254_R) -> int:
    return f - modulus if f > modulus // 2 else f
