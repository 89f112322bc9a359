"""Sliced Groth16 models: compile k slice circuits on one ceremony, prove them in parallel,
verify that they chain into one computation (docs/sliced-models.md).

Folder::

    manifest.json           the model's manifest: circuit_id = model id (slicing.model_id over
                            the slices' circuit ids), packing and payee of today's packed
                            circuits, ``slices`` = [{"circuit_id", "layers": [from, to], "dir"}]
    model.onnx, calibration.json, quantized.json
    slices/<j>/             one direct circuit per slice: model.r1cs, model.zkey,
                            verification_key.json, Verifier.sol, verifier.json, slice.json

Every slice is set up from the SAME ptau file (the largest slice's power, or ``--ptau``), so all
share alpha and beta (gamma is snarkjs' G2 generator): the on-chain adapter batches their pairing
checks. Proof bytes on-chain: ``abi.encode(uint256[] commitments, uint256[8][] proofs)`` with
c_1..c_{k-1} and the k proofs in the 8-word layout of ``calldata.proof_words``.

``verify_sliced`` rebuilds every slice's public signals from (input, output, payee,
commitments) and checks each proof under its own slice's key; so proofs from two requests, a
slice re-proven on another activation, commitments that do not chain, slices in the wrong order,
a missing slice or a slice of another model are all refused (tests/test_sliced.py).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_abi.abi import encode

from oracle.circuits.fixedpoint import BN254_R
from oracle.circuits.manifest import PACKED_LAYOUT, Manifest, ManifestError, circuit_id_of
from oracle.circuits.packing import Packing, PackingError, check_range, pack
from oracle.circuits.payee import PayeeError, normalize, payee_int, place_payee
from oracle.circuits.quantize import QuantizedModel, QuantSettings, quantize_for_compile
from oracle.circuits.slicing import (
    Boundary,
    SlicingError,
    balanced_cuts,
    boundary_at,
    check_cuts,
    cuts_for_target,
    model_id,
)
from oracle.proving.base import BackendError, CompileOptions
from oracle.proving.groth16 import poseidon, ptau, tools
from oracle.proving.groth16.calldata import proof_words
from oracle.proving.groth16.circuit import payee_slot
from oracle.proving.groth16.lowering import Plan
from oracle.proving.groth16.pool import ProverPool, SnarkjsError
from oracle.proving.groth16.r1cs_writer import write_r1cs, wtns_bytes
from oracle.proving.groth16.slices import SlicePlan, activations
from oracle.proving.groth16.solidity import compile_verifier

log = logging.getLogger(__name__)

GENERATOR = "direct-sliced"
ADAPTER = "SlicedGroth16Adapter"       # contracts/verifiers/SlicedGroth16Adapter.sol
SLICES_DIR = "slices"
SLICE_MANIFEST = "slice.json"
SLICE_FILES = {"r1cs": "model.r1cs", "zkey": "model.zkey", "vk": "verification_key.json",
               "verifier_sol": "Verifier.sol", "verifier_json": "verifier.json"}
TOP_FILES = {"onnx": "model.onnx", "calibration": "calibration.json", "quantized": "quantized.json"}
AUTO_POWER = 16            # --slices auto: every slice fits 2^16 rows (the largest cached ceremony)
VERIFIER_CONTRACT = "Groth16Verifier"


class SlicedProofError(BackendError):
    """A sliced proof that cannot be for this model, input, output and payee."""


# -- cost model: rows per slice, from the lowering's own plan -----------------------------------
@lru_cache(maxsize=1)
def rows_per_call() -> int:
    """Rows of one 16-input Poseidon call in this gadget (measured once)."""
    cs, _, _ = poseidon.standalone(poseidon.RATE)
    return cs.n_constraints - 1


def _step_rows(plan: Plan) -> list[int]:
    """Rows each step of the whole-model plan emits (the same rows it emits inside a slice)."""
    out = []
    for st in plan.steps:
        out.append(len(st.bits1.wires) + len(st.d1) + len(st.relu) + len(st.bits2.wires)
                   + 2 * len(st.mins) + len(st.mat))
    return out


def sponge_rows(n_words: int) -> int:
    """Rows of the commitment sponge over ``n_words`` words, plus its equality row: a full call
    each, less 3 rows per S-box whose input is a constant in a call's first round (the domain
    separators j and n_values, the zero padding)."""
    calls = poseidon.calls(n_words)
    rest = max(0, n_words - poseidon.FIRST_WORDS)
    padding = (poseidon.FIRST_WORDS - min(n_words, poseidon.FIRST_WORDS)) + 2
    if calls > 1:
        padding += (calls - 1) * poseidon.NEXT_WORDS - rest
    return calls * rows_per_call() - 3 * padding + 1


def boundary_rows(bd: Boundary) -> tuple[int, int]:
    """(producer, consumer) rows of one boundary: the sponge on both sides; the consumer also
    decomposes every value into its bits (booleans, one recomposition per value and per word)."""
    sponge = sponge_rows(bd.n_words)
    return sponge, sponge + bd.n_values * bd.bits + bd.n_values + bd.n_words


class CostModel:
    """Estimated rows of any slice [a, e) of one model (exact up to a few rows)."""

    def __init__(self, qm: QuantizedModel) -> None:
        self.qm = qm
        plan = Plan(qm, True)
        self.steps = _step_rows(plan)
        b = qm.input_bits
        n_in_words = len(plan.in_sizes)
        self.input_rows = qm.input_size * b + n_in_words + qm.input_size
        n_out_words = len(plan.out_sizes)
        self.output_rows = qm.output_size * qm.output_bits + qm.output_size + n_out_words + 161 + \
            (1 if plan.payee_out >= 0 else 0)
        self._bd: dict[int, tuple[int, int]] = {}

    def boundary(self, cut: int) -> tuple[int, int]:
        if cut not in self._bd:
            self._bd[cut] = boundary_rows(boundary_at(self.qm, cut, 1))
        return self._bd[cut]

    def __call__(self, a: int, e: int) -> int:
        n_layers = len(self.qm.layers)
        rows = sum(self.steps[a:e])
        rows += self.input_rows if a == 0 else self.boundary(a)[1]
        rows += self.output_rows if e == n_layers else self.boundary(e)[0]
        return rows


def choose_cuts(qm: QuantizedModel, slices: int | str | None = None, slice_constraints: int | None = None,
                cuts: Sequence[int] | None = None, target_power: int = AUTO_POWER) -> list[int]:
    """Cut points: explicit ``cuts``; ``slices`` = N (balanced) or "auto" (the fewest slices that
    each fit 2^target_power); or ``slice_constraints`` (the fewest slices under that many rows)."""
    n_layers = len(qm.layers)
    if cuts is not None:
        return check_cuts(qm, cuts)
    cost = CostModel(qm)
    if isinstance(slices, int):
        return balanced_cuts(n_layers, slices, cost)[0]
    if slices == "auto" or slice_constraints is not None:
        # snarkjs needs constraints + public signals + 1 <= 2^power (ptau.power_for)
        limit = slice_constraints if slice_constraints is not None else (1 << target_power) - 64
        return cuts_for_target(n_layers, cost, limit)[0]
    raise SlicingError(f"--slices must be a number of slices or 'auto', not {slices!r}")


# -- compile --------------------------------------------------------------------------------------
def compile_sliced(onnx_path: Path, out_dir: Path, options: CompileOptions, *,
                   slices: int | str | None = "auto", slice_constraints: int | None = None,
                   cuts: Sequence[int] | None = None, settings: QuantSettings | None = None,
                   setup_workers: int = 2) -> Manifest:
    """Quantize ``onnx_path``, cut it, and write one sliced model folder (see module doc)."""
    t_start = time.monotonic()
    settings = settings or QuantSettings()
    qm, calib, calib_src = quantize_for_compile(onnx_path, options.calibration, settings)
    c = choose_cuts(qm, slices, slice_constraints, cuts)
    k = len(c) - 1
    try:
        packing = Packing.for_bits(qm.input_bits, qm.output_bits)
    except PackingError as e:
        raise BackendError(f"{onnx_path}: {e}") from e

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    shutil.rmtree(out_dir / SLICES_DIR, ignore_errors=True)
    shutil.copyfile(onnx_path, out_dir / TOP_FILES["onnx"])
    (out_dir / TOP_FILES["calibration"]).write_text(json.dumps({"input": calib.tolist()}) + "\n")
    qm.save(out_dir / TOP_FILES["quantized"])

    t0 = time.monotonic()
    stats: list[dict[str, Any]] = []
    for j in range(k):
        d = out_dir / SLICES_DIR / str(j)
        d.mkdir(parents=True)
        ts = time.monotonic()
        plan = SlicePlan(qm, c, j)
        cs = plan.constraints()
        size = write_r1cs(d / SLICE_FILES["r1cs"], cs)
        stats.append({"constraints": cs.n_constraints, "wires": cs.n_wires, "terms": cs.n_terms,
                      "public_signals": cs.n_public, "multiply_adds": plan.macs, "r1cs_bytes": size,
                      "lowering_seconds": round(time.monotonic() - ts, 3),
                      "power": ptau.power_for(cs.n_constraints, cs.n_public)})
    lowering_s = time.monotonic() - t0
    power = max(s["power"] for s in stats)
    choice = ptau.choose(power, options.cache_dir, power=options.ptau_power, setup_file=options.setup_file)
    ptau_file = choice.path if choice.cached else ptau.build(choice.power, options.cache_dir)
    dev_keys = options.setup_file is None

    def setup(j: int) -> float:
        d = out_dir / SLICES_DIR / str(j)
        ts = time.monotonic()
        _setup(d, ptau_file)
        verifier = compile_verifier(d / SLICE_FILES["verifier_sol"], VERIFIER_CONTRACT)
        (d / SLICE_FILES["verifier_json"]).write_text(json.dumps(verifier, indent=1) + "\n")
        return time.monotonic() - ts

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, setup_workers)) as ex:
        setup_s = list(ex.map(setup, range(k)))
    entries: list[dict[str, Any]] = []
    for j in range(k):
        d = out_dir / SLICES_DIR / str(j)
        cid = circuit_id_of(d / SLICE_FILES["vk"])
        stats[j]["setup_seconds"] = round(setup_s[j], 3)
        stats[j]["zkey_bytes"] = (d / SLICE_FILES["zkey"]).stat().st_size
        b_in = None if j == 0 else boundary_at(qm, c[j], j)
        b_out = None if j == k - 1 else boundary_at(qm, c[j + 1], j + 1)
        doc = {"index": j, "of": k, "layers": [c[j], c[j + 1]], "circuit_id": cid, "files": SLICE_FILES,
               "boundary_in": None if b_in is None else asdict(b_in),
               "boundary_out": None if b_out is None else asdict(b_out), "stats": stats[j]}
        (d / SLICE_MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")
        entries.append({"circuit_id": cid, "layers": [c[j], c[j + 1]], "dir": f"{SLICES_DIR}/{j}"})
    name = options.name or (onnx_path.parent.name if onnx_path.stem == "model" else onnx_path.stem)

    manifest = Manifest(
        backend="groth16", name=name, circuit_id=model_id([e["circuit_id"] for e in entries]),
        input_shape=qm.input_shape, output_shape=qm.output_shape, input_scale=qm.input_scale,
        output_scale=qm.output_scale, input_bits=qm.input_bits, output_bits=qm.output_bits,
        signal_layout=PACKED_LAYOUT, packing=packing.to_dict(), payee=payee_slot(qm, True),
        files=dict(TOP_FILES), verifier_contract=ADAPTER, dev_keys=dev_keys,
        toolchain=dict(tools.versions()),
        settings={"generator": GENERATOR, "quantization": asdict(settings), "calibration_source": calib_src,
                  "calibration": qm.calibration, "cuts": c, "poseidon": {"rate": poseidon.RATE, "t": poseidon.RATE + 1,
                                                                          "max_terms": poseidon.MAX_TERMS},
                  "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
                  "ptau": {"file": ptau_file.name, "power": choice.power, "needed_power": power,
                           "local_dev_ceremony": dev_keys}},
        stats={"slices": k, "constraints": [s["constraints"] for s in stats],
               "max_slice_constraints": max(s["constraints"] for s in stats), "ptau_power": power,
               "lowering_seconds": round(lowering_s, 3), "setup_seconds": round(time.monotonic() - t0, 3),
               "compile_seconds": round(time.monotonic() - t_start, 3), "proof_bytes": proof_bytes(k)},
        slices=entries,
    )
    manifest.save(out_dir)
    log.info("compiled sliced %s: %d slices %s constraints, one ptau 2^%d", name, k,
             manifest.stats["constraints"], power)
    return manifest


def _setup(d: Path, ptau_file: Path) -> None:
    """Phase 2 of one slice, the steps of ``Groth16Backend`` (setup on the shared ptau, one
    local contribution, a random beacon) and the exports. Only delta (and the keys under it)
    differ between slices: alpha and beta come from the ptau, gamma is fixed by snarkjs."""
    sj = tools.snarkjs
    sj("groth16", "setup", SLICE_FILES["r1cs"], str(ptau_file.resolve()), "z0.zkey", cwd=d, what="groth16 setup")
    sj("zkey", "contribute", "z0.zkey", "z1.zkey", "--name=local phase-2 contribution",
       f"-e={os.urandom(32).hex()}", cwd=d, what="zkey contribute")
    sj("zkey", "beacon", "z1.zkey", SLICE_FILES["zkey"], os.urandom(32).hex(), "10", "-n=phase-2 beacon",
       cwd=d, what="zkey beacon")
    for f in ("z0.zkey", "z1.zkey"):
        (d / f).unlink(missing_ok=True)
    sj("zkey", "export", "verificationkey", SLICE_FILES["zkey"], SLICE_FILES["vk"], cwd=d, what="export vk")
    sj("zkey", "export", "solidityverifier", SLICE_FILES["zkey"], SLICE_FILES["verifier_sol"], cwd=d,
       what="export solidity verifier")


# -- loading --------------------------------------------------------------------------------------
@dataclass
class SlicedModel:
    folder: Path
    manifest: Manifest
    qm: QuantizedModel
    cuts: list[int]
    plans: list[SlicePlan]
    dirs: list[Path]
    held: list[int] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.plans)

    def vk(self, j: int) -> Path:
        return self.dirs[j] / SLICE_FILES["vk"]

    def zkey(self, j: int) -> Path:
        return self.dirs[j] / SLICE_FILES["zkey"]


_loaded: dict[Path, tuple[tuple[float, tuple[str, ...]], SlicedModel]] = {}
_load_lock = threading.Lock()


def load(folder: Path) -> SlicedModel:
    """A sliced model folder, its ids checked (each vk present hashes to its slice id, the model
    id is the hash of those ids); cached until its manifest changes. ``held`` lists the slices
    present (all of them in a compiled folder, some in a miner's fetched copy)."""
    d = folder.resolve()
    try:
        # A slice fetched into a miner's copy changes what is held, not the manifest.
        stamp = ((d / "manifest.json").stat().st_mtime,
                 tuple(sorted(str(p) for p in d.glob(f"{SLICES_DIR}/*/{SLICE_FILES['vk']}"))))
    except FileNotFoundError as e:
        raise ManifestError(f"{d}: not a model folder (no manifest.json)") from e
    with _load_lock:
        hit = _loaded.get(d)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    m = Manifest.load(d)
    if not m.slices:
        raise ManifestError(f"{d}: not a sliced model (no slices in its manifest)")
    qm = QuantizedModel.load(m.path(d, "quantized"))
    cuts = [int(m.slices[0]["layers"][0]), *(int(s["layers"][1]) for s in m.slices)]
    check_cuts(qm, cuts)
    dirs = [d / str(s["dir"]) for s in m.slices]
    # The model id is the hash of every slice id; each slice present has the key its id names.
    # A miner's copy may hold only some slices (the others are never proven there).
    m.check_circuit_id(d)
    sm = SlicedModel(d, m, qm, cuts, [SlicePlan(qm, cuts, j) for j in range(len(dirs))], dirs,
                     m.held_slices(d))
    with _load_lock:
        _loaded[d] = (stamp, sm)
    return sm


# -- prove ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlicedProof:
    model_id: str
    input_fixed: list[int]
    output_fixed: list[int]
    payee: str
    commitments: list[int]                 # c_1 .. c_{k-1}
    proofs: list[dict[str, Any]]           # snarkjs proof objects, slice order
    public_signals: list[list[str]]        # per slice, snarkjs order
    calldata: str                          # 0x abi.encode(uint256[] commitments, uint256[8][] proofs)
    slice_ms: list[dict[str, float]] = field(default_factory=list)
    prove_seconds: float = 0.0


def proof_bytes(k: int) -> int:
    """Size of ``encode_sliced`` for k slices: 2 offsets, 2 lengths, k - 1 words, k proofs."""
    return 4 * 32 + 32 * (k - 1) + 256 * k


def encode_sliced(commitments: Sequence[int], proofs: Sequence[dict[str, Any]]) -> str:
    """The on-chain ``proof`` bytes of a sliced model."""
    return "0x" + encode(["uint256[]", "uint256[8][]"], [list(commitments), [proof_words(p) for p in proofs]]).hex()


def prove_sliced(folder: Path, input_fixed: Sequence[int], payee: str, pool: ProverPool) -> SlicedProof:
    """Prove every slice for ``input_fixed`` (all in flight at once on the pool's daemons)."""
    sm = load(folder)
    if len(sm.held) != sm.k:
        raise BackendError(f"{sm.folder}: holds slices {sm.held} of {sm.k}: cannot prove them all here")
    try:
        payee_n = normalize(payee)
        pv = payee_int(payee_n)
    except PayeeError as e:
        raise BackendError(str(e)) from e
    assert payee_n is not None
    x = [int(v) for v in input_fixed]
    check_range(x, sm.qm.input_bits, "input")
    if len(x) != sm.qm.input_size:
        raise BackendError(f"expected {sm.qm.input_size} inputs, got {len(x)}")
    t0 = time.monotonic()
    ref = activations(sm.qm, x)
    wits = [p.witness_from(ref, pv) for p in sm.plans]      # witness check: see SlicePlan
    for a, b in itertools.pairwise(wits):
        if a.commit_out != b.commit_in:
            raise BackendError("slice commitments do not chain (a lowering bug)")
    expected = [int(v) for v in ref[-1]]
    if wits[-1].outputs != expected:
        raise BackendError("last slice output differs from the integer reference (a lowering bug)")

    def one(j: int) -> dict[str, Any]:
        fd, name = tempfile.mkstemp(prefix=f"oracle-slice{j}-", suffix=".wtns")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(wtns_bytes(wits[j].witness))
            ts = time.monotonic()
            resp = pool.request({"cmd": "prove_wtns", "wtns": name, "zkey": str(sm.zkey(j)), "vk": str(sm.vk(j))})
            resp.setdefault("ms", {})["wall"] = round((time.monotonic() - ts) * 1e3, 3)
            return resp
        finally:
            os.unlink(name)

    with ThreadPoolExecutor(max_workers=sm.k) as ex:
        resps = list(ex.map(one, range(sm.k)))
    for j, (r, w) in enumerate(zip(resps, wits, strict=True)):
        if r.get("valid") is not True:
            raise BackendError(f"slice {j}: the witness does not satisfy the circuit (its proof does not verify)")
        if [int(s) for s in r["publicSignals"]] != w.public:
            raise BackendError(f"slice {j}: public signals differ from the witness's")
    commitments = [int(w.commit_out) for w in wits[:-1] if w.commit_out is not None]
    proofs = [r["proof"] for r in resps]
    return SlicedProof(sm.manifest.circuit_id, x, expected, payee_n, commitments, proofs,
                       [[str(s) for s in r["publicSignals"]] for r in resps], encode_sliced(commitments, proofs),
                       [dict(r.get("ms", {})) for r in resps], time.monotonic() - t0)


# -- verify ---------------------------------------------------------------------------------------
def slice_signals(sm: SlicedModel, input_fixed: Sequence[int], output_fixed: Sequence[int], payee: str,
                  commitments: Sequence[int]) -> list[list[int]]:
    """Each slice's public signals as the verifier (and the on-chain adapter) rebuilds them."""
    m, k = sm.manifest, sm.k
    check_range(list(input_fixed), m.input_bits, "input")
    check_range(list(output_fixed), m.output_bits, "output")
    c = [int(v) for v in commitments]
    in_words = pack([int(v) for v in input_fixed], m.input_bits, "input")
    assert m.payee is not None
    out_words = place_payee(pack([int(v) for v in output_fixed], m.output_bits, "output"), m.payee,
                            payee_int(payee))
    out: list[list[int]] = []
    for j in range(k):
        pub_out = [c[j]] if j < k - 1 else out_words
        pub_in = in_words if j == 0 else [c[j - 1]]
        out.append([*pub_out, *pub_in])
    return out


def why_not(folder: Path, input_fixed: Sequence[int], output_fixed: Sequence[int], payee: str,
            commitments: Sequence[int], proofs: Sequence[dict[str, Any]], pool: ProverPool) -> str | None:
    """Why these slice proofs are not one computation of this model on (input -> output) for
    ``payee``; None when every slice verifies with the signals rebuilt from the arguments."""
    sm = load(folder)
    k = sm.k
    if len(sm.held) != k:
        raise BackendError(f"{sm.folder}: holds slices {sm.held} of {k}: cannot verify them all here")
    if len(proofs) != k:
        return f"{len(proofs)} slice proofs for a model of {k} slices"
    if len(commitments) != k - 1:
        return f"{len(commitments)} boundary commitments for {k} slices (expected {k - 1})"
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < BN254_R for v in commitments):
        return "a boundary commitment is not a canonical field element"
    if len(input_fixed) != sm.qm.input_size or len(output_fixed) != sm.qm.output_size:
        return "input/output sizes do not match the manifest"
    try:
        signals = slice_signals(sm, input_fixed, output_fixed, payee, commitments)
    except (PackingError, PayeeError) as e:
        return str(e)
    for j in range(k):
        try:
            resp = pool.request({"cmd": "verify", "vk": str(sm.vk(j)), "proof": proofs[j],
                                 "publicSignals": [str(s) for s in signals[j]]})
        except SnarkjsError as e:
            return f"slice {j}: malformed proof ({e})"
        if resp.get("valid") is not True:
            what = "the input" if j == 0 else f"c_{j}"
            nxt = "the output and payee" if j == k - 1 else f"c_{j + 1}"
            return f"slice {j} (layers {sm.cuts[j]}..{sm.cuts[j + 1]}) does not verify from {what} to {nxt}"
    return None


def verify_sliced(folder: Path, input_fixed: Sequence[int], output_fixed: Sequence[int], payee: str,
                  commitments: Sequence[int], proofs: Sequence[dict[str, Any]], pool: ProverPool) -> bool:
    reason = why_not(folder, input_fixed, output_fixed, payee, commitments, proofs, pool)
    if reason is not None:
        log.info("sliced proof rejected: %s", reason)
        return False
    return True
