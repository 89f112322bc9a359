"""Sliced models (oracle.proving.groth16.slices / sliced, oracle.circuits.slicing): slice circuits
checked by the real snarkjs, real proofs, and every way of stitching slices that is not one
computation of the model on the request's input refused.

Models: the residual MLP of tests/sliced_model.py (its last layer reads the first hidden layer, so
some cuts carry an older base) and the 'kinds' model of test_r1cs_direct (every neuron case).
Compiled folders are cached in .cache/test-circuits/sliced-* and reused while every slice's .r1cs
is byte-identical to what the current code writes (so the keys still match the circuits).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from oracle.circuits.manifest import ManifestError
from oracle.circuits.packing import n_words
from oracle.circuits.quantize import QuantizedModel, quantize_onnx
from oracle.circuits.slicing import SlicingError, boundary, check_cuts, model_id
from oracle.proving.base import BackendError, CompileOptions
from oracle.proving.groth16 import sliced
from oracle.proving.groth16.pool import ProverPool
from oracle.proving.groth16.r1cs_writer import (
    PRIME,
    int_limbs,
    limbs_to_ints,
    unsatisfied,
    write_r1cs,
    write_wtns,
)
from oracle.proving.groth16.slices import SlicePlan, activations
from tests.sliced_model import mlp_onnx
from tests.test_poseidon import wtns_check
from tests.test_r1cs_direct import _inputs, _qm

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "test-circuits"
PAYEE = "0x00000000000000000000000000000000000a11ce"
OTHER = "0x000000000000000000000000000000000000b0b0"


def _mlp() -> tuple[QuantizedModel, Path, Path]:
    onnx_path, calib = mlp_onnx(CACHE / "sliced-src")
    qm = quantize_onnx(onnx_path, np.array(json.loads(calib.read_text())["input"], dtype=np.float64))
    return qm, onnx_path, calib


def _slicings(n_layers: int) -> list[list[int]]:
    return [[0, *inner, n_layers] for k in range(2, n_layers + 1)
            for inner in itertools.combinations(range(1, n_layers), k - 1)]


# -- slice circuits, no setup ------------------------------------------------------------------
@pytest.mark.parametrize("model", ["mlp", "kinds"])
def test_every_slicing_chains_to_the_reference(model: str) -> None:
    """Every way to cut the model: honest slice witnesses satisfy their rows, the public signals
    are what the verifier rebuilds, c_j out of slice j-1 is c_j into slice j, and the last slice
    outputs the integer reference bit for bit; the cost model predicts every row count."""
    qm = _mlp()[0] if model == "mlp" else _qm("kinds")
    cost = sliced.CostModel(qm)
    for cuts in _slicings(len(qm.layers)):
        plans = [SlicePlan(qm, cuts, j) for j in range(len(cuts) - 1)]
        css = [p.constraints() for p in plans]
        assert [cost(a, e) for a, e in itertools.pairwise(cuts)] == [cs.n_constraints for cs in css]
        for x in _inputs(qm, 5, 3):
            ref = activations(qm, x)
            ws = [p.witness_from(ref, 0xBEEF) for p in plans]
            for cs, w in zip(css, ws, strict=True):
                full = limbs_to_ints(w.witness)
                assert unsatisfied(cs, full) == []
                assert full[1:1 + cs.n_public] == w.public
            assert [a.commit_out for a in ws[:-1]] == [b.commit_in for b in ws[1:]]
            assert ws[-1].outputs == [int(v) for v in qm.forward_batch(np.array([x]))[0]]


def test_a_residual_base_is_carried_across_cuts() -> None:
    qm = _mlp()[0]
    assert {b for b in qm.layers[3].terms} == {1, 3}
    bd = boundary(qm, [0, 1, 2, 3, 4], 3)
    assert bd.bases == (1, 3) and bd.n_values == 32
    assert boundary(qm, [0, 1, 4], 1).bases == (1,)


def test_snarkjs_accepts_honest_slices_and_refuses_a_substituted_activation(tmp_path: Path) -> None:
    """A consumer slice fed another activation cannot keep the producer's commitment: with every
    wire after the change recomputed honestly and c_j kept, snarkjs' own check fails."""
    qm = _mlp()[0]
    cuts = [0, 1, 2, 4]
    x = _inputs(qm, 4, 5)[3]
    ref = activations(qm, x)
    for j in range(3):
        plan = SlicePlan(qm, cuts, j)
        write_r1cs(tmp_path / f"s{j}.r1cs", plan.constraints())
        write_wtns(tmp_path / f"s{j}.wtns", plan.witness_from(ref, 0xBEEF).witness)
        assert wtns_check(tmp_path / f"s{j}.r1cs", tmp_path / f"s{j}.wtns")
    plan = SlicePlan(qm, cuts, 1)
    honest = plan.witness_from(ref, 0xBEEF)
    lie = [a.copy() for a in ref]
    lie[1][4] += 1                                  # one boundary value, everything after recomputed
    forged = plan.witness_from(lie, 0xBEEF)
    assert forged.commit_in != honest.commit_in
    w = forged.witness.copy()
    w[int(plan.in_wires[0])] = int_limbs([honest.commit_in])[0]       # claim the producer's c_1
    write_wtns(tmp_path / "forged.wtns", w)
    assert not wtns_check(tmp_path / "s1.r1cs", tmp_path / "forged.wtns")
    # an aliasing attempt: value i + 2^b and value i+1 - 1 pack to the same word; the bits refuse
    assert plan.b_in is not None
    b = plan.b_in.bits
    alias = limbs_to_ints(honest.witness)
    alias[int(plan.bin_x[0])] += 1 << b
    alias[int(plan.bin_x[1])] -= 1
    assert unsatisfied(plan.constraints(), [v % PRIME for v in alias]) != []


def test_commitments_differ_between_requests() -> None:
    qm = _mlp()[0]
    cuts = [0, 2, 4]
    xs = _inputs(qm, 5, 9)
    c1 = {SlicePlan(qm, cuts, 0).witness_from(activations(qm, x)).commit_out for x in xs}
    assert len(c1) == len(xs)


def test_cut_choice() -> None:
    qm = _mlp()[0]
    cost = sliced.CostModel(qm)
    for k in (2, 3, 4):
        cuts = sliced.choose_cuts(qm, k)
        assert len(cuts) == k + 1
        worst = max(cost(a, e) for a, e in itertools.pairwise(cuts))
        # balanced: no other slicing into k has a smaller largest slice
        assert all(worst <= max(cost(a, e) for a, e in itertools.pairwise(c))
                   for c in _slicings(4) if len(c) == k + 1)
    cuts = sliced.choose_cuts(qm, slice_constraints=1800)
    assert max(cost(a, e) for a, e in itertools.pairwise(cuts)) <= 1800
    assert sliced.choose_cuts(qm, "auto") == [0, 2, 4]       # the fewest slices (>= 2) that fit
    with pytest.raises(SlicingError, match="costliest single layer"):
        sliced.choose_cuts(qm, slice_constraints=500)
    with pytest.raises(SlicingError, match="cannot cut 4 layers into 5"):
        sliced.choose_cuts(qm, 5)
    with pytest.raises(SlicingError, match="not 0 < c_1"):
        check_cuts(qm, [0, 2, 2, 4])
    with pytest.raises(SlicingError, match="must be a number"):
        sliced.choose_cuts(qm, "many")


def test_model_id_covers_every_slice_in_order() -> None:
    a, b = "0x" + "11" * 32, "0x" + "22" * 32
    assert model_id([a, b]) != model_id([b, a])
    assert model_id([a, b]) != model_id([a, b, b])
    with pytest.raises(SlicingError):
        model_id([a])


# -- compiled, real proofs ------------------------------------------------------------------------
def _compiled(name: str, cuts: list[int]) -> Path:
    qm, onnx_path, calib = _mlp()
    out = CACHE / name
    try:
        sm = sliced.load(out)
        fresh = sm.cuts == cuts
        for j, d in enumerate(sm.dirs):
            tmp = out / f".check{j}.r1cs"
            write_r1cs(tmp, SlicePlan(qm, cuts, j).constraints())
            fresh = fresh and tmp.read_bytes() == (d / sliced.SLICE_FILES["r1cs"]).read_bytes()
            tmp.unlink()
        if fresh:
            return out
    except (ManifestError, FileNotFoundError, BackendError):
        pass
    sliced.compile_sliced(onnx_path, out, CompileOptions(calibration=calib, name=name), cuts=cuts)
    return out


@pytest.fixture(scope="module")
def pool() -> Iterator[ProverPool]:
    with ProverPool(2) as p:
        yield p


@pytest.fixture(scope="module")
def k3() -> Path:
    return _compiled("sliced-mlp-k3", [0, 1, 2, 4])


@pytest.fixture(scope="module")
def k2() -> Path:
    return _compiled("sliced-mlp-k2", [0, 2, 4])


@pytest.fixture(scope="module")
def proofs(k3: Path, pool: ProverPool) -> list[sliced.SlicedProof]:
    qm = sliced.load(k3).qm
    xs = _inputs(qm, 5, 11)[3:]
    return [sliced.prove_sliced(k3, x, PAYEE, pool) for x in xs]


def test_folder_manifest_and_one_ceremony(k3: Path) -> None:
    sm = sliced.load(k3)
    m = sm.manifest
    assert m.slices is not None and [s["layers"] for s in m.slices] == [[0, 1], [1, 2], [2, 4]]
    assert m.circuit_id == model_id([s["circuit_id"] for s in m.slices])
    vks = [json.loads(sm.vk(j).read_text()) for j in range(3)]
    # one ptau: alpha, beta (and snarkjs' gamma) shared; delta per slice
    for key in ("vk_alpha_1", "vk_beta_2", "vk_gamma_2"):
        assert len({json.dumps(v[key]) for v in vks}) == 1
    assert len({json.dumps(v["vk_delta_2"]) for v in vks}) == 3
    assert m.payee is not None
    n_in = n_words(m.input_size, m.input_bits)
    n_out = n_words(m.output_size, m.output_bits) + m.payee["extra"]
    assert [v["nPublic"] for v in vks] == [1 + n_in, 2, n_out + 1]


def test_proofs_chain_and_equal_the_reference(k3: Path, proofs: list[sliced.SlicedProof], pool: ProverPool) -> None:
    sm = sliced.load(k3)
    for p in proofs:
        assert p.output_fixed == [int(v) for v in sm.qm.forward_batch(np.array([p.input_fixed]))[0]]
        assert len(p.commitments) == 2 and len(p.proofs) == 3
        assert sliced.why_not(k3, p.input_fixed, p.output_fixed, PAYEE, p.commitments, p.proofs, pool) is None
        assert len(bytes.fromhex(p.calldata[2:])) == sliced.proof_bytes(3)
        print(f"per-slice prove (ms): {[round(ms.get('prove', 0)) for ms in p.slice_ms]}")
    assert proofs[0].commitments[0] != proofs[1].commitments[0]


def test_refusals(k3: Path, k2: Path, proofs: list[sliced.SlicedProof], pool: ProverPool) -> None:
    a, b = proofs
    x, y, c, pr = a.input_fixed, a.output_fixed, a.commitments, a.proofs

    def why(**kw: object) -> str | None:
        args: dict[str, object] = {"input_fixed": x, "output_fixed": y, "payee": PAYEE, "commitments": c,
                                   "proofs": pr}
        args.update(kw)
        return sliced.why_not(k3, pool=pool, **args)  # type: ignore[arg-type]

    # slices of the right circuits but from two requests: with either request's commitments
    mixed = [pr[0], b.proofs[1], b.proofs[2]]
    assert "slice 0" in str(why(proofs=mixed, commitments=b.commitments))
    assert "slice 1" in str(why(proofs=mixed))
    # commitments that do not chain
    assert why(commitments=[c[0], b.commitments[1]]) is not None
    assert why(commitments=[c[0] + 1, c[1]]) is not None
    assert "canonical" in str(why(commitments=[c[0] + PRIME, c[1]]))
    # wrong order, missing slice, missing commitment
    assert "slice 1" in str(why(proofs=[pr[0], pr[2], pr[1]]))
    assert "2 slice proofs" in str(why(proofs=pr[:2]))
    assert "1 boundary commitments" in str(why(commitments=c[:1]))
    # another output, another payee, another input
    assert "slice 2" in str(why(output_fixed=[y[0] + 1, *y[1:]]))
    assert "slice 2" in str(why(payee=OTHER))
    assert "slice 0" in str(why(input_fixed=b.input_fixed))
    # a slice of another model (same layers, other keys): the k=2 model's first slice
    other = sliced.prove_sliced(k2, x, PAYEE, pool)
    assert other.output_fixed == y
    assert "slice 0" in str(why(proofs=[other.proofs[0], pr[1], pr[2]]))
    assert sliced.why_not(k2, x, y, PAYEE, other.commitments, other.proofs, pool) is None
    assert sliced.why_not(k2, x, y, PAYEE, other.commitments, [pr[0], other.proofs[1]], pool) is not None


def test_a_slice_reproven_on_another_activation_is_refused(k3: Path, proofs: list[sliced.SlicedProof],
                                                           pool: ProverPool, tmp_path: Path) -> None:
    """A valid proof of slice 1 for another boundary activation (its own c_1', c_2') does not
    stitch: with the honest commitments it fails, with its own the neighbours fail."""
    sm = sliced.load(k3)
    a = proofs[0]
    ref = activations(sm.qm, a.input_fixed)
    lie = [v.copy() for v in ref]
    lie[1][0] += 1
    w = sm.plans[1].witness_from(lie)
    write_wtns(tmp_path / "lie.wtns", w.witness)
    resp = pool.request({"cmd": "prove_wtns", "wtns": str(tmp_path / "lie.wtns"), "zkey": str(sm.zkey(1)),
                         "vk": str(sm.vk(1))})
    assert resp["valid"] is True                    # a real proof, of another computation
    forged = [a.proofs[0], resp["proof"], a.proofs[2]]
    assert "slice 1" in str(sliced.why_not(k3, a.input_fixed, a.output_fixed, PAYEE, a.commitments, forged, pool))
    assert w.commit_in is not None and w.commit_out is not None
    assert "slice 0" in str(sliced.why_not(k3, a.input_fixed, a.output_fixed, PAYEE,
                                           [w.commit_in, w.commit_out], forged, pool))


def test_cli_refuses_bad_slicing_flags(tmp_path: Path) -> None:
    from tests.test_cli import oracle

    onnx_path = mlp_onnx(CACHE / "sliced-src")[0]
    r = oracle("models", "compile", str(onnx_path), "--backend", "groth16", "--slices", "1", "--out", str(tmp_path))
    assert r.returncode == 2 and "at least 2 slices" in r.stderr
    r = oracle("models", "compile", str(onnx_path), "--backend", "ezkl", "--slices", "2", "--out", str(tmp_path))
    assert r.returncode == 2 and "need --backend groth16" in r.stderr, r.stderr
    r = oracle("models", "compile", str(onnx_path), "--backend", "groth16", "--slice-constraints", "100",
               "--out", str(tmp_path))
    assert r.returncode == 2 and "costliest single layer" in r.stderr, r.stderr
    assert not (tmp_path / "manifest.json").exists()


def test_cli_proves_and_verifies_a_sliced_folder(k3: Path, tmp_path: Path) -> None:
    """``oracle prove`` / ``oracle verify`` take a sliced folder like any circuit folder (they
    said "no file with role 'wasm'" before): the proof equals the integer reference, verifies,
    and a changed output or payee is refused naming the slice that fails."""
    from tests.test_cli import oracle

    sm = sliced.load(k3)
    m = sm.manifest
    x = _inputs(sm.qm, 1, 23)[0]
    (tmp_path / "in.json").write_text(json.dumps({"input_fixed": x}))
    r = oracle("prove", str(k3), "--input", str(tmp_path / "in.json"), "--out", str(tmp_path / "p.json"),
               "--payee", PAYEE)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["output_fixed"] == [int(v) for v in sm.qm.forward_batch(np.array([x]))[0]]
    assert doc["circuit_id"] == m.circuit_id and doc["payee"] == PAYEE
    r = oracle("verify", str(k3), str(tmp_path / "p.json"))
    assert r.returncode == 0 and "valid" in r.stdout, (r.stdout, r.stderr)

    def refused(**change: object) -> str:
        bad = dict(doc, **change)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        r = oracle("verify", str(k3), str(tmp_path / "bad.json"))
        assert r.returncode == 1, (r.stdout, r.stderr)
        return str(r.stdout + r.stderr)

    y = [doc["output_fixed"][0] + 1, *doc["output_fixed"][1:]]
    assert "slice 2" in refused(output_fixed=y, output=[v / 2 ** m.output_scale for v in y])
    assert "slice 2" in refused(payee=OTHER)
