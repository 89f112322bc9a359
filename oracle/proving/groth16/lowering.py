"""A quantized model lowered straight to R1CS constraints and witnesses, without circom.

Same circuit semantics as ``oracle.proving.groth16.circuit`` (the circom generator): the same
decompositions with the same bit widths for the same neurons, the same public signals, the same
payee binding. What changes is how it is produced: numpy per layer instead of circom's ~1 ms
per multiply-add, no WebAssembly limits (no per-expression term cap, no witness function size).

Wires (the order snarkjs expects)::

    0                      the constant 1
    1 .. n_pub_out         public outputs: output words [+ payeeOut] (packed), or
                           out[0..n_out) + payeeOut (one value per signal)
    .. + n_pub_in          public inputs: input words (packed) or in[0..n_in)
    .. + 1                 private input: payee
    then internal wires    per step, in order: bits, relu outputs, min outputs, materialised values

Constraints (A*B = C):

* a boolean bit b:                 (b - 1) * b = 0
* a bit decomposition of an LC v:  0 * 0 = v + offset - sum_i b_i 2^i   (linear: A = B = {})
* FloorRelu's out = pos * q:       pos * q = out
* MinConst's out = min(v, h):      s * (h - v) = h - out

A neuron's accumulator is never a wire: it is the linear combination of earlier wires with the
step's integer weights, written into the constraint that uses it. Every decomposition keeps its
recomposition as an explicit linear row. circom --O2 instead eliminates each linear row by
substituting one variable away, which saves the row but copies the accumulator into the A and B
of a boolean constraint; here it stays in C, which snarkjs' prover never reads (it computes C
as A*B per row), and which ``groth16 setup`` charges one G1 term per coefficient instead of
A's two G1 and B's two G1 + one G2 terms. The cost is one row and one wire per decomposition.

Values that a later step reads are single wires or constants, so accumulators stay one term per
multiply-add: a step output that would be a linear combination (a FloorDiv quotient, a
pass-through accumulator, an unpacked input) is materialised as a wire with one linear row.

Every neuron follows ``circuit._Gen.neuron``: kinds per neuron (CONST, PASS, FLOOR, RELU, then
optionally MIN) from the same worst-case bounds, so the two generators agree on which bits exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from oracle.circuits.packing import pack, per_word
from oracle.circuits.payee import PAYEE_BITS, place_payee
from oracle.circuits.quantize import QLayer, QuantizedModel, signed_bits
from oracle.proving.base import BackendError
from oracle.proving.groth16.circuit import payee_slot
from oracle.proving.groth16.r1cs_writer import U64, R1cs, field_limbs, int_limbs

log = logging.getLogger(__name__)

I64 = NDArray[np.int64]

CONST, PASS, FLOOR, RELU = 0, 1, 2, 3
MAX_BITS = 63        # decomposed values must fit int64 (the quantizer keeps accumulators < 2^62)


def _i64(values: list[int], what: str) -> I64:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError as e:
        raise BackendError(f"{what}: constant beyond int64, lower the scales") from e


def _add(a: I64 | int, b: I64 | int) -> I64:
    """a + b in int64, refusing to wrap: a wrapped constant would silently make the circuit
    compute another function than the model (the quantizer keeps real values far below this)."""
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    with np.errstate(over="ignore"):
        r = x + y
    if np.any(((x ^ r) & (y ^ r)) < 0):
        raise BackendError("a circuit constant overflows int64: lower the scales (max_scale / weight_bits)")
    return r


def _ragged(n: I64) -> tuple[I64, I64]:
    """For groups of sizes n: per element its group index and its position inside the group."""
    own = np.repeat(np.arange(len(n), dtype=np.int64), n)
    starts = np.cumsum(n) - n
    return own, np.arange(int(n.sum()), dtype=np.int64) - starts[own]


# -- linear combinations, one per row, vectorised ------------------------------------------------
@dataclass
class LCs:
    """``n`` linear combinations: terms (row, wire, mant * 2**exp) plus a constant per row."""

    n: int
    row: I64
    wire: I64
    mant: I64
    exp: I64
    const: I64

    @staticmethod
    def of(wires: I64, mant: I64 | int = 1, exp: I64 | int = 0, const: I64 | int = 0) -> LCs:
        """One term per row: mant * 2^exp * wires[i] + const."""
        n = len(wires)
        return LCs(n, np.arange(n, dtype=np.int64), np.asarray(wires, dtype=np.int64),
                   np.broadcast_to(np.asarray(mant, dtype=np.int64), (n,)).copy(),
                   np.broadcast_to(np.asarray(exp, dtype=np.int64), (n,)).copy(),
                   np.broadcast_to(np.asarray(const, dtype=np.int64), (n,)).copy())

    @staticmethod
    def constant(c: I64) -> LCs:
        z = np.zeros(0, dtype=np.int64)
        return LCs(len(c), z, z, z, z, np.asarray(c, dtype=np.int64).copy())

    @staticmethod
    def bits(n: int, own: I64, wires: I64, exp: I64, mant: int = 1) -> LCs:
        """Row own[t] gets mant * 2^exp[t] * wires[t] (a ragged bit sum)."""
        return LCs(n, own, wires, np.full(len(own), mant, dtype=np.int64), exp,
                   np.zeros(n, dtype=np.int64))

    def __add__(self, o: LCs) -> LCs:
        assert self.n == o.n
        return LCs(self.n, np.concatenate([self.row, o.row]), np.concatenate([self.wire, o.wire]),
                   np.concatenate([self.mant, o.mant]), np.concatenate([self.exp, o.exp]),
                   _add(self.const, o.const))

    def __neg__(self) -> LCs:
        return LCs(self.n, self.row, self.wire, -self.mant, self.exp, -self.const)

    def __sub__(self, o: LCs) -> LCs:
        return self + (-o)

    def plus_const(self, c: I64 | int) -> LCs:
        return LCs(self.n, self.row, self.wire, self.mant, self.exp, _add(self.const, c))

    def take(self, rows: I64) -> LCs:
        """The LCs of ``rows`` (in that order, no repeats), renumbered 0..len(rows)-1."""
        remap = np.full(self.n, -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows), dtype=np.int64)
        keep = remap[self.row] >= 0
        return LCs(len(rows), remap[self.row[keep]], self.wire[keep], self.mant[keep],
                   self.exp[keep], self.const[rows])

    def embed(self, size: int, rows: I64) -> LCs:
        """These ``len(rows)`` LCs placed at rows ``rows`` of ``size`` rows (others zero)."""
        c = np.zeros(size, dtype=np.int64)
        c[rows] = self.const
        return LCs(size, rows[self.row], self.wire, self.mant, self.exp, c)


class _Builder:
    """Collects COO terms; rows are allocated in emission order."""

    def __init__(self) -> None:
        self.n_rows = 0
        self.parts: list[tuple[int, I64, I64, I64, I64]] = []

    def _put(self, mat: int, base: int, lc: LCs) -> None:
        nz = lc.mant != 0
        self.parts.append((mat, lc.row[nz] + base, lc.wire[nz], lc.mant[nz], lc.exp[nz]))
        c = np.flatnonzero(lc.const != 0)
        self.parts.append((mat, c + base, np.zeros(len(c), dtype=np.int64), lc.const[c],
                           np.zeros(len(c), dtype=np.int64)))

    def constrain(self, a: LCs | None, b: LCs | None, c: LCs | None) -> None:
        n = next(x.n for x in (a, b, c) if x is not None)
        for mat, lc in enumerate((a, b, c)):
            if lc is not None:
                assert lc.n == n
                self._put(mat, self.n_rows, lc)
        self.n_rows += n

    def linear(self, lc: LCs) -> None:
        """lc == 0, as 0 * 0 = lc (C only: snarkjs' prover never evaluates C)."""
        self.constrain(None, None, lc)

    def booleans(self, wires: I64) -> None:
        self.constrain(LCs.of(wires, 1, 0, -1), LCs.of(wires), None)

    def build(self, n_wires: int, n_out: int, n_in: int, n_prv: int) -> R1cs:
        mats = np.concatenate([np.full(len(p[1]), p[0], dtype=np.uint8) for p in self.parts])
        row = np.concatenate([p[1] for p in self.parts])
        wire = np.concatenate([p[2] for p in self.parts])
        coef = field_limbs(np.concatenate([p[3] for p in self.parts]),
                           np.concatenate([p[4] for p in self.parts]))
        return R1cs(n_wires, n_out, n_in, n_prv, self.n_rows, mats, row, wire, coef)


# -- the plan: which neuron gets which decomposition, and every wire index ----------------------
@dataclass
class _Decomp:
    """Ragged bit decompositions of some rows: bits wires, owner row, bit position."""

    n: I64                    # bits per decomposition
    wires: I64
    own: I64
    pos: I64

    @staticmethod
    def alloc(n: I64, plan: Plan) -> _Decomp:
        own, pos = _ragged(n)
        return _Decomp(n, plan.alloc(int(n.sum())), own, pos)


@dataclass
class _Step:
    ly: QLayer
    kind: I64                     # CONST / PASS / FLOOR / RELU (stage 1)
    off: I64                      # stage-1 value offset (the clip's lower bound, or 0) / the constant
    adj: I64                      # added to the accumulator before decomposing (-lower * 2^shift)
    d1: I64                       # neurons with a FloorDiv decomposition (FLOOR or RELU)
    bits1: _Decomp
    relu: I64                     # neurons of kind RELU: out wire (C of pos * q = out + relu_e)
    relu_w: I64
    relu_e: I64
    upper: int | None
    mins: I64                     # neurons with MinConst(m, upper)
    bits2: _Decomp
    min_w: I64
    const2: I64                   # neurons clipped to the constant ``upper`` (vlo >= upper)
    mat: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # materialised
    mat_w: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    vw: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))    # value wire or -1
    vc: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))    # value offset


class Plan:
    """Wire layout of one model's circuit (cheap: O(neurons + bits), no multiply-add arrays).

    ``constraints()`` emits the R1CS; ``witness()`` computes the full assignment for one input.
    Both walk the same plan, so a wire means the same thing in both.
    """

    def __init__(self, qm: QuantizedModel, packed: bool) -> None:
        self.qm = qm
        self.packed = packed
        self.slot = payee_slot(qm, packed)
        n_in, n_out = qm.input_size, qm.output_size
        if packed:
            self.in_k, self.out_k = per_word(qm.input_bits), per_word(qm.output_bits)
            self.in_sizes = [min(self.in_k, n_in - i) for i in range(0, n_in, self.in_k)]
            self.out_sizes = [min(self.out_k, n_out - i) for i in range(0, n_out, self.out_k)]
            self.n_pub_out = len(self.out_sizes) + self.slot["extra"]
            self.n_pub_in = len(self.in_sizes)
        else:
            self.n_pub_out = n_out + 1
            self.n_pub_in = n_in
        self.n_prv_in = 1
        self.n_wires = 1 + self.n_pub_out + self.n_pub_in + self.n_prv_in
        self.out_wires = np.arange(1, 1 + self.n_pub_out, dtype=np.int64)
        self.in_wires = np.arange(1 + self.n_pub_out, 1 + self.n_pub_out + self.n_pub_in, dtype=np.int64)
        self.payee_wire = 1 + self.n_pub_out + self.n_pub_in
        self.payee_out = int(self.out_wires[-1]) if (not packed or self.slot["extra"]) else -1
        self._plan_inputs()
        self.steps: list[_Step] = []
        for li, ly in enumerate(qm.layers):
            self.steps.append(self._plan_step(ly, last=li == len(qm.layers) - 1))
        self._plan_outputs()
        self.macs = sum(int(w.nnz) for ly in qm.layers for w in ly.terms.values())   # canonical csr: no zeros

    def alloc(self, n: int) -> I64:
        w = np.arange(self.n_wires, self.n_wires + n, dtype=np.int64)
        self.n_wires += n
        return w

    # -- inputs: UnpackSigned / SignedBits range checks --------------------------------------
    def _plan_inputs(self) -> None:
        qm, b = self.qm, self.qm.input_bits
        n_in = qm.input_size
        if self.packed:
            # Word w = sum of its bits (k*b of them); value i = its b bits - 2^(b-1), as a wire.
            self.in_bits = _Decomp.alloc(np.array([k * b for k in self.in_sizes], dtype=np.int64), self)
            self.x0 = self.alloc(n_in)
        else:
            self.in_bits = _Decomp.alloc(np.full(n_in, b, dtype=np.int64), self)
            self.x0 = self.in_wires
        self.values: list[tuple[I64, I64]] = [(self.x0, np.zeros(n_in, dtype=np.int64))]

    # -- one step: circuit._Gen.neuron, vectorised over the step's neurons -------------------
    def _plan_step(self, ly: QLayer, last: bool) -> _Step:
        k, size = ly.shift, ly.size
        kind = np.zeros(size, dtype=np.int64)
        off: list[int] = [0] * size
        adj: list[int] = [0] * size
        n1: list[int] = [0] * size
        m2: list[int] = [0] * size
        to_const2 = np.zeros(size, dtype=bool)
        lower = 0 if ly.act == "relu" else ly.lo if ly.act == "clip" else None
        upper = ly.hi if ly.act == "clip" else None
        for j in range(size):
            alo, ahi = ly.acc_lo[j], ly.acc_hi[j]
            if lower is not None:
                a = -lower * (1 << k)
                elo, ehi = alo + a, ahi + a
                if ehi < 0:
                    kind[j], off[j], vlo, vhi = CONST, lower, lower, lower
                elif elo >= 0:
                    kind[j], adj[j], off[j] = (PASS if k == 0 else FLOOR), a, lower
                    n1[j] = 0 if k == 0 else max(signed_bits(elo, ehi), k + 1)
                    vlo, vhi = (elo >> k) + lower, (ehi >> k) + lower
                else:
                    kind[j], adj[j], off[j] = RELU, a, lower
                    n1[j] = max(signed_bits(elo, ehi), k + 1)
                    vlo, vhi = lower, lower + max(ehi >> k, 0)
            else:
                kind[j] = PASS if k == 0 else FLOOR
                n1[j] = 0 if k == 0 else max(signed_bits(alo, ahi), k + 1)
                vlo, vhi = alo >> k, ahi >> k
            if upper is not None and vhi > upper:
                if vlo >= upper:
                    to_const2[j] = True
                else:
                    m2[j] = signed_bits(upper - vhi, upper - vlo)
        if max(n1, default=0) > MAX_BITS or max(m2, default=0) > MAX_BITS:
            raise BackendError(f"step {ly.node!r}: a value needs more than {MAX_BITS} bits")
        n1a, m2a = np.array(n1, dtype=np.int64), np.array(m2, dtype=np.int64)
        d1 = np.flatnonzero((kind == FLOOR) | (kind == RELU))
        bits1 = _Decomp.alloc(n1a[d1], self)
        relu = np.flatnonzero(kind == RELU)
        mins = np.flatnonzero(m2a > 0)
        offa = _i64(off, ly.node)
        relu_e = np.zeros(len(relu), dtype=np.int64)
        # One value per public signal: circom's ``out[j] <== c.out`` makes the relu (or min)
        # output wire of the last step the public output itself; no wire, no row of its own.
        direct = np.zeros(len(relu), dtype=bool)
        if last and not self.packed:
            direct = ~np.isin(relu, mins) & ~to_const2[relu]
        relu_w = np.zeros(len(relu), dtype=np.int64)
        relu_w[~direct] = self.alloc(int((~direct).sum()))
        if direct.any():
            relu_w[direct] = self.out_wires[relu[direct]]
            relu_e[direct] = -offa[relu[direct]]      # pos * q = out - lower
        bits2 = _Decomp.alloc(m2a[mins], self)
        min_w = self.out_wires[mins] if last and not self.packed else self.alloc(len(mins))
        if last and not self.packed:
            self.out_direct = np.union1d(relu[direct], mins).astype(np.int64)
        st = _Step(ly, kind, offa, _i64(adj, ly.node), d1, bits1, relu, relu_w, relu_e,
                   upper, mins, bits2, min_w, np.flatnonzero(to_const2))
        # What a consumer sees: wire + offset, or a constant (wire -1).
        vw = np.full(size, -1, dtype=np.int64)
        vc = st.off.copy()
        vw[relu] = relu_w
        is_lc = (kind == PASS) | (kind == FLOOR)
        vw[mins], vc[mins] = min_w, 0
        is_lc[mins] = False
        if upper is not None:
            vc[st.const2] = upper
            is_lc[st.const2] = False
        st.vw, st.vc = vw, vc
        if not last:
            # A later step reads this one: linear combinations become wires (one row each).
            st.mat = np.flatnonzero(is_lc)
            st.mat_w = self.alloc(len(st.mat))
            vw[st.mat], vc[st.mat] = st.mat_w, 0
            self.values.append((vw, vc))
        else:
            self.y_lc = np.flatnonzero(is_lc)      # output values still linear combinations
        return st

    # -- outputs: PackSigned words (+ payee bits) or one signal per value --------------------
    def _plan_outputs(self) -> None:
        qm = self.qm
        if self.packed:
            self.out_bits = _Decomp.alloc(np.full(qm.output_size, qm.output_bits, dtype=np.int64), self)
        self.payee_bits = _Decomp.alloc(np.array([PAYEE_BITS], dtype=np.int64), self)

    # -- the constraint system -----------------------------------------------------------------
    def constraints(self) -> R1cs:
        bld = _Builder()
        qm = self.qm
        b = qm.input_bits
        n_in = qm.input_size
        ib = self.in_bits
        if self.packed:
            # UnpackSigned: word == sum bits 2^t; x_i == its b bits - 2^(b-1)
            bld.booleans(ib.wires)
            bld.linear(LCs.of(self.in_wires) - LCs.bits(len(self.in_sizes), ib.own, ib.wires, ib.pos))
            t = np.arange(n_in * b, dtype=np.int64)       # bit t of the words is bit t % b of value t // b
            bld.linear(LCs.of(self.x0, const=1 << (b - 1)) - LCs.bits(n_in, t // b, ib.wires, t % b))
        else:
            # SignedBits(input_bits) on every in[i]
            bld.booleans(ib.wires)
            bld.linear(LCs.of(self.in_wires, const=1 << (b - 1)) - LCs.bits(n_in, ib.own, ib.wires, ib.pos))
        for li, st in enumerate(self.steps):
            self._emit_step(bld, st, self.values[: li + 1])
        self._emit_outputs(bld)
        cs = bld.build(self.n_wires, self.n_pub_out, self.n_pub_in, self.n_prv_in)
        log.debug("lowered %d multiply-adds to %d constraints, %d wires, %d terms",
                  self.macs, cs.n_constraints, cs.n_wires, cs.n_terms)
        return cs

    def _acc(self, st: _Step, values: list[tuple[I64, I64]]) -> LCs:
        """Every neuron's accumulator sum_b W_b v_b + bias as an LC over earlier wires."""
        ly = st.ly
        rows, wires, mants = [], [], []
        const = ly.bias.astype(np.int64).copy()
        bound = np.abs(ly.bias).astype(np.float64)
        for base, w in ly.terms.items():
            vw, vc = values[base]
            nz = w.tocoo()                  # the sparse weights' nonzeros, row-major
            j, i, wd = nz.row.astype(np.int64), nz.col.astype(np.int64), nz.data.astype(np.int64)
            live = vw[i] >= 0
            rows.append(j[live])
            wires.append(vw[i[live]])
            mants.append(wd[live])
            const = const + np.asarray(w @ vc, dtype=np.int64)
            bound = bound + abs(w).astype(np.float64) @ np.abs(vc).astype(np.float64)
        if len(bound) and float(bound.max()) >= 2.0**62:
            raise BackendError(f"step {ly.node!r}: accumulator constant beyond 2^62")
        row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return LCs(ly.size, row, np.concatenate(wires) if wires else row,
                   np.concatenate(mants) if mants else row, np.zeros(len(row), dtype=np.int64), const)

    def _stage1(self, st: _Step, acc: LCs, rows: I64) -> LCs:
        """The value after floor/relu/lower bound (before the upper bound) of neurons ``rows``:
        CONST: the constant; PASS: acc + adj + off; FLOOR: q + off; RELU: out + relu_e + off."""
        n = len(rows)
        local = _local(st.ly.size, rows)
        kind = st.kind[rows]
        out = LCs.constant(np.where(kind == CONST, st.off[rows], 0))
        p = np.flatnonzero(kind == PASS)
        if len(p):
            out = out + acc.take(rows[p]).plus_const(st.adj[rows[p]]).plus_const(st.off[rows[p]]).embed(n, p)
        f = np.flatnonzero(kind == FLOOR)
        if len(f):
            c = np.zeros(n, dtype=np.int64)
            c[f] = st.off[rows[f]]
            out = out + self._quotient(st, rows[f], local, n).plus_const(c)
        r = np.flatnonzero(kind == RELU)
        if len(r):
            ri = np.searchsorted(st.relu, rows[r])
            out = out + LCs.of(st.relu_w[ri], 1, 0, _add(st.relu_e[ri], st.off[rows[r]])).embed(n, r)
        return out

    def _quotient(self, st: _Step, neurons: I64, local: I64, n: int) -> LCs:
        """q = sum_{i>=k} b_i 2^(i-k) - 2^(n-1-k) for FloorDiv neurons, in rows local[neuron]."""
        k = st.ly.shift
        di = np.searchsorted(st.d1, neurons)              # index into d1 (sorted)
        sel = np.isin(st.bits1.own, di) & (st.bits1.pos >= k)
        owner = st.d1[st.bits1.own[sel]]
        lc = LCs.bits(n, local[owner], st.bits1.wires[sel], st.bits1.pos[sel] - k)
        c = np.zeros(n, dtype=np.int64)
        c[local[neurons]] = -(np.int64(1) << (st.bits1.n[di] - 1 - k))
        return lc.plus_const(c)

    def _emit_step(self, bld: _Builder, st: _Step, values: list[tuple[I64, I64]]) -> None:
        acc = self._acc(st, values)
        size = st.ly.size
        # FloorDiv(n, k): SignedBits(n) of acc + adj: booleans + recomposition.
        d1, bits1 = st.d1, st.bits1
        if len(d1):
            bld.booleans(bits1.wires)
            lhs = acc.take(d1).plus_const(st.adj[d1]).plus_const(np.int64(1) << (bits1.n - 1))
            bld.linear(lhs - LCs.bits(len(d1), bits1.own, bits1.wires, bits1.pos))
        # FloorRelu: pos * q = out (+ relu_e when the out wire is a public output with an offset)
        if len(st.relu):
            di = np.searchsorted(d1, st.relu)
            top = bits1.wires[np.cumsum(bits1.n)[di] - 1]          # sign bit b_(n-1)
            q = self._quotient(st, st.relu, _local(size, st.relu), len(st.relu))
            bld.constrain(LCs.of(top), q, LCs.of(st.relu_w, const=st.relu_e))
        # MinConst(m, h): SignedBits(m) of h - v; s * (h - v) = h - out
        if len(st.mins):
            assert st.upper is not None
            v = self._stage1(st, acc, st.mins)
            h = np.full(len(st.mins), st.upper, dtype=np.int64)
            d = LCs.constant(h) - v
            b2 = st.bits2
            bld.booleans(b2.wires)
            bld.linear(d.plus_const(np.int64(1) << (b2.n - 1)) - LCs.bits(len(st.mins), b2.own, b2.wires, b2.pos))
            s = b2.wires[np.cumsum(b2.n) - 1]
            bld.constrain(LCs.of(s), d, LCs.of(st.min_w, -1, 0, h))
        if len(st.mat):
            bld.linear(LCs.of(st.mat_w) - self._stage1(st, acc, st.mat))
        self._last_acc = acc

    def _emit_outputs(self, bld: _Builder) -> None:
        qm = self.qm
        st = self.steps[-1]
        acc = self._last_acc
        y = self._final_values(st, acc)
        pb = self.payee_bits
        bld.booleans(pb.wires)
        bld.linear(LCs.of(np.array([self.payee_wire])) - LCs.bits(1, pb.own, pb.wires, pb.pos))
        if self.packed:
            # PackSigned: SignedBits(output_bits) of each value; word = sum of its bits (+ payee)
            ob, b = self.out_bits, qm.output_bits
            bld.booleans(ob.wires)
            bld.linear(y.plus_const(1 << (b - 1)) - LCs.bits(qm.output_size, ob.own, ob.wires, ob.pos))
            n_words = len(self.out_sizes)
            t = np.arange(qm.output_size * b, dtype=np.int64)
            word = LCs.bits(n_words, t // (self.out_k * b), ob.wires, t % (self.out_k * b))
            if not self.slot["extra"]:
                w = self.slot["signal"]
                word = word + LCs(n_words, np.array([w]), np.array([self.payee_wire]),
                                  np.array([1]), np.array([self.slot["shift"]]), np.zeros(n_words, np.int64))
            bld.linear(LCs.of(self.out_wires[:n_words]) - word)
        else:
            # out[j] <== value: direct for relu/min outputs (already the public wire), else a row
            rest = np.setdiff1d(np.arange(qm.output_size, dtype=np.int64), self.out_direct)
            if len(rest):
                bld.linear(LCs.of(self.out_wires[rest]) - y.take(rest))
        if self.payee_out >= 0:
            bld.linear(LCs.of(np.array([self.payee_out])) - LCs.of(np.array([self.payee_wire])))

    def _final_values(self, st: _Step, acc: LCs) -> LCs:
        """The last step's values as LCs (after the upper bound)."""
        size = st.ly.size
        replaced = np.union1d(st.mins, st.const2).astype(np.int64)
        keep = np.setdiff1d(np.arange(size, dtype=np.int64), replaced)
        out = self._stage1(st, acc, keep).embed(size, keep)
        if len(st.mins):
            out = out + LCs.of(st.min_w).embed(size, st.mins)
        if len(st.const2):
            assert st.upper is not None
            out = out + LCs.constant(np.full(len(st.const2), st.upper, dtype=np.int64)).embed(size, st.const2)
        return out

    # -- the witness ---------------------------------------------------------------------------
    def witness(self, x: list[int], payee: int) -> tuple[U64, list[int]]:
        """The full assignment for input ``x`` (fixed point, in range) and ``payee``; also the
        output values. Raises BackendError for an input the circuit cannot prove."""
        limbs, y = self._assign(x, payee)
        ref = self.qm.forward_batch(np.array([x], dtype=np.int64))[0]
        if y != [int(v) for v in ref]:
            raise BackendError("lowered circuit disagrees with the integer reference (a lowering bug)")
        return limbs, y

    def _assign(self, x: list[int], payee: int) -> tuple[U64, list[int]]:
        """The assignment as the steps compute it (``witness`` adds the reference check)."""
        qm = self.qm
        w = np.zeros(self.n_wires, dtype=np.int64)
        big: dict[int, int] = {}
        w[0] = 1
        xa = np.asarray(x, dtype=np.int64)
        b = qm.input_bits
        lo, hi = qm.input_range()
        if len(xa) != qm.input_size or xa.min() < lo or xa.max() > hi:
            raise BackendError(f"input outside the {b}-bit signed range or of the wrong size")
        u = xa + (1 << (b - 1))
        if self.packed:
            ib = self.in_bits
            t = np.arange(qm.input_size * b, dtype=np.int64)
            w[ib.wires] = (u[t // b] >> (t % b)) & 1
            for wire, word in zip(self.in_wires.tolist(), pack(x, b, "input"), strict=True):
                big[wire] = word
            w[self.x0] = xa
        else:
            ib = self.in_bits
            w[ib.wires] = (u[ib.own] >> ib.pos) & 1
            w[self.in_wires] = xa
        vals = [xa]
        for li, st in enumerate(self.steps):
            ly = st.ly
            acc = ly.bias.astype(np.int64).copy()
            for base, wt in ly.terms.items():
                acc = acc + np.asarray(wt @ vals[base], dtype=np.int64)
            y = self._witness_step(st, acc, w)
            if li < len(self.steps) - 1:
                w[st.mat_w] = y[st.mat]
            vals.append(y)
        y = vals[-1]
        ys = [int(v) for v in y]
        pv = np.array([(payee >> i) & 1 for i in range(PAYEE_BITS)], dtype=np.int64)
        w[self.payee_bits.wires] = pv
        big[self.payee_wire] = payee
        if self.packed:
            ob, bo = self.out_bits, qm.output_bits
            half = 1 << (bo - 1)
            if y.min() < -half or y.max() >= half:
                raise BackendError(f"output outside the {bo}-bit signed range")
            uo = y + half
            w[ob.wires] = (uo[ob.own] >> ob.pos) & 1
            signals = place_payee(pack(ys, bo, "output"), self.slot, payee)
            for i, wire in enumerate(self.out_wires.tolist()):
                big[wire] = signals[i]
        else:
            w[self.out_wires[: qm.output_size]] = y
            big[self.payee_out] = payee
        limbs = field_limbs(w)
        if big:
            idx = np.array(list(big), dtype=np.int64)
            limbs[idx] = int_limbs(list(big.values()))
        return limbs, ys

    def _witness_step(self, st: _Step, acc: I64, w: I64) -> I64:
        k = st.ly.shift
        e = acc + st.adj
        v1 = np.where(st.kind == CONST, st.off, 0)
        if len(st.d1):
            b1 = st.bits1
            ed = e[st.d1]
            u = ed + (np.int64(1) << (b1.n - 1))
            if (u < 0).any() or (u >> b1.n).any():
                raise BackendError(f"step {st.ly.node!r}: an accumulator outside its worst-case bounds")
            w[b1.wires] = (u[b1.own] >> b1.pos) & 1
        q = e >> k
        v1 = np.where(st.kind == PASS, e + st.off, v1)
        v1 = np.where(st.kind == FLOOR, q + st.off, v1)
        relu_val = np.maximum(q, 0)
        v1 = np.where(st.kind == RELU, relu_val + st.off, v1)
        if len(st.relu):
            w[st.relu_w] = relu_val[st.relu] - st.relu_e
        y = v1.copy()
        if len(st.mins):
            assert st.upper is not None
            d = st.upper - v1[st.mins]
            b2 = st.bits2
            u2 = d + (np.int64(1) << (b2.n - 1))
            if (u2 < 0).any() or (u2 >> b2.n).any():
                raise BackendError(f"step {st.ly.node!r}: a value outside its worst-case bounds")
            w[b2.wires] = (u2[b2.own] >> b2.pos) & 1
            y[st.mins] = np.minimum(v1[st.mins], st.upper)
            w[st.min_w] = y[st.mins]
        if st.upper is not None and len(st.const2):
            y[st.const2] = st.upper
        return y


def _local(size: int, rows: I64) -> I64:
    local = np.full(size, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows), dtype=np.int64)
    return local
