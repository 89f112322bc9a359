"""Piecewise-linear Sigmoid and Tanh, as sums of relus a circuit can prove.

``f(x) = v_0 + sum_{i=0..N} c_i * relu(x - t_i)``: N = 16 segments between knots t_0 < ... < t_N,
flat (v_0, v_N) outside [t_0, t_N]. The knots on [-6, 6] are spaced so that every segment
carries the same share of sqrt(|sigmoid''|) (dense where the curve bends), rounded to multiples
of 1/16 (so ``x - t_i`` is exact at any fixed-point scale >= 4); the knot values v_i are the
minimax fit (a small linear program, solved once per process) over the whole real line,
tails included.

Documented bounds (max |f(x) - exact| over all real x; ``tests/test_operators.py`` checks them
on a dense grid out to +-40):

* Sigmoid: 17 relus per element, error <= ``SIGMOID_MAX_ERROR`` = 0.0017
* Tanh(x) = 2 * sigmoid(2x) - 1 (knots halved, values doubled): error <= ``TANH_MAX_ERROR`` = 0.0034

These are the float approximation's errors; the quantized circuit adds its fixed-point
rounding on top (one floor per relu at the step's output scale, weighted by |c_i|).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

SEGMENTS = 16
DOMAIN = 6.0
KNOT_GRID = 16            # knots are multiples of 1/16
SIGMOID_MAX_ERROR = 0.0017
TANH_MAX_ERROR = 0.0034


@dataclass(frozen=True)
class Pwl:
    knots: F64             # t_0 .. t_N
    values: F64            # v_0 .. v_N
    coef: F64              # c_0 .. c_N: f(x) = v_0 + sum c_i relu(x - t_i)

    def __call__(self, x: F64) -> F64:
        return np.asarray(np.interp(x, self.knots, self.values), dtype=np.float64)

    def as_relus(self, x: F64) -> F64:
        """The relu form (what the circuit computes, in floats)."""
        r = np.maximum(np.asarray(x, dtype=np.float64)[..., None] - self.knots, 0.0)
        return np.asarray(self.values[0] + r @ self.coef, dtype=np.float64)


def _sigmoid(x: F64) -> F64:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)


def _knots() -> F64:
    g = np.linspace(-DOMAIN, DOMAIN, 200_001)
    s = _sigmoid(g)
    w = np.sqrt(np.abs(s * (1 - s) * (1 - 2 * s))) + 1e-3
    c = np.concatenate([[0.0], np.cumsum((w[1:] + w[:-1]) / 2 * np.diff(g))])
    t = np.interp(np.linspace(0.0, 1.0, SEGMENTS + 1), c / c[-1], g)
    return np.asarray(np.unique(np.round(t * KNOT_GRID) / KNOT_GRID), dtype=np.float64)


def _minimax(t: F64) -> F64:
    """Knot values minimising max |interp - sigmoid| on a grid covering both flat tails."""
    from scipy.optimize import linprog  # only needed when a model uses Sigmoid/Tanh

    xs = np.concatenate([np.linspace(t[0] - 40, t[0], 400), np.linspace(t[0], t[-1], 6000),
                         np.linspace(t[-1], t[-1] + 40, 400)])
    n = len(t)
    basis = np.stack([np.interp(xs, t, np.eye(n)[i]) for i in range(n)], axis=1)
    f = _sigmoid(xs)
    ones = np.ones((len(xs), 1))
    a = np.block([[basis, -ones], [-basis, -ones]])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    r = linprog(cost, A_ub=a, b_ub=np.concatenate([f, -f]), bounds=[(None, None)] * n + [(0, None)],
                method="highs")
    if not r.success:    # pragma: no cover (a fixed, feasible LP)
        raise RuntimeError(f"piecewise-linear fit failed: {r.message}")
    return np.asarray(r.x[:n], dtype=np.float64)


def _coef(t: F64, v: F64) -> F64:
    slopes = np.diff(v) / np.diff(t)
    return np.asarray(np.concatenate([[slopes[0]], np.diff(slopes), [-slopes[-1]]]), dtype=np.float64)


@functools.cache
def sigmoid() -> Pwl:
    t = _knots()
    v = _minimax(t)
    return Pwl(t, v, _coef(t, v))


@functools.cache
def tanh() -> Pwl:
    s = sigmoid()
    t, v = s.knots / 2, 2 * s.values - 1
    return Pwl(t, v, _coef(t, v))
