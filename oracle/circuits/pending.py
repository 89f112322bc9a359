"""A tensor that depends on the model input, as a pending affine map over materialized bases.

``Pending(terms, bias, shape)`` stands for ``y = sum_b terms[b] @ v_b + bias`` (flattened, C
order), where ``v_b`` is base b: the model input (0) or the output of step b. Every matrix is a
``scipy.sparse.csr_array`` (float64), so memory and time follow the number of multiply-adds,
not the square of the activation size: an identity is n entries, a convolution is its MACs, a
transpose or a selection is one entry per output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
# scipy ships no type stubs: a csr_array is Any to mypy. Every matrix named Sparse is a csr_array.
Sparse: TypeAlias = Any


def identity(n: int) -> Sparse:
    return sp.eye_array(n, format="csr", dtype=np.float64)


def empty(rows: int, cols: int) -> Sparse:
    return sp.csr_array((rows, cols), dtype=np.float64)


def selection(src: I64, n_src: int, weights: F64 | None = None) -> Sparse:
    """Row i picks element src[i] (times weights[i]); src[i] = -1 gives a zero row."""
    rows = np.flatnonzero(src >= 0)
    data = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)[rows]
    return sp.csr_array((data, (rows, src[rows])), shape=(len(src), n_src))


def is_identity(m: Sparse) -> bool:
    n = m.shape[0]
    if m.shape[1] != n or m.nnz != n:
        return False
    c = m.tocoo()
    return bool(np.all(c.row == c.col) and np.all(c.data == 1.0))


@dataclass
class Pending:
    terms: dict[int, Sparse]
    bias: F64
    shape: list[int]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @staticmethod
    def of_base(base: int, shape: list[int]) -> Pending:
        n = int(np.prod(shape))
        return Pending({base: identity(n)}, np.zeros(n), list(shape))

    @staticmethod
    def constant(c: F64, shape: list[int]) -> Pending:
        return Pending({}, np.asarray(c, dtype=np.float64).reshape(-1).copy(), list(shape))

    def apply(self, k: Sparse, bias: F64 | None, shape: list[int]) -> Pending:
        """Compose with y = k @ self + bias (k sparse, rows = the new size)."""
        k = sp.csr_array(k)
        b = k @ self.bias
        if bias is not None:
            b = b + bias
        return Pending({base: sp.csr_array(k @ m) for base, m in self.terms.items()}, b, list(shape))

    def scale(self, c: F64 | float, add: F64 | float = 0.0) -> Pending:
        """Elementwise c * self + add (c, add scalars or one value per element)."""
        cv = np.broadcast_to(np.asarray(c, dtype=np.float64), (self.size,))
        d = sp.diags_array(cv, format="csr")
        return Pending({b: sp.csr_array(d @ m) for b, m in self.terms.items()},
                       cv * self.bias + add, list(self.shape))

    def select(self, src: I64, shape: list[int], weights: F64 | None = None) -> Pending:
        """Element i of the result is element src[i] of self (times weights[i]); -1 gives 0."""
        return self.apply(selection(np.asarray(src, dtype=np.int64).reshape(-1), self.size, weights),
                          None, shape)

    def reshape(self, shape: list[int]) -> Pending:
        return Pending(self.terms, self.bias, list(shape))

    def __add__(self, o: Pending) -> Pending:
        assert self.size == o.size, (self.shape, o.shape)
        terms = dict(self.terms)
        for b, m in o.terms.items():
            terms[b] = sp.csr_array(terms[b] + m) if b in terms else m
        return Pending(terms, self.bias + o.bias, list(self.shape))

    def __sub__(self, o: Pending) -> Pending:
        return self + o.scale(-1.0)

    @staticmethod
    def stack(parts: list[Pending]) -> Pending:
        """The parts' elements one after the other (a flat vector)."""
        cols: dict[int, int] = {}
        for p in parts:
            for b, m in p.terms.items():
                cols[b] = m.shape[1]
        terms = {b: sp.csr_array(sp.vstack([p.terms.get(b, empty(p.size, n)) for p in parts], format="csr"))
                 for b, n in cols.items()}
        bias = np.concatenate([p.bias for p in parts]) if parts else np.zeros(0)
        return Pending(terms, bias, [len(bias)])
