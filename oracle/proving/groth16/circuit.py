"""Circom code generation from a quantized model (see ``oracle.circuits.quantize``).

Cost model (R1CS, circom --O2): linear combinations are free (constants are inlined and every
linear constraint is substituted away); what costs is bit decomposition, one constraint per bit.
So each neuron of a layer is one decomposition of its accumulator, shared by

* the rescale ``q = floor(acc / 2**k)``: the low k bits are the remainder, the high bits the
  quotient (unique because all bits are boolean and the width n covers the worst case);
* the sign of q, which is the top bit since acc + 2**(n-1) is what gets decomposed, so
  ReLU costs one more constraint (``out = sign * q``);
* Clip(lo, hi) = min(lo + relu(q - lo), hi): the lower bound is folded into the accumulator's
  constant, the upper bound is one more (small) decomposition.

Sides that interval arithmetic proves inactive are skipped (e.g. ReLU of a neuron that can never
be negative). Inputs are range-checked to ``input_bits`` signed bits.

Payee (``oracle.circuits.payee``): a private input ``payee`` decomposed into 160 bits and added
into the spare high bits of the last output word (packed, when 160 bits fit), else exposed as a
public output of its own right after the outputs; either way the proof names the fee recipient.

Packed signals (``packed=True``, see ``oracle.circuits.packing``): the public inputs are words of
k = floor(253 / input_bits) offset inputs each. Decomposing a word into exactly k * input_bits
bits is the same number of constraints as range-checking its k inputs one by one, and both
unpacks and range-checks them. Each output is decomposed to ``output_bits`` signed bits (also a
range check: should the worst-case bounds of the quantizer ever be wrong, proving fails instead
of a carry into the neighbouring value) and the bits are summed into the public output words.
"""

from __future__ import annotations

from dataclasses import dataclass

from oracle.circuits.packing import per_word
from oracle.circuits.payee import PAYEE_BITS, slot_for
from oracle.circuits.quantize import QLayer, QuantizedModel, signed_bits

TEMPLATES = """\
// acc + 2^(n-1) as n boolean bits: forces -2^(n-1) <= in < 2^(n-1) as an integer.
template SignedBits(n) {
    signal input in;
    signal output bits[n];
    var lc = 0;
    var e = 1;
    for (var i = 0; i < n; i++) {
        bits[i] <-- ((in + (1 << (n - 1))) >> i) & 1;
        bits[i] * (bits[i] - 1) === 0;
        lc += bits[i] * e;
        e = e + e;
    }
    lc === in + (1 << (n - 1));
}

// A word holding k values of b bits (little-endian, each offset by 2^(b-1)) as k*b boolean
// bits: unique since k*b <= 253 < log2(r), and each value is thereby in [-2^(b-1), 2^(b-1)).
template UnpackSigned(k, b) {
    signal input word;
    signal output out[k];
    signal bits[k * b];
    var lc = 0;
    var e = 1;
    for (var i = 0; i < k * b; i++) {
        bits[i] <-- (word >> i) & 1;
        bits[i] * (bits[i] - 1) === 0;
        lc += bits[i] * e;
        e = e + e;
    }
    lc === word;
    for (var i = 0; i < k; i++) {
        var v = 0;
        var f = 1;
        for (var j = 0; j < b; j++) {
            v += bits[i * b + j] * f;
            f = f + f;
        }
        out[i] <== v - (1 << (b - 1));
    }
}

// The inverse: k signed values, each range-checked to b bits, packed into one word.
template PackSigned(k, b) {
    signal input in[k];
    signal output word;
    component sb[k];
    var lc = 0;
    var e = 1;
    for (var i = 0; i < k; i++) {
        sb[i] = SignedBits(b);
        sb[i].in <== in[i];
        for (var j = 0; j < b; j++) {
            lc += sb[i].bits[j] * e;
            e = e + e;
        }
    }
    word <== lc;
}

// The payee address as n boolean bits: constrains it (one multiplication per bit), so the proof
// cannot be replayed for another payee (a public signal in no constraint is malleable).
template PayeeBits(n) {
    signal input in;
    signal bits[n];
    var lc = 0;
    var e = 1;
    for (var i = 0; i < n; i++) {
        bits[i] <-- (in >> i) & 1;
        bits[i] * (bits[i] - 1) === 0;
        lc += bits[i] * e;
        e = e + e;
    }
    lc === in;
}

// q = floor(in / 2^k) (rounds towards -infinity, like numpy's >>); pos = 1 iff in >= 0.
template FloorDiv(n, k) {
    signal input in;
    signal output q;
    signal output pos;
    component sb = SignedBits(n);
    sb.in <== in;
    var lc = 0;
    for (var i = k; i < n; i++) {
        lc += sb.bits[i] * (1 << (i - k));
    }
    q <== lc - (1 << (n - 1 - k));
    pos <== sb.bits[n - 1];
}

// max(floor(in / 2^k), 0)
template FloorRelu(n, k) {
    signal input in;
    signal output out;
    component f = FloorDiv(n, k);
    f.in <== in;
    out <== f.pos * f.q;
}

// min(in, h), valid when h - in fits m signed bits.
template MinConst(m, h) {
    signal input in;
    signal output out;
    component sb = SignedBits(m);
    sb.in <== h - in;
    out <== h - sb.bits[m - 1] * (h - in);
}
"""


@dataclass
class CircuitStats:
    estimated_constraints: int
    decomposition_bits: int


def _expr(ly: QLayer, j: int, names: dict[int, str], const_adjust: int = 0) -> str:
    parts: list[str] = []
    for b, w in ly.terms.items():
        lo, hi = int(w.indptr[j]), int(w.indptr[j + 1])         # row j of the csr weights
        for i, wi in zip(w.indices[lo:hi].tolist(), w.data[lo:hi].tolist(), strict=True):
            if wi == 0:
                continue
            sign = "-" if wi < 0 else "+"
            mag = abs(wi)
            term = f"{names[b]}[{i}]" if mag == 1 else f"{mag}*{names[b]}[{i}]"
            parts.append(f"{sign} {term}")
    c = int(ly.bias[j]) + const_adjust
    if c != 0 or not parts:
        parts.append(f"{'-' if c < 0 else '+'} {abs(c)}")
    s = " ".join(parts)
    return s[2:] if s.startswith("+ ") else "-" + s[2:]


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.n_comp = 0
        self.constraints = 0
        self.bits = 0

    def comp(self, template: str, n_bits: int, extra: int) -> str:
        self.n_comp += 1
        name = f"c{self.n_comp}"
        self.lines.append(f"    component {name} = {template};")
        self.constraints += n_bits + extra
        self.bits += n_bits
        return name

    def neuron(self, ly: QLayer, j: int, names: dict[int, str], target: str) -> None:
        """Emit ``target <== act(floor(acc_j / 2^shift))``."""
        k = ly.shift
        alo, ahi = ly.acc_lo[j], ly.acc_hi[j]
        lower = 0 if ly.act == "relu" else ly.lo if ly.act == "clip" else None
        upper = ly.hi if ly.act == "clip" else None
        if lower is not None:
            # q - lower = floor((acc - lower * 2^k) / 2^k): fold the bound into the constant.
            adj = -lower * (1 << k)
            elo, ehi = alo + adj, ahi + adj
            expr = _expr(ly, j, names, adj)
            if ehi < 0:
                val, vlo, vhi = f"{lower}", lower, lower
            elif elo >= 0:
                val, vlo, vhi = self._floor(expr, elo, ehi, k, lower)
            else:
                n = max(signed_bits(elo, ehi), k + 1)
                c = self.comp(f"FloorRelu({n}, {k})", n, 1)
                self.lines.append(f"    {c}.in <== {expr};")
                val = f"{c}.out" if lower == 0 else f"{c}.out + {lower}"
                vlo, vhi = lower, lower + max(ehi >> k, 0)
        else:
            val, vlo, vhi = self._floor(_expr(ly, j, names), alo, ahi, k, 0)
        if upper is not None and vhi > upper:
            if vlo >= upper:
                val = f"{upper}"
            else:
                m = signed_bits(upper - vhi, upper - vlo)
                c = self.comp(f"MinConst({m}, {upper})", m, 1)
                self.lines.append(f"    {c}.in <== {val};")
                val = f"{c}.out"
        self.lines.append(f"    {target} <== {val};")
        self.constraints += 1   # the assignment; removed by --O2 unless target is an output

    def _floor(self, expr: str, lo: int, hi: int, k: int, offset: int) -> tuple[str, int, int]:
        if k == 0:
            return (f"{expr}" if offset == 0 else f"{expr} + {offset}"), lo + offset, hi + offset
        n = max(signed_bits(lo, hi), k + 1)
        c = self.comp(f"FloorDiv({n}, {k})", n, 0)
        self.lines.append(f"    {c}.in <== {expr};")
        val = f"{c}.q" if offset == 0 else f"{c}.q + {offset}"
        return val, (lo >> k) + offset, (hi >> k) + offset


def payee_slot(qm: QuantizedModel, packed: bool) -> dict[str, int]:
    """The manifest's ``payee`` entry for this model's circuit (see ``oracle.circuits.payee``)."""
    if not packed:
        return {"signal": qm.output_size, "shift": 0, "extra": 1}
    sizes = _word_sizes(qm.output_size, qm.output_bits)
    return slot_for(sizes[-1] * qm.output_bits, len(sizes) - 1)


def generate(qm: QuantizedModel, template_name: str = "Model",
             packed: bool = False) -> tuple[str, CircuitStats]:
    """Circom source whose main has public inputs ``in`` and outputs ``out``: the values
    themselves, or (``packed``) their packed words, see ``oracle.circuits.packing``; plus the
    payee at ``payee_slot``."""
    g = _Gen()
    n_in, n_out = qm.input_size, qm.output_size
    slot = payee_slot(qm, packed)
    g.lines.append(f"template {template_name}() {{")
    if packed:
        _packed_inputs(g, n_in, qm.input_bits, len(_word_sizes(n_out, qm.output_bits)), bool(slot["extra"]))
        names = {0: "x0"}
    else:
        g.lines.append(f"    signal input in[{n_in}];")
        g.lines.append(f"    signal output out[{n_out}];")
        g.lines.append("    signal output payeeOut;   // public signal right after the outputs")
        g.lines.append("    signal input payee;")
        g.lines.append(f"    // inputs: {qm.input_bits}-bit signed range, as checked on-chain")
        g.lines.append(f"    component rin[{n_in}];")
        g.lines.append(f"    for (var i = 0; i < {n_in}; i++) {{")
        g.lines.append(f"        rin[i] = SignedBits({qm.input_bits});")
        g.lines.append("        rin[i].in <== in[i];")
        g.lines.append("    }")
        g.constraints += n_in * qm.input_bits
        g.bits += n_in * qm.input_bits
        names = {0: "in"}
    for li, ly in enumerate(qm.layers):
        last = li == len(qm.layers) - 1
        name = ("y" if packed else "out") if last else f"x{li + 1}"
        names[li + 1] = name
        g.lines.append(
            f"    // step {li + 1} ({ly.node}): {ly.size} x {ly.act}, shift {ly.shift}, "
            f"scale {ly.acc_scale} -> {ly.out_scale}"
        )
        if not last or packed:
            g.lines.append(f"    signal {name}[{ly.size}];")
        for j in range(ly.size):
            g.neuron(ly, j, names, f"{name}[{j}]")
    if packed:
        _packed_outputs(g, n_out, qm.output_bits, slot)
    else:
        _payee(g)
    g.lines.append("}")
    src = "\n".join([
        "pragma circom 2.1.0;",
        "// Generated by oracle.proving.groth16.circuit from a quantized ONNX model.",
        "",
        TEMPLATES,
        *g.lines,
        "",
        f"component main {{public [in]}} = {template_name}();",
        "",
    ])
    return src, CircuitStats(g.constraints, g.bits)


def _word_sizes(n: int, bits: int) -> list[int]:
    k = per_word(bits)
    return [min(k, n - i) for i in range(0, n, k)]


def _packed_inputs(g: _Gen, n_in: int, bits: int, out_words: int, extra_payee: bool = False) -> None:
    sizes = _word_sizes(n_in, bits)
    g.lines.append(f"    signal input in[{len(sizes)}];")
    g.lines.append(f"    signal output out[{out_words}];")
    if extra_payee:
        g.lines.append("    signal output payeeOut;   // no spare bits in the last output word")
    g.lines.append("    signal input payee;")
    g.lines.append(f"    // inputs: {len(sizes)} packed word(s) of {bits}-bit signed values, unpacked + range-checked")
    g.lines.append(f"    signal x0[{n_in}];")
    at = 0
    for w, k in enumerate(sizes):
        c = g.comp(f"UnpackSigned({k}, {bits})", k * bits, 1)
        g.lines.append(f"    {c}.word <== in[{w}];")
        for i in range(k):
            g.lines.append(f"    x0[{at + i}] <== {c}.out[{i}];")
        at += k


def _payee_bits(g: _Gen) -> None:
    c = g.comp(f"PayeeBits({PAYEE_BITS})", PAYEE_BITS, 1)
    g.lines.append(f"    {c}.in <== payee;")


def _payee(g: _Gen) -> None:
    """The unpacked layout (and packed without room): the payee is a public output of its own."""
    _payee_bits(g)
    g.lines.append("    payeeOut <== payee;")


def _packed_outputs(g: _Gen, n_out: int, bits: int, slot: dict[str, int]) -> None:
    g.lines.append(f"    // outputs: range-checked to {bits} signed bits and packed")
    at = 0
    sizes = _word_sizes(n_out, bits)
    for w, k in enumerate(sizes):
        c = g.comp(f"PackSigned({k}, {bits})", k * bits, 1)
        g.lines.append(f"    for (var i = 0; i < {k}; i++) {{")
        g.lines.append(f"        {c}.in[i] <== y[{at} + i];")
        g.lines.append("    }")
        if not slot["extra"] and w == slot["signal"]:
            # 160 payee bits above the k*b value bits: the word stays < 2^253 < r, so unique.
            _payee_bits(g)
            g.lines.append(f"    out[{w}] <== {c}.word + payee * {1 << slot['shift']};")
        else:
            g.lines.append(f"    out[{w}] <== {c}.word;")
        at += k
    if slot["extra"]:
        _payee(g)
