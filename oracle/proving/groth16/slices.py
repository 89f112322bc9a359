"""One slice of a sliced model as a direct-generator circuit (docs/sliced-models.md).

Slice j of k computes layers [cuts[j], cuts[j+1]) exactly as ``lowering.Plan`` computes them in
the whole model (same steps, same decompositions, same wires per value), with other I/O:

* input, first slice: the request's input as packed public words, unpacked and range-checked as
  in ``Plan`` (UnpackSigned);
* input, later slices: boundary j's words as PRIVATE wires, decomposed into b bits per value
  (the same unpacking, which range-checks every value), and the public signal c_j constrained
  to the Poseidon sponge over those words (``poseidon.PoseidonCs.commit``);
* output, last slice: packed output words with the payee, exactly ``Plan``'s;
* output, earlier slices: boundary j+1's values (already range-bounded wires of this slice, or
  carried input values) packed linearly into words (no bits: a word is a linear combination of
  values known to lie in their b-bit range), and the public signal c_{j+1} constrained to the
  sponge over those words.

Public signals (snarkjs: outputs, then inputs): ``[c_1, input words..]`` for the first slice,
``[c_{j+1}, c_j]`` for middle ones, ``[output words (+payee).., c_{k-1}]`` for the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracle.circuits.packing import pack, per_word
from oracle.circuits.payee import PAYEE_BITS, place_payee
from oracle.circuits.quantize import QuantizedModel
from oracle.circuits.slicing import Boundary, boundary, check_cuts
from oracle.proving.base import BackendError
from oracle.proving.groth16 import poseidon
from oracle.proving.groth16.circuit import payee_slot
from oracle.proving.groth16.lowering import I64, LCs, Plan, _Builder, _Decomp
from oracle.proving.groth16.poseidon import Lin, PoseidonCs
from oracle.proving.groth16.r1cs_writer import U64, R1cs, field_limbs, int_limbs


def activations(qm: QuantizedModel, x: Sequence[int]) -> list[I64]:
    """Every base's values for one input (base 0 = x, base i + 1 = layer i's output): the
    integer reference, ``QuantizedModel.activations_batch`` on a batch of one."""
    return [v[0] for v in qm.activations_batch(np.asarray([list(x)], dtype=np.int64))]


def boundary_values(bd: Boundary, vals: Sequence[I64 | None]) -> list[int]:
    """The boundary vector: its carried bases' values, concatenated in base order."""
    out: list[int] = []
    for b in bd.bases:
        v = vals[b]
        if v is None:
            raise BackendError(f"boundary {bd.index}: base {b} is not known here")
        out += [int(t) for t in v]
    return out


def boundary_commitment(bd: Boundary, values: Sequence[int]) -> int:
    """c_j for a boundary vector (PackingError if a value is outside the boundary's width)."""
    if len(values) != bd.n_values:
        raise BackendError(f"boundary {bd.index} carries {bd.n_values} values, got {len(values)}")
    return poseidon.commit(bd.index, bd.n_values, pack(values, bd.bits, f"boundary {bd.index} value"))


@dataclass(frozen=True)
class SliceWitness:
    witness: U64
    outputs: list[int]          # last slice: the model's outputs; else boundary j+1's values
    commit_in: int | None       # c_j (None for the first slice)
    commit_out: int | None      # c_{j+1} (None for the last slice)
    public: list[int]           # the public signals, snarkjs order


class SlicePlan(Plan):
    """The wire layout of slice ``j`` of the slicing ``cuts`` of ``qm``."""

    def __init__(self, qm: QuantizedModel, cuts: Sequence[int], j: int,
                 max_terms: int = poseidon.MAX_TERMS) -> None:
        self.cuts = check_cuts(qm, cuts)
        self.k = len(self.cuts) - 1
        if not 0 <= j < self.k:
            raise BackendError(f"slice {j} does not exist with {self.k} slices")
        self.j = j
        self.lo, self.hi = self.cuts[j], self.cuts[j + 1]
        self.first, self.last = j == 0, j == self.k - 1
        self.b_in: Boundary | None = None if self.first else boundary(qm, self.cuts, j)
        self.b_out: Boundary | None = None if self.last else boundary(qm, self.cuts, j + 1)
        self.qm = qm
        self.packed = True
        self.slot = payee_slot(qm, True)
        n_in, n_out = qm.input_size, qm.output_size
        self.in_k, self.out_k = per_word(qm.input_bits), per_word(qm.output_bits)
        self.in_sizes = [min(self.in_k, n_in - i) for i in range(0, n_in, self.in_k)]
        self.out_sizes = [min(self.out_k, n_out - i) for i in range(0, n_out, self.out_k)]
        self.n_pub_out = len(self.out_sizes) + self.slot["extra"] if self.last else 1
        self.n_pub_in = len(self.in_sizes) if self.first else 1
        n_bwords = 0 if self.b_in is None else self.b_in.n_words
        self.n_prv_in = n_bwords + (1 if self.last else 0)
        self.n_wires = 1 + self.n_pub_out + self.n_pub_in + self.n_prv_in
        self.out_wires = np.arange(1, 1 + self.n_pub_out, dtype=np.int64)
        self.in_wires = np.arange(1 + self.n_pub_out, 1 + self.n_pub_out + self.n_pub_in, dtype=np.int64)
        first_prv = 1 + self.n_pub_out + self.n_pub_in
        self.bword_wires = np.arange(first_prv, first_prv + n_bwords, dtype=np.int64)
        self.payee_wire = first_prv + n_bwords if self.last else -1
        self.payee_out = int(self.out_wires[-1]) if (self.last and self.slot["extra"]) else -1
        self.gadget = PoseidonCs(lambda n: int(self.alloc(n)[0]), max_terms)
        self.steps = []
        if self.first:
            self._plan_inputs()
        else:
            self._plan_boundary_in()
        for li in range(self.lo, self.hi):
            self.steps.append(self._plan_step(qm.layers[li], last=self.last and li == self.hi - 1))
        if self.last:
            self._plan_outputs()
        else:
            self._plan_boundary_out()
        self.macs = sum(_nnz(w) for ly in qm.layers[self.lo:self.hi] for w in ly.terms.values())

    # -- boundary in: private words -> b-bit values (range-checked) + c_j ------------------------
    def _plan_boundary_in(self) -> None:
        bd = self.b_in
        assert bd is not None
        k = per_word(bd.bits)
        self.bin_sizes = [min(k, bd.n_values - i) for i in range(0, bd.n_values, k)]
        self.bin_bits = _Decomp.alloc(np.array([s * bd.bits for s in self.bin_sizes], dtype=np.int64), self)
        self.bin_x = self.alloc(bd.n_values)
        empty = np.zeros(0, dtype=np.int64)
        self.values = [(empty, empty)] * (self.lo + 1)
        for b, at in bd.offsets().items():
            n = self.qm.input_size if b == 0 else self.qm.layers[b - 1].size
            self.values[b] = (self.bin_x[at:at + n], np.zeros(n, dtype=np.int64))
        h = self.gadget.commit(bd.index, bd.n_values, [Lin.wire(int(w)) for w in self.bword_wires])
        self.gadget.equal(Lin.wire(int(self.in_wires[0])), h)

    # -- boundary out: values packed linearly into words + c_{j+1} ------------------------------
    def _plan_boundary_out(self) -> None:
        bd = self.b_out
        assert bd is not None
        vw = np.concatenate([self.values[b][0] for b in bd.bases])
        vc = np.concatenate([self.values[b][1] for b in bd.bases])
        k, half = per_word(bd.bits), 1 << (bd.bits - 1)
        words: list[Lin] = []
        for i0 in range(0, bd.n_values, k):
            terms: dict[int, int] = {}
            const = 0
            for i in range(i0, min(i0 + k, bd.n_values)):
                sh = 1 << (bd.bits * (i - i0))
                const += (int(vc[i]) + half) * sh
                if vw[i] >= 0:
                    terms[int(vw[i])] = terms.get(int(vw[i]), 0) + sh
            words.append(Lin(terms, const % poseidon.P))
        h = self.gadget.commit(bd.index, bd.n_values, words)
        self.gadget.equal(Lin.wire(int(self.out_wires[0])), h)

    # -- constraints -----------------------------------------------------------------------------
    def constraints(self) -> R1cs:
        bld = _Builder()
        qm = self.qm
        if self.first:
            _unpack(bld, self.in_wires, self.in_sizes, self.in_bits, self.x0, qm.input_bits)
        else:
            assert self.b_in is not None
            _unpack(bld, self.bword_wires, self.bin_sizes, self.bin_bits, self.bin_x, self.b_in.bits)
        for st in self.steps:
            self._emit_step(bld, st, self.values)
        if self.last:
            self._emit_outputs(bld)
        cs = bld.build(self.n_wires, self.n_pub_out, self.n_pub_in, self.n_prv_in)
        return poseidon.append_rows(cs, self.gadget, self.n_wires)

    # -- witness ---------------------------------------------------------------------------------
    def slice_witness(self, x: Sequence[int], payee: int = 0) -> SliceWitness:
        """The assignment of this slice for the request input ``x`` (the whole integer forward
        pass runs here: a slice's input is the model's own boundary activation for ``x``)."""
        qm = self.qm
        lo_x, hi_x = qm.input_range()
        xa = np.asarray(list(x), dtype=np.int64)
        if len(xa) != qm.input_size or xa.min() < lo_x or xa.max() > hi_x:
            raise BackendError(f"input outside the {qm.input_bits}-bit signed range or of the wrong size")
        ref = activations(qm, [int(v) for v in xa])
        return self.witness_from(ref, payee)

    def witness_from(self, ref: Sequence[I64 | None], payee: int = 0) -> SliceWitness:
        """The assignment from known base values (``ref[b]`` for every base this slice reads:
        the input for the first slice, the carried bases of boundary j otherwise)."""
        qm = self.qm
        w = np.zeros(self.n_wires, dtype=np.int64)
        big: dict[int, int] = {}
        w[0] = 1
        sbox_in: list[int] = []
        vals: list[I64 | None] = [None] * (self.lo + 1)
        c_in = c_out = None
        public: list[int] = []
        if self.first:
            x = ref[0]
            assert x is not None
            b = qm.input_bits
            t = np.arange(qm.input_size * b, dtype=np.int64)
            w[self.in_bits.wires] = ((x + (1 << (b - 1)))[t // b] >> (t % b)) & 1
            words = pack([int(v) for v in x], b, "input")
            big.update(zip(self.in_wires.tolist(), words, strict=True))
            w[self.x0] = x
            vals[0] = x
            public_in = words
        else:
            bd = self.b_in
            assert bd is not None
            v = np.array(boundary_values(bd, ref), dtype=np.int64)
            words = pack([int(t) for t in v], bd.bits, f"boundary {bd.index} value")
            t = np.arange(bd.n_values * bd.bits, dtype=np.int64)
            w[self.bin_bits.wires] = ((v + (1 << (bd.bits - 1)))[t // bd.bits] >> (t % bd.bits)) & 1
            big.update(zip(self.bword_wires.tolist(), words, strict=True))
            w[self.bin_x] = v
            for b, at in bd.offsets().items():
                vals[b] = v[at:at + (qm.input_size if b == 0 else qm.layers[b - 1].size)]
            c_in, trace = poseidon.commit_trace(bd.index, bd.n_values, words)
            sbox_in += trace
            big[int(self.in_wires[0])] = c_in
            public_in = [c_in]
        for st in self.steps:
            acc = st.ly.bias.astype(np.int64).copy()
            for base, wt in st.ly.terms.items():
                vb = vals[base]
                if vb is None:
                    raise BackendError(f"slice {self.j} reads base {base}, which its boundary does not carry")
                acc = acc + _matvec(wt, vb)
            y = self._witness_step(st, acc, w)
            if len(st.mat_w):
                w[st.mat_w] = y[st.mat]
            vals.append(y)
        if self.last:
            y_last = vals[-1]
            assert y_last is not None
            y = y_last
            outputs = [int(v) for v in y]
            w[self.payee_bits.wires] = np.array([(payee >> i) & 1 for i in range(PAYEE_BITS)], dtype=np.int64)
            big[self.payee_wire] = payee
            ob, bo = self.out_bits, qm.output_bits
            half = 1 << (bo - 1)
            if y.min() < -half or y.max() >= half:
                raise BackendError(f"output outside the {bo}-bit signed range")
            w[ob.wires] = ((y + half)[ob.own] >> ob.pos) & 1
            signals = place_payee(pack(outputs, bo, "output"), self.slot, payee)
            big.update(zip(self.out_wires.tolist(), signals, strict=True))
            public_out = signals
        else:
            bd = self.b_out
            assert bd is not None
            outputs = boundary_values(bd, vals)
            c_out, trace = poseidon.commit_trace(bd.index, bd.n_values, pack(outputs, bd.bits, "boundary value"))
            sbox_in += trace
            big[int(self.out_wires[0])] = c_out
            public_out = [c_out]
        big.update(self.gadget.assign(sbox_in))
        limbs = field_limbs(w)
        idx = np.array(list(big), dtype=np.int64)
        limbs[idx] = int_limbs(list(big.values()))
        public = [*public_out, *public_in]
        return SliceWitness(limbs, outputs, c_in, c_out, public)

    def expected_outputs(self, ref: Sequence[I64]) -> list[int]:
        """What this slice must output for the reference activations ``ref`` (all bases)."""
        if self.last:
            return [int(v) for v in ref[-1]]
        assert self.b_out is not None
        return boundary_values(self.b_out, ref)


def _nnz(w: object) -> int:
    """Multiply-adds of a weight matrix, dense or scipy.sparse (canonical: no stored zeros)."""
    nnz = getattr(w, "nnz", None)
    return int(nnz) if nnz is not None else int(np.count_nonzero(np.asarray(w)))


def _matvec(w: object, v: I64) -> I64:
    """w @ v in int64 for a dense or scipy.sparse integer matrix (exact: |sums| < 2^62)."""
    return np.asarray(w @ v, dtype=np.int64).reshape(-1)   # type: ignore[operator]


def _unpack(bld: _Builder, words: I64, sizes: list[int], bits: _Decomp, x: I64, b: int) -> None:
    """UnpackSigned (as ``Plan`` does for packed inputs): word == sum of its k*b bits 2^t, and
    value i == its b bits - 2^(b-1); booleans on every bit (the range check)."""
    n = len(x)
    bld.booleans(bits.wires)
    bld.linear(LCs.of(words) - LCs.bits(len(sizes), bits.own, bits.wires, bits.pos))
    t = np.arange(n * b, dtype=np.int64)
    bld.linear(LCs.of(x, const=1 << (b - 1)) - LCs.bits(n, t // b, bits.wires, t % b))
