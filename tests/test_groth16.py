"""Groth16 backend end to end: real circom, real snarkjs, no mocks.

The risk circuit comes from the session fixture ``risk_circuit`` (compiled once, cached across
runs under .cache/test-circuits/); the small models below are compiled per run (~5 s each).
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from oracle.circuits.fixedpoint import BN254_R, to_field
from oracle.circuits.manifest import Manifest
from oracle.circuits.packing import Packing
from oracle.circuits.payee import payee_int, place_payee
from oracle.circuits.quantize import QuantizedModel
from oracle.commands import prove_file, verify_file
from oracle.proving.base import BackendError, CompileOptions, Proof, UnsupportedOperator
from oracle.proving.groth16 import Groth16Backend
from oracle.proving.groth16.calldata import encode_proof

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "contracts" / "test" / "fixtures"
PAYEE = "0x00000000000000000000000000000000000a11ce"   # the fee recipient every proof here names
OTHER = "0x000000000000000000000000000000000000b0b0"   # a copier's address


# This file keeps the circom generator covered end to end: here the conftest fixtures are its
# circuits and its compiles (the default, direct, generator's: tests/test_r1cs_direct.py and every
# other test that uses the conftest ``risk_circuit``).
@pytest.fixture(scope="module")
def groth16_backend(circom_backend: Groth16Backend) -> Groth16Backend:
    return circom_backend


@pytest.fixture(scope="module")
def risk_circuit(risk_circuit_circom: Path) -> Path:
    return risk_circuit_circom


@pytest.fixture(scope="module")
def risk_circuit_unpacked(risk_circuit_circom_unpacked: Path) -> Path:
    return risk_circuit_circom_unpacked


def _model(c: Path) -> tuple[Manifest, QuantizedModel]:
    m = Manifest.load(c)
    return m, QuantizedModel.load(c / m.files["quantized"])


def _random_inputs(m: Manifest, n: int, seed: int) -> list[list[int]]:
    lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
    rng = np.random.default_rng(seed)
    xs = [[lo] * m.input_size, [hi] * m.input_size, [0] * m.input_size]
    xs += [[int(v) for v in rng.integers(lo, hi + 1, m.input_size)] for _ in range(n // 2)]
    xs += [[int(v) for v in rng.integers(0, (1 << m.input_scale) + 1, m.input_size)]
           for _ in range(n - len(xs))]
    return xs


def test_manifest_describes_the_folder(risk_circuit: Path) -> None:
    m = Manifest.load(risk_circuit)
    m.check_circuit_id(risk_circuit)
    assert m.backend == "groth16" and m.signal_layout == "packed_outputs_then_inputs"
    assert m.packing == {"input_bits": 12, "output_bits": 12, "per_word_in": 21, "per_word_out": 21}
    assert m.stats["public_signals"] == m.n_public_signals == 2
    # the payee rides in the spare high bits of the output word: 3 outputs x 12 bits below it
    assert m.payee == {"signal": 0, "shift": 36, "extra": 0} and m.binds_payee
    assert m.input_shape == [1, 8] and m.output_shape == [1, 3]
    assert m.verifier_contract == "Groth16Verifier" and m.dev_keys
    for role in ("onnx", "r1cs", "wasm", "zkey", "pk", "vk", "verifier_sol", "verifier_json"):
        assert m.path(risk_circuit, role).is_file()
    art = json.loads(m.path(risk_circuit, "verifier_json").read_text())
    assert art["bytecode"].startswith("0x60") and any(f.get("name") == "verifyProof"
                                                      for f in art["abi"])
    assert {"snarkjs", "circom2", "solc"} <= set(m.toolchain)
    assert 0 < m.stats["constraints"] < 1024


def test_valid_proof_verifies(groth16_backend: Groth16Backend, risk_circuit: Path) -> None:
    m, qm = _model(risk_circuit)
    x = [512, 256, 0, 0, 700, 0, 256, 100]
    p = groth16_backend.prove(risk_circuit, x, PAYEE)
    assert p.output_fixed == qm.forward_batch(np.array([x]))[0].tolist()
    assert p.payee == PAYEE
    # packed: one output word, one input word, each value offset by 2^11, 12 bits apiece; the
    # payee above the outputs' 36 bits of the output word
    words = [sum((v + 2048) << (12 * i) for i, v in enumerate(vals)) for vals in (p.output_fixed, x)]
    words[0] += payee_int(PAYEE) << 36
    assert p.public_signals == [str(w) for w in words]
    assert p.calldata.startswith("0x") and len(p.calldata) == 2 + 2 * 256
    assert p.circuit_id == m.circuit_id
    assert groth16_backend.verify(risk_circuit, p)
    assert all(0 <= v <= 1 << m.output_scale for v in p.output_fixed)


@pytest.mark.parametrize("layout", ["packed", "unpacked"])
def test_circuit_equals_numpy_reference_bit_for_bit(
    groth16_backend: Groth16Backend, request: pytest.FixtureRequest, layout: str
) -> None:
    circuit = request.getfixturevalue("risk_circuit" if layout == "packed" else "risk_circuit_unpacked")
    m, qm = _model(circuit)
    assert (m.packed is not None) == (layout == "packed")
    xs = _random_inputs(m, 24, seed=11)
    # Concurrent calls also exercise the pool's thread safety.
    with ThreadPoolExecutor(4) as ex:
        proofs = list(ex.map(lambda x: groth16_backend.prove(circuit, x, PAYEE), xs))
    ref = qm.forward_batch(np.array(xs, dtype=np.int64)).tolist()
    assert [p.output_fixed for p in proofs] == ref
    assert all(groth16_backend.verify(circuit, p) for p in proofs[:4])
    assert all(p.public_signals == m.public_signals(x, p.output_fixed, PAYEE) for p, x in zip(proofs, xs, strict=True))
    # negative inputs are part of the range and must be proven too
    assert any(v < 0 for x in xs for v in x)


def test_tampering_is_rejected(groth16_backend: Groth16Backend, risk_circuit: Path) -> None:
    x = [300, 300, 300, 10, 0, 900, 124, 50]
    p = groth16_backend.prove(risk_circuit, x, PAYEE)

    bad_a = json.loads(json.dumps(p.proof))
    bad_a["pi_a"][0] = str((int(bad_a["pi_a"][0]) + 1) % BN254_R)
    assert not groth16_backend.verify(risk_circuit, replace(p, proof=bad_a,
                                                            calldata=encode_proof(bad_a)))
    # A valid proof object with calldata for another proof
    assert not groth16_backend.verify(risk_circuit, replace(p, calldata="0x" + "00" * 256))

    m = Manifest.load(risk_circuit)
    x2 = [*x[:-1], x[-1] + 1]
    sig_in = m.public_signals(x2, p.output_fixed, PAYEE)
    assert not groth16_backend.verify(risk_circuit, replace(p, input_fixed=x2))
    assert not groth16_backend.verify(risk_circuit,
                                      replace(p, input_fixed=x2, public_signals=sig_in))

    y2 = [p.output_fixed[0] ^ 1, *p.output_fixed[1:]]
    sig_out = m.public_signals(x, y2, PAYEE)
    assert not groth16_backend.verify(risk_circuit, replace(p, output_fixed=y2))
    assert not groth16_backend.verify(risk_circuit,
                                      replace(p, output_fixed=y2, public_signals=sig_out))
    swapped = p.public_signals[::-1]          # [input word, output word]
    assert swapped != p.public_signals
    assert not groth16_backend.verify(risk_circuit, replace(p, public_signals=swapped))
    assert not groth16_backend.verify(risk_circuit, replace(p, circuit_id="0x" + "11" * 32))
    assert groth16_backend.verify(risk_circuit, p)       # the original still verifies


def test_tampering_is_rejected_unpacked(groth16_backend: Groth16Backend, risk_circuit_unpacked: Path) -> None:
    """The one-signal-per-value layout still proves, verifies and rejects tampering."""
    c = risk_circuit_unpacked
    m = Manifest.load(c)
    x = [300, -300, 300, 10, 0, 900, 124, 50]
    p = groth16_backend.prove(c, x, PAYEE)
    assert m.signal_layout == "outputs_then_inputs" and m.packing is None
    # no spare bits in a one-value signal: the payee is a signal of its own after the outputs
    assert m.payee == {"signal": 3, "shift": 0, "extra": 1}
    assert p.public_signals == [str(to_field(v)) for v in [*p.output_fixed, payee_int(PAYEE), *x]]
    assert groth16_backend.verify(c, p)
    y2 = [p.output_fixed[0] + 1, *p.output_fixed[1:]]
    assert not groth16_backend.verify(c, replace(p, output_fixed=y2, public_signals=m.public_signals(x, y2, PAYEE)))
    x2 = [x[0] + 1, *x[1:]]
    sig_in = m.public_signals(x2, p.output_fixed, PAYEE)
    assert not groth16_backend.verify(c, replace(p, input_fixed=x2, public_signals=sig_in))


@pytest.mark.parametrize("layout", ["packed", "unpacked"])
def test_proof_is_bound_to_its_payee(groth16_backend: Groth16Backend, request: pytest.FixtureRequest,
                                     layout: str) -> None:
    """Front-running: a copier who names itself as the payee has no valid proof (packed: the
    payee sits in the output word's high bits; unpacked: a signal of its own), and a circuit
    that binds a payee will not prove without one."""
    c = request.getfixturevalue("risk_circuit" if layout == "packed" else "risk_circuit_unpacked")
    m = Manifest.load(c)
    x = [120, -40, 0, 512, 7, 300, 2000, -2048]
    p = groth16_backend.prove(c, x, PAYEE)
    assert groth16_backend.verify(c, p)
    stolen = replace(p, payee=OTHER, public_signals=m.public_signals(x, p.output_fixed, OTHER))
    assert stolen.public_signals != p.public_signals
    assert not groth16_backend.verify(c, stolen)
    assert not groth16_backend.verify(c, replace(p, payee=OTHER))   # signals of PAYEE claimed for OTHER
    assert not groth16_backend.verify(c, replace(p, payee=None))
    assert groth16_backend.verify(c, p)
    other = groth16_backend.prove(c, x, OTHER)          # the copier's own proof is another proof
    assert other.output_fixed == p.output_fixed and other.public_signals != p.public_signals
    assert groth16_backend.verify(c, other)
    with pytest.raises(BackendError, match="binds a payee"):
        groth16_backend.prove(c, x)
    with pytest.raises(BackendError, match="not a 20-byte hex address"):
        groth16_backend.prove(c, x, "0x1234")


def test_packed_costs_few_constraints_and_two_signals(risk_circuit: Path, risk_circuit_unpacked: Path) -> None:
    """Unpacking the input words replaces the per-input range checks one for one; what packing
    adds is the outputs' range check (n_out * output_bits bits), for 10 public signals fewer
    (the unpacked layout also spends a signal on the payee, the packed one fits it in the
    output word)."""
    packed, plain = Manifest.load(risk_circuit), Manifest.load(risk_circuit_unpacked)
    assert plain.stats["public_signals"] == 12 and packed.stats["public_signals"] == 2
    extra = packed.stats["constraints"] - plain.stats["constraints"]
    assert 0 <= extra <= packed.output_size * packed.output_bits + 8, extra
    src = (risk_circuit / packed.files["circom"]).read_text()
    assert "UnpackSigned(8, 12)" in src and "PackSigned(3, 12)" in src


def test_packed_signals_reject_out_of_range_claims(groth16_backend: Groth16Backend, risk_circuit: Path) -> None:
    """A claimed output outside output_bits has no packed encoding: rejected with the reason,
    and never by carrying into the neighbouring value."""
    m = Manifest.load(risk_circuit)
    p = groth16_backend.prove(risk_circuit, [10] * 8, PAYEE)
    carry = [p.output_fixed[0] + 4096, p.output_fixed[1] - 1, p.output_fixed[2]]
    assert not groth16_backend.verify(risk_circuit, replace(p, output_fixed=carry))
    assert "outside the 12-bit signed range" in (groth16_backend.mismatch(m, replace(p, output_fixed=carry)) or "")


def test_bad_inputs_raise_clear_errors(groth16_backend: Groth16Backend,
                                       risk_circuit: Path) -> None:
    m = Manifest.load(risk_circuit)
    hi = (1 << (m.input_bits - 1)) - 1
    with pytest.raises(BackendError, match="expected 8 inputs, got 7"):
        groth16_backend.prove(risk_circuit, [0] * 7, PAYEE)
    with pytest.raises(BackendError, match=r"input 2 = nan is NaN"):
        groth16_backend.prove(risk_circuit, [0, 0, float("nan"), 0, 0, 0, 0, 0], PAYEE)  # type: ignore[list-item]
    with pytest.raises(BackendError, match=rf"input 5 = {hi + 1} is outside the "
                                           rf"{m.input_bits}-bit signed range"):
        groth16_backend.prove(risk_circuit, [0, 0, 0, 0, 0, hi + 1, 0, 0], PAYEE)
    with pytest.raises(BackendError, match=r"input 0 = -\d+ is outside"):
        groth16_backend.prove(risk_circuit, [-hi - 2, 0, 0, 0, 0, 0, 0, 0], PAYEE)
    with pytest.raises(BackendError, match="not an integer"):
        groth16_backend.prove(risk_circuit, [0.5, 0, 0, 0, 0, 0, 0, 0], PAYEE)  # type: ignore[list-item]


def test_prove_file_and_verify_file(risk_circuit: Path, tmp_path: Path) -> None:
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps({"input": [[0.3, 0.3, 0.2, 0.0, 0.25, 0.0, 0.2, 0.1]]}))
    out = tmp_path / "PROOF.json"
    with pytest.raises(BackendError, match="--payee"):      # the circuit binds one: say so
        prove_file(risk_circuit, inp, out)
    doc = prove_file(risk_circuit, inp, out, PAYEE)
    m = Manifest.load(risk_circuit)
    assert doc["input_fixed"] == [round(v * (1 << m.input_scale))
                                  for v in [0.3, 0.3, 0.2, 0.0, 0.25, 0.0, 0.2, 0.1]]
    assert set(json.loads(out.read_text())) >= {
        "output", "output_fixed", "input_fixed", "public_signals", "proof", "calldata",
        "circuit_id", "backend", "payee"}
    assert doc["payee"] == PAYEE
    assert verify_file(risk_circuit, out) == (True, "valid")

    def altered(key: str, change: object) -> tuple[bool, str]:
        d = json.loads(out.read_text())
        d[key] = change(d[key]) if callable(change) else change
        f = tmp_path / f"bad_{key}.json"
        f.write_text(json.dumps(d))
        return verify_file(risk_circuit, f)

    assert altered("output", lambda v: [v[0] + 0.5, *v[1:]])[0] is False
    assert altered("output_fixed", lambda v: [v[0] + 1, *v[1:]])[0] is False
    assert altered("input_fixed", lambda v: [v[0] + 1, *v[1:]])[0] is False
    assert altered("input", lambda v: [v[0] + 0.5, *v[1:]])[0] is False
    assert altered("public_signals", lambda v: [v[-1], *v[:-1]])[0] is False
    assert altered("payee", OTHER)[0] is False
    assert altered("proof", lambda v: {**v, "pi_c": [v["pi_a"][0], v["pi_a"][1], "1"]})[0] \
        is False
    assert altered("calldata", lambda v: v[:-2] + ("00" if v[-2:] != "00" else "01"))[0] is False
    ok, reason = altered("circuit_id", "0x" + "00" * 32)
    assert not ok and "circuit" in reason

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"input": [0.1] * 5}))
    with pytest.raises(BackendError, match="expected 8 inputs, got 5"):
        prove_file(risk_circuit, wrong, tmp_path / "x.json", PAYEE)


def test_dead_prover_is_restarted(risk_circuit: Path) -> None:
    backend = Groth16Backend(pool_size=1)
    try:
        x = [10] * 8
        p1 = backend.prove(risk_circuit, x, PAYEE)
        (pid,) = backend.pool.pids()
        os.kill(pid, signal.SIGKILL)        # a daemon this test started
        p2 = backend.prove(risk_circuit, x, PAYEE)
        assert p2.output_fixed == p1.output_fixed and backend.pool.pids() != [pid]
        assert backend.verify(risk_circuit, p2)
    finally:
        backend.close()


def _small_model(tmp: Path) -> Path:
    """5 -> 7 (Gemm, Relu) -> 2 (MatMul + Add), random weights: no hand edits anywhere."""
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.8, (7, 5)).astype(np.float32), "W1"),
        numpy_helper.from_array(rng.normal(0, 0.3, 7).astype(np.float32), "B1"),
        numpy_helper.from_array(rng.normal(0, 0.8, (7, 2)).astype(np.float32), "W2"),
        numpy_helper.from_array(rng.normal(0, 0.3, 2).astype(np.float32), "B2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["a"], name="act"),
        helper.make_node("MatMul", ["a", "W2"], ["m"], name="fc2"),
        helper.make_node("Add", ["m", "B2"], ["y"], name="bias2"),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    p = tmp / "small.onnx"
    onnx.save(model, str(p))
    return p


def test_third_model_compiles_proves_verifies(groth16_backend: Groth16Backend,
                                              tmp_path: Path) -> None:
    onnx_path = _small_model(tmp_path)
    rng = np.random.default_rng(9)
    calib = rng.uniform(-1, 1, (64, 5))
    (tmp_path / "calib.json").write_text(json.dumps({"input": calib.tolist()}))
    out = tmp_path / "small-groth16"
    m = groth16_backend.compile(onnx_path, out, CompileOptions(
        calibration=tmp_path / "calib.json", cache_dir=ROOT / ".cache"))
    assert m.input_size == 5 and m.output_size == 2 and m.name == "small"
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for xf in calib[:4]:
        x = [round(v * (1 << m.input_scale)) for v in xf]
        p = groth16_backend.prove(out, x, PAYEE)
        assert groth16_backend.verify(out, p)
        want = sess.run(None, {"x": xf.astype(np.float32)[None]})[0][0]
        got = np.array(p.output_fixed) / (1 << m.output_scale)
        assert np.allclose(got, want, atol=0.05)
        assert not groth16_backend.verify(out, replace(p, output_fixed=[p.output_fixed[0] + 1,
                                                                        p.output_fixed[1]]))


def test_unsupported_operator_fails_compile(groth16_backend: Groth16Backend,
                                            tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
         helper.make_node("Softmax", ["h"], ["p"], name="probs", axis=1),     # only allowed last
         helper.make_node("Neg", ["p"], ["y"], name="neg")],
        "sm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "sm.onnx"))
    with pytest.raises(UnsupportedOperator, match=r"'Softmax' \(node 'probs'\)"):
        groth16_backend.compile(tmp_path / "sm.onnx", tmp_path / "out", CompileOptions())
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_checked_in_solidity_fixture_verifies(groth16_backend: Groth16Backend) -> None:
    """contracts/test/fixtures/risk_groth16.json must match its verification key."""
    fx = json.loads((FIXTURES / "risk_groth16.json").read_text())
    vk = FIXTURES / "risk_groth16_vk.json"
    # one signal per value, the payee a signal of its own right after the outputs
    assert fx["payee_slot"] == {"signal": len(fx["output"]), "shift": 0, "extra": 1}
    assert fx["public_signals"] == [str(to_field(v)) for v in [*fx["output"], payee_int(fx["payee"]), *fx["input"]]]
    assert len(fx["proof"]) == 2 + 512
    assert fx["proof"] == encode_proof(fx["proof_json"])
    resp = groth16_backend.pool.request({"cmd": "verify", "vk": str(vk),
                                         "proof": fx["proof_json"],
                                         "publicSignals": fx["public_signals"]})
    assert resp["valid"] is True
    sol = (FIXTURES / "RiskGroth16Verifier.sol").read_text()
    assert "contract Groth16Verifier" in sol
    # the Solidity verifier embeds the same key: compare one constant (delta x1)
    delta = json.loads(vk.read_text())["vk_delta_2"][0][1]
    assert delta in sol


def test_checked_in_packed_solidity_fixture_verifies(groth16_backend: Groth16Backend) -> None:
    """contracts/test/fixtures/risk_groth16_packed.json: packed words of its values, valid for its key."""
    fx = json.loads((FIXTURES / "risk_groth16_packed.json").read_text())
    vk = FIXTURES / "risk_groth16_packed_vk.json"
    packing = Packing.from_dict(fx["packing"])
    # the payee in the spare high bits of the (only) output word
    assert fx["payee_slot"] == {"signal": 0, "shift": 3 * packing.output_bits, "extra": 0}
    words = place_payee(list(packing.signals(fx["input"], fx["output"])), fx["payee_slot"], payee_int(fx["payee"]))
    assert fx["public_signals"] == [str(w) for w in words]
    assert len(fx["batch"]) == 16 and any(v < 0 for e in fx["batch"] for v in e["input"])
    assert fx["proof"] == encode_proof(fx["proof_json"])
    resp = groth16_backend.pool.request({"cmd": "verify", "vk": str(vk), "proof": fx["proof_json"],
                                         "publicSignals": fx["public_signals"]})
    assert resp["valid"] is True
    sol = (FIXTURES / "RiskGroth16PackedVerifier.sol").read_text()
    assert "contract RiskPackedGroth16Verifier" in sol
    assert json.loads(vk.read_text())["vk_delta_2"][0][1] in sol
    assert json.loads(vk.read_text())["nPublic"] == 2


def test_proof_dataclass_shape(groth16_backend: Groth16Backend, risk_circuit: Path) -> None:
    p = groth16_backend.prove(risk_circuit, [1] * 8, PAYEE)
    assert isinstance(p, Proof) and p.backend == "groth16" and p.prove_seconds > 0 and p.payee == PAYEE


def test_conv_residual_clip_model(groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    """Conv -> Relu -> Reshape -> Gemm -> Clip(lo) -> MatMul + residual Add -> Clip(hi)."""
    rng = np.random.default_rng(1)

    def t(a: object, n: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, np.float32), n)

    inits = [t(rng.normal(0, .5, (2, 1, 3, 3)), "K"), t(rng.normal(0, .1, 2), "KB"),
             t(rng.normal(0, .5, (3, 4)), "W"), t(rng.normal(0, .1, 3), "B"),
             t(rng.normal(0, .5, (3, 3)), "W2"), t(-0.3, "lo"), t(0.5, "hi"),
             numpy_helper.from_array(np.array([1, 4], np.int64), "shp")]
    nodes = [
        helper.make_node("Conv", ["x", "K", "KB"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shp"], ["fl"], name="flat"),
        helper.make_node("Gemm", ["fl", "W", "B"], ["g"], name="fc", transB=1),
        helper.make_node("Clip", ["g", "lo", ""], ["gc"], name="clip_lo"),
        helper.make_node("MatMul", ["gc", "W2"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "gc"], ["res"], name="residual"),
        helper.make_node("Clip", ["res", "", "hi"], ["y"], name="clip_hi"),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "cnn.onnx"))
    calib = rng.uniform(-1, 1, (64, 12))
    (tmp_path / "c.json").write_text(json.dumps({"input": calib.tolist()}))
    out = tmp_path / "cnn-groth16"
    m = groth16_backend.compile(tmp_path / "cnn.onnx", out, CompileOptions(
        calibration=tmp_path / "c.json", cache_dir=ROOT / ".cache"))
    sess = ort.InferenceSession(str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"])
    lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
    xs = [[round(v * (1 << m.input_scale)) for v in calib[0]],
          [int(v) for v in rng.integers(lo, hi + 1, 12)], [lo] * 12, [hi] * 12]
    for x in xs:
        p = groth16_backend.prove(out, x, PAYEE)   # raises if circuit != numpy reference
        assert groth16_backend.verify(out, p)
        xf = (np.array(x, np.float32) / (1 << m.input_scale)).reshape(1, 1, 3, 4)
        want = sess.run(None, {"x": xf})[0][0]
        assert np.allclose(np.array(p.output_fixed) / (1 << m.output_scale), want, atol=0.02)
