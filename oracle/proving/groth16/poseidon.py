"""circomlib's Poseidon over BN254, in Python integers (witnesses) and as R1CS rows (circuits).

The permutation is ``PoseidonEx`` of ``circomlib/circuits/poseidon.circom`` step for step (the
optimised form with the sparse partial-round matrices S and the pre-partial matrix P), with the
constants parsed from ``node_modules/circomlib/circuits/poseidon_constants.circom`` (the file the
circom circuits include, so the two cannot drift). ``hash`` = circomlib's ``Poseidon(n)``:
initial state 0, inputs in state 1..n, output = state 0 after the final mix.

One walk of the permutation (``_permute``) runs over two value domains:

* ``_IntOps``: field integers, the hash itself (and, recorded, every S-box input: the witness);
* ``_CsOps``: linear combinations over wires. Ark and mix stay linear combinations (no rows, as
  circom --O2 substitutes them away); each S-box x^5 is three rows x*x = x2, x2*x2 = x4,
  x4*x = y on fresh wires, and an S-box whose input is a constant is folded (no rows: the
  capacity element's first round, domain separators, zero padding). In the partial rounds the
  state grows by one term per round (up to 17 + 68 terms at t = 17); an S-box input with more
  than ``max_terms`` terms is first materialised as a wire (one linear row), so A and B hold
  one term. Both domains walk the same code, so S-box i of the circuit is S-box i of the hash.

The sponge of the sliced models (docs/sliced-models.md): ``commit(j, n_values, words)``:
h = Poseidon([j, n_values, w_0..w_13]), then h = Poseidon([h, next 15 words]) (zero-padded):
16-input calls (t = 17) throughout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from oracle.circuits.fixedpoint import BN254_R
from oracle.proving.base import BackendError
from oracle.proving.groth16 import tools
from oracle.proving.groth16.r1cs_writer import U64, R1cs, int_limbs

P = BN254_R
N_ROUNDS_F = 8
# circomlib's N_ROUNDS_P, indexed by t - 2 (t = 2..17)
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
RATE = 16                 # inputs per call in the commitment sponge (t = 17)
FIRST_WORDS = RATE - 2    # the first call also absorbs the domain separators j and n_values
NEXT_WORDS = RATE - 1     # later calls absorb the previous h
# Materialise an S-box input with more terms than this: at t = 17, 671 rows and 8.5 k A+B terms
# per call instead of 610 rows and 21 k (setup 11 s instead of 32 s at 2^10; prove time equal
# within noise); circom --O2: 609 rows, 16 k.
MAX_TERMS = 40


class PoseidonError(BackendError):
    """Missing or malformed circomlib constants, or a width circomlib does not define."""


@dataclass(frozen=True)
class Params:
    t: int
    n_rounds_p: int
    c: tuple[int, ...]                   # round constants, t * 8 + n_rounds_p
    s: tuple[int, ...]                   # sparse partial-round matrices, n_rounds_p * (2t - 1)
    m: tuple[tuple[int, ...], ...]       # full-round MDS, m[j][i] (circom's M[j][i])
    p: tuple[tuple[int, ...], ...]       # the matrix before the partial rounds


def constants_file() -> Path:
    return tools.node_modules() / "circomlib" / "circuits" / "poseidon_constants.circom"


@lru_cache(maxsize=1)
def _functions() -> dict[str, dict[int, list[int]]]:
    """{function name: {t: every hex constant of its ``t == N`` branch, in order}}."""
    path = constants_file()
    try:
        text = path.read_text()
    except OSError as e:
        raise PoseidonError(f"{path}: circomlib's Poseidon constants not found ({e}); run npm ci") from e
    out: dict[str, dict[int, list[int]]] = {}
    for fm in re.finditer(r"function\s+(POSEIDON_[CMPS])\s*\(t\)\s*\{(.*?)\n\}", text, re.S):
        branches = re.split(r"t\s*==\s*(\d+)", fm.group(2))
        out[fm.group(1)] = {int(branches[i]): [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", branches[i + 1])]
                            for i in range(1, len(branches) - 1, 2)}
    return out


@cache
def params(t: int) -> Params:
    """The constants of width ``t`` (2..17), parsed once per process."""
    if not 2 <= t <= 17:
        raise PoseidonError(f"circomlib's Poseidon has widths 2..17 (1..16 inputs), not {t}")
    fns = _functions()
    try:
        c, s, m, pm = (fns[f"POSEIDON_{k}"][t] for k in "CSMP")
    except KeyError as e:
        raise PoseidonError(f"{constants_file()}: no {e} constants for t = {t}") from e
    nrp = N_ROUNDS_P[t - 2]
    want = {"C": (len(c), t * N_ROUNDS_F + nrp), "S": (len(s), nrp * (2 * t - 1)),
            "M": (len(m), t * t), "P": (len(pm), t * t)}
    for k, (have, need) in want.items():
        if have != need:
            raise PoseidonError(f"{constants_file()}: POSEIDON_{k}({t}) has {have} constants, expected {need}")
    if any(v >= P for v in (*c, *s, *m, *pm)):
        raise PoseidonError(f"{constants_file()}: a constant of width {t} is not a field element")
    return Params(t, nrp, tuple(c), tuple(s), tuple(tuple(m[j * t:(j + 1) * t]) for j in range(t)),
                  tuple(tuple(pm[j * t:(j + 1) * t]) for j in range(t)))


# -- one walk of PoseidonEx over any value domain ----------------------------------------------
V = TypeVar("V")


class _Ops(Protocol[V]):
    def add_const(self, x: V, c: int) -> V: ...
    def lin(self, coefs: Sequence[int], xs: Sequence[V]) -> V: ...
    def sbox(self, x: V) -> V: ...


def _permute(ops: _Ops[V], prm: Params, state: list[V]) -> V:
    """state[0] of circomlib's PoseidonEx(t - 1, 1) output for the initial ``state``."""
    t, c, half = prm.t, prm.c, N_ROUNDS_F // 2

    def ark(st: list[V], at: int) -> list[V]:
        return [ops.add_const(st[j], c[at + j]) for j in range(t)]

    def mix(st: list[V], mat: tuple[tuple[int, ...], ...]) -> list[V]:
        return [ops.lin([mat[j][i] for j in range(t)], st) for i in range(t)]

    state = ark(state, 0)
    for r in range(half - 1):
        state = mix(ark([ops.sbox(x) for x in state], (r + 1) * t), prm.m)
    state = mix(ark([ops.sbox(x) for x in state], half * t), prm.p)
    for r in range(prm.n_rounds_p):
        s0 = ops.add_const(ops.sbox(state[0]), c[(half + 1) * t + r])
        row = prm.s[(2 * t - 1) * r:(2 * t - 1) * (r + 1)]
        head = ops.lin(row[:t], [s0, *state[1:]])
        state = [head, *(ops.lin([1, row[t + i - 1]], [state[i], s0]) for i in range(1, t))]
    for r in range(half - 1):
        state = mix(ark([ops.sbox(x) for x in state], (half + 1) * t + prm.n_rounds_p + r * t), prm.m)
    state = [ops.sbox(x) for x in state]
    return ops.lin([prm.m[j][0] for j in range(t)], state)


class _IntOps:
    """Field integers; records every S-box input (the witness of the circuit's S-boxes)."""

    def __init__(self) -> None:
        self.sbox_in: list[int] = []

    def add_const(self, x: int, c: int) -> int:
        return (x + c) % P

    def lin(self, coefs: Sequence[int], xs: Sequence[int]) -> int:
        return sum(a * x for a, x in zip(coefs, xs, strict=True)) % P

    def sbox(self, x: int) -> int:
        self.sbox_in.append(x)
        return pow(x, 5, P)


def hash(inputs: Sequence[int]) -> int:
    """circomlib ``Poseidon(len(inputs))`` of field elements ``inputs`` (1..16 of them)."""
    prm = params(len(inputs) + 1)
    return _permute(_IntOps(), prm, [0, *(int(v) % P for v in inputs)])


def _chunks(j: int, n_values: int, words: Sequence[int]) -> list[list[int]]:
    """The sponge's absorbed blocks without the chaining value: [j, n, 14 words], then 15 words."""
    if j < 0 or n_values < 0:
        raise PoseidonError("a commitment's boundary index and value count are non-negative")
    first, rest = list(words[:FIRST_WORDS]), list(words[FIRST_WORDS:])
    out = [[j, n_values, *first, *[0] * (FIRST_WORDS - len(first))]]
    for i in range(0, len(rest), NEXT_WORDS):
        part = rest[i:i + NEXT_WORDS]
        out.append([*part, *[0] * (NEXT_WORDS - len(part))])
    return out


def commit(j: int, n_values: int, words: Sequence[int]) -> int:
    """The boundary commitment c_j over packed ``words`` holding ``n_values`` values."""
    return commit_trace(j, n_values, words)[0]


def commit_trace(j: int, n_values: int, words: Sequence[int]) -> tuple[int, list[int]]:
    """The commitment and every S-box input of its calls, in circuit order (the witness)."""
    ops = _IntOps()
    prm = params(RATE + 1)
    h: int | None = None
    for blk in _chunks(j, n_values, words):
        block = blk if h is None else [h, *blk]
        h = _permute(ops, prm, [0, *(v % P for v in block)])
    assert h is not None
    return h, ops.sbox_in


def calls(n_words: int) -> int:
    """Poseidon calls of a commitment over ``n_words`` words."""
    return 1 + max(0, -(-(n_words - FIRST_WORDS) // NEXT_WORDS))


# -- the R1CS gadget ---------------------------------------------------------------------------
@dataclass
class Lin:
    """A linear combination over wires with field coefficients: sum terms[w] * w + const."""

    terms: dict[int, int] = field(default_factory=dict)
    const: int = 0

    @staticmethod
    def wire(w: int) -> Lin:
        return Lin({w: 1})


@dataclass
class _SboxWires:
    mat: int          # the materialised input wire, or -1 (input used as a linear combination)
    x2: int
    x4: int
    y: int


class _CsOps:
    """Linear combinations; S-boxes become rows on wires allocated from ``alloc``."""

    def __init__(self, gadget: PoseidonCs) -> None:
        self.g = gadget

    def add_const(self, x: Lin, c: int) -> Lin:
        return Lin(x.terms, (x.const + c) % P)

    def lin(self, coefs: Sequence[int], xs: Sequence[Lin]) -> Lin:
        terms: dict[int, int] = {}
        const = 0
        for a, x in zip(coefs, xs, strict=True):
            if a == 0:
                continue
            const += a * x.const
            for w, k in x.terms.items():
                terms[w] = (terms.get(w, 0) + a * k) % P
        return Lin({w: k for w, k in terms.items() if k}, const % P)

    def sbox(self, x: Lin) -> Lin:
        g = self.g
        if not x.terms:                       # a constant: folded, no wires, no rows
            g.tape.append(None)
            return Lin({}, pow(x.const, 5, P))
        mat = -1
        if len(x.terms) > g.max_terms:
            mat = g.alloc(1)
            g.row(None, None, _sub(Lin.wire(mat), x))
            x = Lin.wire(mat)
        x2, x4, y = (g.alloc(1) for _ in range(3))
        g.row(x, x, Lin.wire(x2))
        g.row(Lin.wire(x2), Lin.wire(x2), Lin.wire(x4))
        g.row(Lin.wire(x4), x, Lin.wire(y))
        g.tape.append(_SboxWires(mat, x2, x4, y))
        return Lin.wire(y)


def _sub(a: Lin, b: Lin) -> Lin:
    terms = dict(a.terms)
    for w, k in b.terms.items():
        terms[w] = (terms.get(w, 0) - k) % P
    return Lin({w: k for w, k in terms.items() if k}, (a.const - b.const) % P)


class PoseidonCs:
    """Poseidon rows over an outer circuit's wires.

    ``alloc(n)`` hands out fresh wire indices (the outer plan's allocator). Rows are numbered
    from 0 here; ``r1cs(base_row)`` returns them as COO terms to append after the outer rows.
    ``assign(values)`` fills every wire this gadget allocated, from the S-box inputs that
    ``commit_trace`` recorded (same walk, same order).
    """

    def __init__(self, alloc: Callable[[int], int], max_terms: int = MAX_TERMS) -> None:
        self.alloc = alloc
        self.max_terms = max_terms
        self.tape: list[_SboxWires | None] = []
        self.n_rows = 0
        self._mat: list[int] = []
        self._row: list[int] = []
        self._wire: list[int] = []
        self._coef: list[int] = []

    def row(self, a: Lin | None, b: Lin | None, c: Lin | None) -> None:
        for m, lc in enumerate((a, b, c)):
            if lc is None:
                continue
            for w, k in (*lc.terms.items(), *(((0, lc.const),) if lc.const else ())):
                self._mat.append(m)
                self._row.append(self.n_rows)
                self._wire.append(w)
                self._coef.append(k % P)
        self.n_rows += 1

    def equal(self, a: Lin, b: Lin) -> None:
        """a == b as one linear row (C only, like the lowering's linear rows)."""
        self.row(None, None, _sub(a, b))

    def commit(self, j: int, n_values: int, words: Sequence[Lin]) -> Lin:
        """The sponge of ``commit`` over word linear combinations; returns the commitment."""
        ops = _CsOps(self)
        prm = params(RATE + 1)
        h: Lin | None = None
        for blk in _chunks(j, n_values, [0] * len(words)):
            # _chunks lays out constants; splice the word LCs into the word positions.
            block = [Lin({}, v) for v in blk]
            if h is None:
                take = words[:FIRST_WORDS]
                block[2:2 + len(take)] = take
                words = words[FIRST_WORDS:]
            else:
                take = words[:NEXT_WORDS]
                block[:len(take)] = take
                words = words[NEXT_WORDS:]
                block = [h, *block]
            h = _permute(ops, prm, [Lin(), *block])
        assert h is not None
        return h

    def assign(self, sbox_in: Sequence[int]) -> dict[int, int]:
        """{wire: value} of every wire the gadget allocated, from the recorded S-box inputs."""
        if len(sbox_in) != len(self.tape):
            raise PoseidonError(f"{len(sbox_in)} S-box inputs for a circuit of {len(self.tape)} S-boxes")
        out: dict[int, int] = {}
        for x, sw in zip(sbox_in, self.tape, strict=True):
            if sw is None:
                continue
            x2 = x * x % P
            x4 = x2 * x2 % P
            if sw.mat >= 0:
                out[sw.mat] = x
            out[sw.x2], out[sw.x4], out[sw.y] = x2, x4, x4 * x % P
        return out

    def terms(self, base_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, U64]:
        """(mat, row, wire, coef limbs) of the gadget's rows, numbered from ``base_row``."""
        return (np.array(self._mat, dtype=np.uint8), np.array(self._row, dtype=np.int64) + base_row,
                np.array(self._wire, dtype=np.int64), int_limbs(self._coef))


def append_rows(cs: R1cs, gadget: PoseidonCs, n_wires: int) -> R1cs:
    """``cs`` with the gadget's rows appended (and ``n_wires`` wires in all)."""
    mat, row, wire, coef = gadget.terms(cs.n_constraints)
    return R1cs(n_wires, cs.n_pub_out, cs.n_pub_in, cs.n_prv_in, cs.n_constraints + gadget.n_rows,
                np.concatenate([cs.mat, mat]), np.concatenate([cs.row, row]),
                np.concatenate([cs.wire, wire]), np.concatenate([cs.coef, coef]))


class _Counter:
    """A wire allocator for standalone gadgets (tests, cost figures)."""

    def __init__(self, first: int) -> None:
        self.next = first

    def __call__(self, n: int) -> int:
        w = self.next
        self.next += n
        return w


def standalone(n_inputs: int, max_terms: int = MAX_TERMS) -> tuple[R1cs, PoseidonCs, int]:
    """A circuit computing one ``Poseidon(n_inputs)`` call: wire 1 = the public output, wires
    2..n_inputs+1 = private inputs. Returns (r1cs, gadget, output wire)."""
    counter = _Counter(2 + n_inputs)
    g = PoseidonCs(counter, max_terms)
    prm = params(n_inputs + 1)
    out = _permute(_CsOps(g), prm, [Lin(), *(Lin.wire(2 + i) for i in range(n_inputs))])
    g.equal(Lin.wire(1), out)
    empty = R1cs(counter.next, 1, 0, n_inputs, 0, np.zeros(0, np.uint8), np.zeros(0, np.int64),
                 np.zeros(0, np.int64), np.zeros((0, 4), np.uint64))
    return append_rows(empty, g, counter.next), g, 1


def standalone_witness(g: PoseidonCs, inputs: Sequence[int], n_wires: int) -> list[int]:
    """The full witness of ``standalone(len(inputs))`` for ``inputs``."""
    ops = _IntOps()
    out = _permute(ops, params(len(inputs) + 1), [0, *(v % P for v in inputs)])
    w = [0] * n_wires
    w[0], w[1] = 1, out
    for i, v in enumerate(inputs):
        w[2 + i] = v % P
    for wire, v in g.assign(ops.sbox_in).items():
        w[wire] = v
    return w
