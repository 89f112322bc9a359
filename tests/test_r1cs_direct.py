"""The direct Groth16 generator (oracle.proving.groth16.lowering / r1cs_writer / direct): R1CS and
witness written from Python, checked with the real snarkjs, real circom, real ceremonies.

* format: our writer re-encodes circom's own .r1cs and .wtns byte for byte;
* soundness: honest witnesses pass ``snarkjs wtns check``, forged ones fail it (a flipped bit, a
  non-boolean bit, another output, another payee), every wire is in some constraint that a +1
  on it breaks; the non-linear constraints are exactly circom --O2's;
* end to end: proofs of the direct circuits equal the integer reference bit for bit, carry the
  same public signals as the circom circuit, verify off-chain, on-chain, and through the oracle.

Circuits are compiled once into .cache/test-circuits/*-direct* (same ptau cache as the circom
ones, all within 2^11).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from eth_abi import decode
from hexbytes import HexBytes
from onnx import TensorProto, helper, numpy_helper
from web3 import Web3

from oracle.chain.anvil import Anvil
from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import Deployment
from oracle.circuits.manifest import Manifest
from oracle.circuits.payee import payee_int
from oracle.circuits.quantize import QuantizedModel, QuantSettings, quantize_onnx
from oracle.proving.base import BackendError
from oracle.proving.groth16 import Groth16Backend, circuit, tools
from oracle.proving.groth16.cache import build_key, compile_cached
from oracle.proving.groth16.lowering import CONST, I64, Plan, _Step
from oracle.proving.groth16.r1cs_writer import (
    PRIME,
    U64,
    R1cs,
    R1csFormatError,
    _sections,
    field_limbs,
    int_limbs,
    limbs_to_ints,
    read_r1cs,
    read_wtns,
    unsatisfied,
    write_r1cs,
    write_wtns,
)
from tests.conftest import account_chain
from tests.protocol import last_request_id, request_input, setup_protocol

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
PAYEE = "0x00000000000000000000000000000000000a11ce"
OTHER = "0x000000000000000000000000000000000000b0b0"
VERIFY_GAS = 2_000_000
FULFIL_GAS = 1_500_000
LAYOUTS = [("risk", True), ("risk", False), ("digits", True), ("digits", False)]
# Lowering-level tests also run on "kinds" (every neuron case of circuit._Gen.neuron: constant,
# pass-through, floor, relu, min, clip-to-constant, materialised values, a residual base) and
# "digits-floor" (digits with an output scale, so its last step is a bare FloorDiv).
ALL_LAYOUTS = [*LAYOUTS, ("kinds", True), ("kinds", False), ("digits-floor", True), ("digits-floor", False)]
Lowered = dict[tuple[str, bool], tuple["Plan", "R1cs", Path]]


# -- helpers -----------------------------------------------------------------------------------
def _kinds_model(d: Path) -> tuple[Path, Path]:
    """A 6-10-3 model built so that every neuron case occurs (deterministic: same bytes each run)."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)

    def t(a: object, n: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, np.float32), n)

    w1 = rng.normal(0, 0.2, (6, 10))
    w1[:, 8:] = 0.01              # two neurons that stay inside / straddle the clip: pass-through
    inits = [t(w1, "W1"), t([3, 3, -3, -3, 0, 0, 0.1, -0.1, 0.6, 0.35], "b1"), t(0.1, "lo"), t(0.6, "hi"),
             t(rng.normal(0, 0.5, (10, 3)), "W2"), t([0.2, -0.1, 0.0], "b2"), t(rng.normal(0, .3, (10, 3)), "W3"),
             t(-0.4, "lo2"), t(0.5, "hi2")]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu1"),            # dead, always on, mixed
             helper.make_node("Clip", ["r", "lo", "hi"], ["c"], name="clip1"),  # identity step, shift 0
             helper.make_node("MatMul", ["c", "W2"], ["m"], name="fc2"),
             helper.make_node("Add", ["m", "b2"], ["mb"], name="bias2"),
             helper.make_node("MatMul", ["r", "W3"], ["skip"], name="skip"),     # reads an older step
             helper.make_node("Add", ["mb", "skip"], ["res"], name="residual"),
             helper.make_node("Clip", ["res", "lo2", "hi2"], ["y"], name="clip2")]
    graph = helper.make_graph(nodes, "kinds", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(d / "model.onnx"))
    (d / "calibration.json").write_text(json.dumps({"input": rng.uniform(-1, 1, (64, 6)).tolist()}))
    return d / "model.onnx", d / "calibration.json"


def _source(model: str) -> tuple[Path, Path]:
    if model == "kinds":
        return _kinds_model(CACHE / "test-circuits" / "kinds-src")
    d = ROOT / "models" / model.removesuffix("-floor")
    return d / "model.onnx", d / "calibration.json"


def _qm(model: str) -> QuantizedModel:
    onnx_path, calib_path = _source(model)
    calib = np.array(json.loads(calib_path.read_text())["input"], dtype=np.float64)
    st = QuantSettings(output_scale=6) if model.endswith("-floor") else QuantSettings()
    return quantize_onnx(onnx_path, calib, st)


def _inputs(qm: QuantizedModel, n: int, seed: int) -> list[list[int]]:
    lo, hi = qm.input_range()
    rng = np.random.default_rng(seed)
    xs = [[lo] * qm.input_size, [hi] * qm.input_size, [0] * qm.input_size]
    return xs + [[int(v) for v in rng.integers(lo, hi + 1, qm.input_size)] for _ in range(n - 3)]


def _wtns_check(r1cs: Path, wtns: Path) -> bool:
    """snarkjs' own verdict; a crash (unreadable file) is an error, not a rejection."""
    r = subprocess.run([tools.node_binary(), str(tools.snarkjs_cli()), "wtns", "check", str(r1cs), str(wtns)],
                       capture_output=True, text=True, timeout=300, check=False)
    if "WITNESS IS CORRECT" in r.stdout and r.returncode == 0:
        return True
    assert "WITNESS IS NOT CORRECT" in r.stdout and r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    return False


def _set(w: U64, wire: int, value: int) -> U64:
    out = w.copy()
    out[wire] = int_limbs([value])[0]
    return out


def _get(w: U64, wire: int) -> int:
    return limbs_to_ints(w[wire:wire + 1])[0]


def _circom_r1cs(qm: QuantizedModel, packed: bool, d: Path) -> R1cs:
    d.mkdir(parents=True, exist_ok=True)
    src, _ = circuit.generate(qm, packed=packed)
    (d / "model.circom").write_text(src)
    tools.run([tools.node_binary(), str(tools.circom_cli()), "model.circom", "--r1cs", "--wasm", "--O2",
               "-o", "."], cwd=d, what="circom")
    return read_r1cs(d / "model.r1cs")


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> Lowered:
    """Every layout lowered and written once (no setup needed for wtns check)."""
    out: Lowered = {}
    d = tmp_path_factory.mktemp("lowered")
    for model, packed in ALL_LAYOUTS:
        plan = Plan(_qm(model), packed)
        cs = plan.constraints()
        p = d / f"{model}-{packed}.r1cs"
        write_r1cs(p, cs)
        out[(model, packed)] = (plan, cs, p)
    return out


@pytest.fixture(scope="module")
def circom_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    d = tmp_path_factory.mktemp("circom")
    out = {}
    for model, packed in ALL_LAYOUTS:
        _circom_r1cs(_qm(model), packed, d / f"{model}-{packed}")
        out[(model, packed)] = d / f"{model}-{packed}"
    return out


@pytest.fixture(scope="module")
def direct_backend() -> Iterator[Groth16Backend]:
    b = Groth16Backend(pool_size=2, generator="direct")
    yield b
    b.close()


def _direct_circuit(backend: Groth16Backend, model: str, packed: bool) -> Path:
    onnx_path, calib_path = _source(model)
    suffix = "" if packed else "-unpacked"
    return compile_cached(backend, onnx_path, calib_path,
                          CACHE / "test-circuits" / f"{model}-direct{suffix}", CACHE, packed=packed)


E2E_LAYOUTS = [*LAYOUTS, ("kinds", True), ("kinds", False)]


@pytest.fixture(scope="module")
def direct_circuits(direct_backend: Groth16Backend) -> dict[tuple[str, bool], Path]:
    return {(m, p): _direct_circuit(direct_backend, m, p) for m, p in E2E_LAYOUTS}


# -- the binary formats ------------------------------------------------------------------------
def test_field_limbs_equal_python_integers() -> None:
    rng = np.random.default_rng(3)
    mant = np.concatenate([rng.integers(-(1 << 62), 1 << 62, 200), [0, 1, -1, (1 << 62), -(1 << 62)]])
    exp = np.concatenate([rng.integers(0, 190, 200), [252, 252, 252, 0, 3]])
    mant[:50] = rng.choice([-1, 1], 50)
    exp[:50] = rng.integers(0, 253, 50)
    ok = mant.astype(object) * (2 ** exp.astype(object))
    keep = np.array([abs(int(v)) < 1 << 253 for v in ok])
    got = limbs_to_ints(field_limbs(mant[keep], exp[keep]))
    assert got == [int(v) % PRIME for v in ok[keep]]
    assert limbs_to_ints(int_limbs([-5, PRIME + 7, 2**255]))[:2] == [PRIME - 5, 7]
    with pytest.raises(R1csFormatError, match="above 2"):
        field_limbs(np.array([3]), 252)       # 3 * 2^252 > 2^253


def test_writer_reencodes_circom_files_byte_for_byte(circom_dirs: dict[tuple[str, bool], Path],
                                                     tmp_path: Path) -> None:
    """Parsing circom's .r1cs and writing it back gives the same constraint section and header
    counts; a witness from circom's own calculator likewise (the formats are the iden3 ones)."""
    for d in circom_dirs.values():
        theirs = (d / "model.r1cs").read_bytes()
        cs = read_r1cs(d / "model.r1cs")
        write_r1cs(tmp_path / "re.r1cs", cs)
        ours = (tmp_path / "re.r1cs").read_bytes()
        st, so = _sections(theirs, b"r1cs"), _sections(ours, b"r1cs")
        assert theirs[st[2][0]:st[2][0] + st[2][1]] == ours[so[2][0]:so[2][0] + so[2][1]]
        # n8, prime, wires, outputs, public inputs, private inputs (labels differ: circom keeps
        # the labels of eliminated signals; we label wire i as i)
        assert theirs[st[1][0]:st[1][0] + 52] == ours[so[1][0]:so[1][0] + 52]
    d = circom_dirs[("risk", True)]
    qm = _qm("risk")
    x = _inputs(qm, 4, 5)[3]
    plan = Plan(qm, True)
    wit, _ = plan.witness(x, payee_int(PAYEE))
    inp = {"in": [str(v) for v in limbs_to_ints(wit[plan.in_wires])], "payee": str(payee_int(PAYEE))}
    (tmp_path / "in.json").write_text(json.dumps(inp))
    tools.snarkjs("wtns", "calculate", str(d / "model_js" / "model.wasm"), str(tmp_path / "in.json"),
                  str(tmp_path / "c.wtns"))
    theirs_w = (tmp_path / "c.wtns").read_bytes()
    values = read_wtns(tmp_path / "c.wtns")
    write_wtns(tmp_path / "re.wtns", int_limbs(values))
    assert (tmp_path / "re.wtns").read_bytes() == theirs_w
    # Same public signals from circom's witness calculator and from the Python witness.
    n_pub = plan.n_pub_out + plan.n_pub_in
    assert values[1:1 + n_pub] == limbs_to_ints(wit[1:1 + n_pub])
    assert _wtns_check(d / "model.r1cs", tmp_path / "c.wtns")


def test_a_wire_twice_in_one_lc_is_refused(tmp_path: Path) -> None:
    cs = R1cs(3, 1, 0, 0, 1, np.array([2, 2], np.uint8), np.array([0, 0]), np.array([1, 1]),
              field_limbs(np.array([1, 2])))
    with pytest.raises(R1csFormatError, match="twice"):
        write_r1cs(tmp_path / "x.r1cs", cs)


# -- the constraint system ---------------------------------------------------------------------
@pytest.mark.parametrize(("model", "packed"), ALL_LAYOUTS)
def test_same_nonlinear_constraints_as_circom(model: str, packed: bool, lowered: Lowered,
                                              circom_dirs: dict[tuple[str, bool], Path]) -> None:
    """circom --O2 keeps exactly the booleans and the products, and substitutes every linear
    constraint away (copying the accumulator into A and B of a boolean). The direct circuit has the
    same non-linear rows, plus one linear row (C only, never read by the prover) per
    decomposition and per materialised value; and far fewer A/B terms, which are what the prover
    and the setup pay for."""
    plan, cs, _ = lowered[(model, packed)]
    theirs = read_r1cs(circom_dirs[(model, packed)] / "model.r1cs")
    assert not (theirs.mat == 2).all() and len(np.unique(theirs.row[theirs.mat < 2])) == theirs.n_constraints
    nonlinear = np.unique(cs.row[cs.mat < 2])
    assert len(nonlinear) == theirs.n_constraints
    linear_rows = cs.n_constraints - len(nonlinear)
    decomps = len(plan.in_bits.n) + sum(len(s.d1) + len(s.mins) for s in plan.steps) + 1    # + payee
    materialised = (plan.qm.input_size if packed else 0) + sum(len(s.mat) for s in plan.steps)
    outputs = (plan.qm.output_size + len(plan.out_sizes)) if packed else \
        plan.qm.output_size - len(plan.out_direct)
    payee_out = 1 if plan.payee_out >= 0 else 0
    assert linear_rows == decomps + materialised + outputs + payee_out
    assert cs.n_constraints <= theirs.n_constraints + linear_rows
    assert (cs.mat < 2).sum() < (theirs.mat < 2).sum()
    assert (cs.n_wires, cs.n_pub_out, cs.n_pub_in, cs.n_prv_in)[1:] == \
        (theirs.n_pub_out, theirs.n_pub_in, theirs.n_prv_in)


@pytest.mark.parametrize(("model", "packed"), ALL_LAYOUTS)
def test_honest_witnesses_satisfy_the_constraints(model: str, packed: bool,
                                                  lowered: Lowered,
                                                  tmp_path: Path) -> None:
    plan, cs, r1cs = lowered[(model, packed)]
    xs = _inputs(plan.qm, 12, seed=21)
    ref = plan.qm.forward_batch(np.array(xs, dtype=np.int64)).tolist()
    for i, x in enumerate(xs):
        wit, y = plan.witness(x, payee_int(PAYEE) ^ i)
        assert y == ref[i]
        assert unsatisfied(cs, limbs_to_ints(wit)) == []
        if i in (0, 1, 5):        # snarkjs itself on the extremes and one random input
            write_wtns(tmp_path / "w.wtns", wit)
            assert _wtns_check(r1cs, tmp_path / "w.wtns")


@pytest.mark.parametrize(("model", "packed"), ALL_LAYOUTS)
def test_every_wire_is_constrained(model: str, packed: bool,
                                   lowered: Lowered) -> None:
    """Adding 1 to any single wire of an honest witness breaks some constraint (what a circom
    under-constrained-signal checker looks for), computed exactly for all wires at once: row r
    stays satisfied iff (a + A_rv)(b + B_rv) = c + C_rv."""
    plan, cs, _ = lowered[(model, packed)]
    wit, _ = plan.witness(_inputs(plan.qm, 4, 8)[3], payee_int(PAYEE))
    w = np.array(limbs_to_ints(wit), dtype=object)
    coef = np.array(limbs_to_ints(cs.coef), dtype=object)
    sums = np.zeros((3, cs.n_constraints), dtype=object)
    np.add.at(sums, (cs.mat.astype(np.int64), cs.row), coef * w[cs.wire])
    abc = sums % PRIME
    key = cs.row * cs.n_wires + cs.wire
    pairs, inv = np.unique(key, return_inverse=True)
    per = np.zeros((3, len(pairs)), dtype=object)
    np.add.at(per, (cs.mat.astype(np.int64), inv), coef)
    r = pairs // cs.n_wires
    broken = ((abc[0][r] + per[0]) * (abc[1][r] + per[1]) - abc[2][r] - per[2]) % PRIME != 0
    caught = np.zeros(cs.n_wires, dtype=bool)
    caught[(pairs % cs.n_wires)[broken]] = True
    assert caught[1:].all(), f"wires changeable alone: {np.flatnonzero(~caught[1:])[:10] + 1}"


def _flip(w: U64, wire: int) -> U64:
    return _set(w, wire, 1 - _get(w, wire))


def _forgeries(plan: Plan, wit: U64) -> dict[str, U64]:
    """Witnesses that a dishonest prover might try; each must be rejected."""
    st0, last = plan.steps[0], plan.steps[-1]
    out: dict[str, U64] = {
        "input bit flipped": _flip(wit, int(plan.in_bits.wires[3])),
        "first step bit flipped": _flip(wit, int(st0.bits1.wires[2])),
        "last step bit flipped": _flip(wit, int(last.bits1.wires[-1]) if len(last.bits1.wires) else
                                       int(plan.payee_bits.wires[0])),
        "payee bit flipped": _flip(wit, int(plan.payee_bits.wires[7])),
        "another output signal": _set(wit, int(plan.out_wires[0]), _get(wit, int(plan.out_wires[0])) + 1),
        "another payee": _set(wit, plan.payee_wire, payee_int(OTHER)),
    }
    if plan.payee_out >= 0:
        out["another payee signal"] = _set(wit, plan.payee_out, payee_int(OTHER))
    # In every decomposition: a non-boolean bit whose recomposition still holds (b_i = 2 and
    # b_(i+1) one less), so only the boolean constraint can catch it.
    groups = [("input", plan.in_bits), ("payee", plan.payee_bits)]
    groups += [(f"{st.ly.node} floor", st.bits1) for st in plan.steps]
    groups += [(f"{st.ly.node} min", st.bits2) for st in plan.steps]
    if plan.packed:
        groups.append(("output", plan.out_bits))
    for name, g in groups:
        vals = [_get(wit, int(b)) for b in g.wires]
        at = [t for t in range(len(g.wires) - 1)
              if vals[t] == 0 and vals[t + 1] == 1 and g.own[t] == g.own[t + 1]]
        if at:
            t = at[0]
            out[f"non-boolean {name} bit, recomposition kept"] = _set(_set(wit, int(g.wires[t]), 2),
                                                                     int(g.wires[t + 1]), 0)
    if plan.packed:
        # Another first output, consistent all the way up to the output word: its bits and the
        # word are changed together, so only the link to the computation can catch it.
        ob = plan.out_bits
        sel = np.flatnonzero(ob.own == 0)
        u = sum(_get(wit, int(ob.wires[t])) << int(ob.pos[t]) for t in sel) ^ 1
        forged = wit
        for t in sel:
            forged = _set(forged, int(ob.wires[t]), (u >> int(ob.pos[t])) & 1)
        word = _get(wit, int(plan.out_wires[0]))
        forged = _set(forged, int(plan.out_wires[0]), word ^ 1)
        out["another output, bits and word consistent"] = forged
    return out


@pytest.mark.parametrize(("model", "packed"), ALL_LAYOUTS)
def test_forged_witnesses_are_rejected(model: str, packed: bool,
                                       lowered: Lowered,
                                       tmp_path: Path) -> None:
    plan, cs, r1cs = lowered[(model, packed)]
    wit, _ = plan.witness(_inputs(plan.qm, 5, 2)[4], payee_int(PAYEE))
    write_wtns(tmp_path / "honest.wtns", wit)
    assert _wtns_check(r1cs, tmp_path / "honest.wtns")      # the same file minus the forgery passes
    for what, forged in _forgeries(plan, wit).items():
        assert unsatisfied(cs, limbs_to_ints(forged)), what
        write_wtns(tmp_path / "forged.wtns", forged)
        assert not _wtns_check(r1cs, tmp_path / "forged.wtns"), what


class _LyingPlan(Plan):
    """A prover that moves one neuron's value by ``delta`` and computes everything after it
    honestly (the wire carrying the value, later steps, output bits and words, all consistent).
    Step -1 is the input: the value the first step reads, not the public word or its bits."""

    def __init__(self, qm: QuantizedModel, packed: bool, step: int, neuron: int, delta: int) -> None:
        super().__init__(qm, packed)
        self.lie = (step, neuron, delta)

    def _witness_step(self, st: _Step, acc: I64, w: I64) -> I64:
        step, j, delta = self.lie
        if step == -1 and st is self.steps[0]:
            acc = acc + st.ly.terms[0][:, [j]].toarray()[:, 0] * delta
            w[self.x0[j]] += delta
        y = super()._witness_step(st, acc, w)
        if step < 0 or st is not self.steps[step]:
            return y
        y = y.copy()
        y[j] += delta
        if j in st.mins:
            w[st.min_w[np.searchsorted(st.mins, j)]] = y[j]
        elif j in st.relu and j not in st.const2:
            i = np.searchsorted(st.relu, j)
            w[st.relu_w[i]] = y[j] - st.off[j] - st.relu_e[i]
        return y


@pytest.mark.parametrize(("model", "packed"), ALL_LAYOUTS)
def test_a_lie_about_any_neuron_is_rejected(model: str, packed: bool, lowered: Lowered, tmp_path: Path) -> None:
    """For every neuron of every step: one value off by one, all the rest recomputed from it,
    and the witness fails (a relu/min output is held only by its product constraint, a
    materialised value only by its linear row, a constant by the rows that use it)."""
    plan, cs, r1cs = lowered[(model, packed)]
    x = _inputs(plan.qm, 4, 3)[3]
    honest, _ = plan.witness(x, payee_int(PAYEE))
    checked = invisible = 0
    for si, st in [(-1, plan.steps[0]), *enumerate(plan.steps)]:
        for j in range(st.ly.size if si >= 0 else plan.qm.input_size):
            for delta in (1, -1):
                liar = _LyingPlan(plan.qm, packed, si, j, delta)
                try:
                    wit, _ = liar._assign(x, payee_int(PAYEE))
                except BackendError:        # the lie pushed a later value out of its bits
                    continue
                if np.array_equal(wit, honest):
                    # a constant that no later weight reads: the lie reaches no wire at all
                    assert si >= 0 and (st.kind[j] == CONST or j in st.const2)
                    invisible += 1
                    break
                assert unsatisfied(cs, limbs_to_ints(wit)), (st.ly.node, j, delta)
                if checked < 2:             # snarkjs agrees (on the first ones)
                    write_wtns(tmp_path / "lie.wtns", wit)
                    assert not _wtns_check(r1cs, tmp_path / "lie.wtns")
                checked += 1
                break
    assert checked + invisible >= sum(st.ly.size for st in plan.steps) + plan.qm.input_size - 2
    assert checked > invisible


def test_wide_fanin_that_circom_cannot_compile(tmp_path: Path) -> None:
    """One neuron summing 1,000 inputs: circom2 crashes past ~420 terms in one expression; the
    lowering has no such limit (checked by snarkjs without a ceremony)."""
    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(rng.normal(0, 0.05, (1000, 2)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
         helper.make_node("Relu", ["h"], ["y"], name="relu")], "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "wide.onnx"))
    qm = quantize_onnx(tmp_path / "wide.onnx", rng.uniform(-1, 1, (32, 1000)), QuantSettings(input_scale=3))
    plan = Plan(qm, packed=True)
    cs = plan.constraints()
    assert (np.diff(qm.layers[0].terms[0].indptr) > 900).all() and cs.n_terms > plan.macs
    write_r1cs(tmp_path / "wide.r1cs", cs)
    for x in _inputs(qm, 4, 6)[2:]:
        wit, y = plan.witness(x, payee_int(PAYEE))
        write_wtns(tmp_path / "w.wtns", wit)
        assert _wtns_check(tmp_path / "wide.r1cs", tmp_path / "w.wtns")
        assert y == qm.forward_batch(np.array([x]))[0].tolist()


# -- the backend end to end --------------------------------------------------------------------
def test_direct_folder_and_manifest(direct_circuits: dict[tuple[str, bool], Path],
                                    direct_backend: Groth16Backend) -> None:
    assert Groth16Backend().generator == "direct"           # the default generator
    with pytest.raises(BackendError, match="unknown groth16 generator"):
        Groth16Backend(generator="halo2")
    for (model, packed), c in direct_circuits.items():
        m = Manifest.load(c)
        m.check_circuit_id(c)
        assert m.settings["generator"] == "direct" and "circom_flags" not in m.settings
        assert "wasm" not in m.files and "circom" not in m.files
        assert not (c / "model.wasm").exists() and not (c / "model.circom").exists()
        assert {"lowering_seconds", "r1cs_write_seconds", "multiply_adds"} <= set(m.stats)
        assert m.stats["ptau_power"] <= 11 and (m.packed is not None) == packed
        onnx_path, calib_path = _source(model)
        assert build_key(direct_backend, onnx_path, calib_path, packed) != \
            build_key(Groth16Backend(generator="circom"), onnx_path, calib_path, packed)


@pytest.mark.parametrize(("model", "packed"), E2E_LAYOUTS)
def test_proofs_equal_the_integer_reference(model: str, packed: bool, direct_backend: Groth16Backend,
                                            direct_circuits: dict[tuple[str, bool], Path]) -> None:
    c = direct_circuits[(model, packed)]
    m = Manifest.load(c)
    qm = QuantizedModel.load(c / m.files["quantized"])
    xs = _inputs(qm, 16, seed=31)
    ref = qm.forward_batch(np.array(xs, dtype=np.int64)).tolist()
    proofs = [direct_backend.prove(c, x, PAYEE) for x in xs]
    assert [p.output_fixed for p in proofs] == ref
    assert all(p.public_signals == m.public_signals(x, p.output_fixed, PAYEE) for p, x in zip(proofs, xs, strict=True))
    assert all(direct_backend.verify(c, p) for p in proofs[:4])
    p = proofs[3]
    y2 = [p.output_fixed[0] + 1, *p.output_fixed[1:]]
    assert not direct_backend.verify(c, replace(p, output_fixed=y2, public_signals=m.public_signals(xs[3], y2, PAYEE)))
    stolen = m.public_signals(xs[3], p.output_fixed, OTHER)
    assert not direct_backend.verify(c, replace(p, payee=OTHER, public_signals=stolen))


def test_same_public_signals_as_the_circom_circuit(direct_backend: Groth16Backend, groth16_backend: Groth16Backend,
                                                   direct_circuits: dict[tuple[str, bool], Path],
                                                   risk_circuit: Path, risk_circuit_unpacked: Path) -> None:
    for packed, theirs in ((True, risk_circuit), (False, risk_circuit_unpacked)):
        ours = direct_circuits[("risk", packed)]
        for x in _inputs(_qm("risk"), 5, 13):
            a, b = direct_backend.prove(ours, x, PAYEE), groth16_backend.prove(theirs, x, PAYEE)
            assert a.public_signals == b.public_signals and a.output_fixed == b.output_fixed


def test_self_check_refuses_a_wrong_witness(direct_backend: Groth16Backend,
                                            direct_circuits: dict[tuple[str, bool], Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """snarkjs proves any witness; the daemon's verification of the fresh proof is what turns a
    lowering bug into an error at prove time (a flipped bit here stands for such a bug)."""
    c = direct_circuits[("risk", True)]
    plan = direct_backend.load(c).plan
    assert plan is not None
    honest = plan.witness

    def broken(x: list[int], payee: int) -> tuple[U64, list[int]]:
        w, y = honest(x, payee)
        return _flip(w, int(plan.steps[0].bits1.wires[0])), y

    monkeypatch.setattr(plan, "witness", broken)
    with pytest.raises(BackendError, match="does not satisfy the circuit"):
        direct_backend.prove(c, [1] * 8, PAYEE)
    monkeypatch.undo()
    assert direct_backend.prove(c, [1] * 8, PAYEE).output_fixed


def test_on_chain_verifier_accepts_direct_proofs(anvil: Anvil, direct_backend: Groth16Backend,
                                                 direct_circuits: dict[tuple[str, bool], Path]) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    sender = w3.eth.accounts[0]
    for (model, packed), c in direct_circuits.items():
        m = Manifest.load(c)
        art = json.loads(m.path(c, "verifier_json").read_text())
        tx = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": sender, "data": art["bytecode"], "gas": 3_000_000}))
        verifier = w3.eth.contract(address=tx["contractAddress"], abi=art["abi"])
        qm = QuantizedModel.load(c / m.files["quantized"])
        x = _inputs(qm, 4, 17)[3]
        p = direct_backend.prove(c, x, PAYEE)
        words = decode(["uint256[2]", "uint256[2][2]", "uint256[2]"], bytes.fromhex(p.calldata[2:]))
        signals = [int(s) for s in p.public_signals]

        def call(sig: list[int], verifier: object = verifier, words: object = words) -> bool:
            return bool(verifier.functions.verifyProof(*words, sig).call({"gas": VERIFY_GAS}))  # type: ignore[attr-defined]

        assert call(signals), (model, packed)
        assert not call([signals[0] + 1, *signals[1:]])
        assert not call([*signals[:-1], (signals[-1] + 1) % PRIME])
        stolen = [int(s) for s in m.public_signals(x, p.output_fixed, OTHER)]
        assert stolen != signals and not call(stolen)


def test_oracle_fulfils_with_a_direct_proof(chain: Chain, deployment: Deployment, direct_backend: Groth16Backend,
                                            direct_circuits: dict[tuple[str, bool], Path]) -> None:
    """The vault's risk request fulfilled through the oracle with a proof of the direct circuit."""
    c = direct_circuits[("risk", True)]
    p = setup_protocol(chain, deployment, c)
    chain.transact(p.vault.functions.requestRebalance())
    rid = last_request_id(p)
    relayer = account_chain(chain, 3)
    payee = account_chain(chain, 4).account.address  # type: ignore[union-attr]
    proof = direct_backend.prove(c, request_input(p, rid), payee)
    oracle_r = relayer.contract("InferenceOracle", deployment.oracle)
    bad = [proof.output_fixed[0] + 1, *proof.output_fixed[1:]]
    with pytest.raises(ContractError, match="InvalidProof"):
        relayer.transact(oracle_r.functions.fulfill(rid, bad, payee, HexBytes(proof.calldata)), gas=FULFIL_GAS)
    relayer.transact(oracle_r.functions.fulfill(rid, list(proof.output_fixed), payee, HexBytes(proof.calldata)),
                     gas=FULFIL_GAS)
    assert int(p.oracle.functions.requestStatus(rid).call()) == 2     # Fulfilled
    scale = Manifest.load(c).output_scale
    assert [int(p.vault.functions.lastRisk(i).call()) for i in range(3)] == \
        [min(max(o, 0) * 10**18 >> scale, 10**18) for o in proof.output_fixed]
