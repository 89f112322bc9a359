"""The packed public-signal encoding (oracle.circuits.packing): pure Python, no circuits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from oracle.circuits.fixedpoint import BN254_R
from oracle.circuits.packing import Packing, PackingError, n_words, pack, per_word, unpack


def test_layout_is_offset_little_endian() -> None:
    assert per_word(12) == 21 and per_word(1) == 253 and per_word(253) == 1
    assert pack([-2048, 2047, 0], 12) == [0 | (4095 << 12) | (2048 << 24)]
    assert n_words(8, 12) == 1 and n_words(21, 12) == 1 and n_words(22, 12) == 2
    words = pack(list(range(-11, 11)), 12)     # 22 values: a full word and a word of one
    assert len(words) == 2 and words[1] == 10 + 2048
    p = Packing.for_bits(12, 12)
    assert p.signals([1] * 8, [2, 3, 4]) == [pack([2, 3, 4], 12)[0], pack([1] * 8, 12)[0]]


def test_round_trip_and_words_are_canonical_field_elements() -> None:
    rng = np.random.default_rng(3)
    for bits in (2, 8, 11, 12, 16, 31, 64, 126, 127, 253):
        half = 1 << (bits - 1)
        for n in (1, 3, per_word(bits), per_word(bits) + 1, 2 * per_word(bits) + 5):
            vals = [int(v) for v in rng.integers(-min(half, 1 << 62), min(half, 1 << 62), n)]
            vals[0] = -half
            vals[-1] = half - 1
            words = pack(vals, bits)
            assert len(words) == n_words(n, bits)
            assert all(0 <= w < 1 << 253 < BN254_R for w in words)
            assert unpack(words, bits, n) == vals


def test_injective_on_small_ranges() -> None:
    bits = 3
    seen = {tuple(pack(list(vals), bits)) for vals in itertools.product(range(-4, 4), repeat=3)}
    assert len(seen) == 8 ** 3


@pytest.mark.parametrize("bad", [2048, -2049, 1 << 200])
def test_out_of_range_values_are_refused(bad: int) -> None:
    with pytest.raises(PackingError, match=r"output 1 = -?\d+ is outside the 12-bit signed range"):
        pack([0, bad, 0], 12, "output")


def test_malformed_words_and_settings_are_refused() -> None:
    with pytest.raises(PackingError):
        unpack([1 << 36], 12, 3)                  # a bit above the 3 values of the word
    with pytest.raises(PackingError):
        unpack([0, 0], 12, 3)                     # wrong word count
    with pytest.raises(PackingError):
        pack([0.5], 12)                           # type: ignore[list-item]
    with pytest.raises(PackingError):
        per_word(254)
    with pytest.raises(PackingError):
        Packing.from_dict({"input_bits": 12, "output_bits": 12, "per_word_in": 22, "per_word_out": 21})
