"""Groth16 (BN254) backend: ONNX -> quantized integer model -> Circom -> snarkjs keys/proofs.

Circuit folder (all names relative, see ``Manifest.files``)::

    model.onnx              copy of the source model
    calibration.json        the calibration inputs used (to rebuild the folder exactly)
    quantized.json          integer weights, scales, shifts, worst-case bounds (the reference)
    model.circom            generated circuit
    model.r1cs, model.wasm  circom output (constraints, witness generator)
    model.zkey              proving key; verification_key.json
    Verifier.sol            snarkjs' Solidity verifier (contract Groth16Verifier)
    verifier.json           its abi + bytecode compiled with the pinned solc
    manifest.json

Public signals are ``[outputs..., inputs...]`` (circom lists main's outputs first, then its
public inputs). By default (``CompileOptions.packed_signals``) several values share one signal:
``[output words..., input words...]``, signal_layout "packed_outputs_then_inputs", see
``oracle.circuits.packing``; unpacked circuits (signal_layout "outputs_then_inputs") carry one
field element per value, a negative v being p - |v|.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from oracle.circuits.fixedpoint import BN254_R, from_field, to_field
from oracle.circuits.manifest import PACKED_LAYOUT, Manifest, SignalLayout, circuit_id_of
from oracle.circuits.packing import Packing, PackingError, n_words, unpack
from oracle.circuits.payee import PayeeError, normalize, payee_int, strip_payee
from oracle.circuits.quantize import QuantizedModel, QuantSettings, quantize_for_compile
from oracle.proving.base import BackendError, CompileOptions, Proof, ProofBackend, shape_mismatch
from oracle.proving.groth16 import circuit, direct, estimate, progress, ptau, tools
from oracle.proving.groth16.calldata import encode_proof
from oracle.proving.groth16.lowering import Plan
from oracle.proving.groth16.pool import ProverPool, SnarkjsError
from oracle.proving.groth16.ptau import PtauChoice
from oracle.proving.groth16.r1cs import r1cs_info
from oracle.proving.groth16.solidity import compile_verifier

log = logging.getLogger(__name__)

NAME: Final = "groth16"
VERIFIER_CONTRACT = "Groth16Verifier"   # the name snarkjs' template gives the contract
GENERATOR_VERSION = 3                   # bump when the generated circuit changes meaning

FILES = {
    "onnx": "model.onnx",
    "calibration": "calibration.json",
    "quantized": "quantized.json",
    "circom": "model.circom",
    "r1cs": "model.r1cs",
    "wasm": "model.wasm",
    "zkey": "model.zkey",
    "pk": "model.zkey",
    "vk": "verification_key.json",
    "verifier_sol": "Verifier.sol",
    "verifier_json": "verifier.json",
}


# The direct generator (oracle.proving.groth16.direct) writes model.r1cs itself: no circom, no wasm.
DIRECT_FILES = {role: f for role, f in FILES.items() if role not in ("circom", "wasm")}


@dataclass
class _Loaded:
    stamp: float
    manifest: Manifest
    model: QuantizedModel
    wasm: Path | None             # circom's witness calculator; None for the direct generator
    zkey: Path
    vk: Path
    plan: Plan | None = None      # the direct generator's wire layout (witness at prove time)


class Groth16Backend(ProofBackend):
    """Groth16 over BN254: the default proof system, one circuit folder per model.

    Owns the long-lived snarkjs prover processes (``ProverPool``, started on first use, stopped
    by ``close``) and a cache of loaded circuit folders. ``compile`` traces and quantizes the
    ONNX model, plans the compile and refuses early what cannot finish (``estimate``), generates
    the constraints (the Python lowering by default, ``generator="direct"``; or circom with
    ``generator="circom"``, which is slower and limited to ~400-term neurons and ~170 k
    multiply-adds), runs the setup (a ceremony ptau, else a cached local development one, flagged
    ``dev_keys``: ``ptau.choose``), exports and compiles the Solidity verifier, and writes the
    manifest. Folders compiled by either generator keep working: prove follows the manifest.
    ``prove`` range-checks the input, proves for the payee it is given (bound into the public
    signals when the circuit has a payee slot), and refuses (``BackendError``) a proof whose
    output differs from the numpy integer reference or whose public signals are not the
    manifest's encoding of (input, output, payee). ``verify`` rebuilds those public signals
    itself before snarkjs checks the proof.

    Never talks to a chain, the store or the network: it does not register circuits, choose a
    payee or decide which request to prove; its callers (the CLI, ``LocalProver``, a miner) do.
    """

    name = NAME

    def __init__(self, pool_size: int | None = None, settings: QuantSettings | None = None,
                 prove_timeout: float = 300.0, generator: str = "direct", self_check: bool = True,
                 ptau_power: int | None = None) -> None:
        if generator not in direct.GENERATORS:
            raise BackendError(f"unknown groth16 generator {generator!r} (one of {direct.GENERATORS})")
        self.settings = settings or QuantSettings()
        # What compile() emits; prove() follows each folder's manifest, whatever this says.
        self.generator = generator
        # Local ceremony power for every compile (CompileOptions.ptau_power overrides it): circuits
        # compiled with the same power share one ptau file, hence alpha and beta.
        self.ptau_power = ptau_power
        self.self_check = self_check      # direct circuits: verify each fresh proof (see direct.py)
        self._pool_size = pool_size
        self._timeout = prove_timeout
        self._pool: ProverPool | None = None
        self._lock = threading.Lock()
        self._circuits: dict[Path, _Loaded] = {}

    # -- resources --------------------------------------------------------------------------
    @property
    def pool(self) -> ProverPool:
        with self._lock:
            if self._pool is None:
                self._pool = ProverPool(self._pool_size, timeout=self._timeout)
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def load(self, circuit_dir: Path) -> _Loaded:
        """Manifest + integer reference of a circuit folder, cached until the manifest changes."""
        d = circuit_dir.resolve()
        try:
            stamp = (d / "manifest.json").stat().st_mtime
        except FileNotFoundError as e:
            raise BackendError(f"{d}: not a circuit folder (no manifest.json)") from e
        with self._lock:
            hit = self._circuits.get(d)
            if hit is not None and hit.stamp == stamp:
                return hit
        m = Manifest.load(d)
        if m.backend != NAME:
            raise BackendError(f"{d}: circuit built for backend {m.backend!r}, not {NAME!r}")
        qm = QuantizedModel.load(m.path(d, "quantized"))
        if _generator(m) == "direct":
            loaded = _Loaded(stamp, m, qm, None, m.path(d, "zkey"), m.path(d, "vk"),
                             Plan(qm, m.packed is not None))
        else:
            loaded = _Loaded(stamp, m, qm, m.path(d, "wasm"), m.path(d, "zkey"), m.path(d, "vk"))
        with self._lock:
            self._circuits[d] = loaded
        return loaded

    # -- compile ----------------------------------------------------------------------------
    def _quantized(self, onnx_path: Path, options: CompileOptions
                   ) -> tuple[QuantizedModel, np.ndarray[Any, Any], str, Packing | None]:
        """Trace + quantize (seconds): the model, its calibration data and source, its packing."""
        qm, calib, calib_src = quantize_for_compile(onnx_path, options.calibration, self.settings)
        packing: Packing | None = None
        if options.packed_signals:
            try:
                packing = Packing.for_bits(qm.input_bits, qm.output_bits)
            except PackingError as e:
                raise BackendError(f"{onnx_path}: {e}") from e
        return qm, calib, calib_src, packing

    def _ptau_power(self, options: CompileOptions) -> int | None:
        power = options.ptau_power if options.ptau_power is not None else self.ptau_power
        if power is not None and options.setup_file is not None:
            raise BackendError("--ptau-power chooses a local development ceremony; a --ptau file "
                               "already fixes the power: pass one or the other")
        return power

    def plan(self, onnx_path: Path, options: CompileOptions) -> estimate.CompilePlan:
        """What compiling this model would need and take (``oracle models plan``), in seconds:
        nothing is written, no ceremony is built. ``estimate.check`` says whether it may run."""
        qm, _, _, packing = self._quantized(onnx_path, options)
        plan, _ = estimate.plan_compile(qm, self.generator, packing is not None,
                                        cache_dir=options.cache_dir, ptau_power=self._ptau_power(options),
                                        setup_file=options.setup_file)
        return plan

    def compile(self, onnx_path: Path, out_dir: Path, options: CompileOptions) -> Manifest:
        t_start = time.monotonic()
        qm, calib, calib_src, packing = self._quantized(onnx_path, options)
        ptau_power = self._ptau_power(options)
        if self.generator == "circom":
            estimate.check_circom(qm)           # before even the lowering the plan counts with
        # Plan before any long work: sizes, ceremony, memory, time; refuse what cannot finish.
        plan, lowered = estimate.plan_compile(qm, self.generator, packing is not None,
                                              cache_dir=options.cache_dir, ptau_power=ptau_power,
                                              setup_file=options.setup_file)
        log.info("compile plan for %s:\n%s", onnx_path, plan.summary())
        estimate.check(plan, options.max_ceremony_seconds)

        out_dir.mkdir(parents=True, exist_ok=True)
        files = DIRECT_FILES if self.generator == "direct" else FILES
        for f in set(FILES.values()) | {"manifest.json"}:
            (out_dir / f).unlink(missing_ok=True)
        shutil.copyfile(onnx_path, out_dir / FILES["onnx"])
        (out_dir / FILES["calibration"]).write_text(json.dumps({"input": calib.tolist()}) + "\n")
        qm.save(out_dir / FILES["quantized"])
        payee_slot = circuit.payee_slot(qm, packing is not None)
        gen_stats: dict[str, Any]
        if self.generator == "direct":
            done = (lowered.plan, lowered.cs, lowered.seconds) if lowered is not None else None
            lowered = None          # the constraints are garbage once written: do not hold them
            written = direct.write_circuit(qm, packing is not None, out_dir / FILES["r1cs"], done)
            done = None
            gen_stats = {"lowering_seconds": written.lowering_seconds,
                         "r1cs_write_seconds": written.r1cs_write_seconds,
                         "multiply_adds": written.macs, "r1cs_terms": written.terms}
        else:
            lowered = None
            src, est = circuit.generate(qm, packed=packing is not None)
            (out_dir / FILES["circom"]).write_text(src)
            t0 = time.monotonic()
            self._circom(out_dir)
            gen_stats = {"circom_seconds": round(time.monotonic() - t0, 3),
                         "estimated_constraints": est.estimated_constraints}
        info = r1cs_info(out_dir / FILES["r1cs"])
        want_out, want_in = qm.output_size, qm.input_size
        if packing is not None:
            want_out = n_words(qm.output_size, packing.output_bits)
            want_in = n_words(qm.input_size, packing.input_bits)
        want_out += payee_slot["extra"]
        if info.n_outputs != want_out or info.n_public_inputs != want_in:
            raise BackendError(f"{out_dir}: r1cs public signals do not match the model")
        power = ptau.power_for(info.n_constraints, info.n_public_inputs + info.n_outputs)

        t0 = time.monotonic()
        dev_keys = options.setup_file is None
        # The reuse rule (ptau.choose): the smallest cached local ptau that fits, a forced power,
        # or the --ptau file (whose power must fit).
        choice = ptau.choose(power, options.cache_dir, power=ptau_power, setup_file=options.setup_file)
        ptau_file = choice.path if choice.cached else ptau.build(choice.power, options.cache_dir)
        if dev_keys:
            log.warning(
                "groth16 keys for %s come from a LOCAL ceremony: DEVELOPMENT ONLY, anyone with "
                "this machine's memory could forge proofs. Pass --ptau <ceremony file> for "
                "production.", out_dir
            )
        ptau_s = time.monotonic() - t0
        ptau_record = PtauChoice(ptau_file, choice.power, power, dev_keys, True).record()

        t0 = time.monotonic()
        self._setup(out_dir, ptau_file, plan.seconds["setup"])
        setup_s = time.monotonic() - t0
        verifier = compile_verifier(out_dir / FILES["verifier_sol"], VERIFIER_CONTRACT)
        (out_dir / FILES["verifier_json"]).write_text(json.dumps(verifier, indent=1) + "\n")

        name = options.name or (onnx_path.parent.name if onnx_path.stem == "model"
                                else onnx_path.stem)
        sizes = {role: (out_dir / f).stat().st_size for role, f in files.items()}
        layout: SignalLayout = PACKED_LAYOUT if packing is not None else "outputs_then_inputs"
        manifest = Manifest(
            backend=NAME,
            name=name,
            circuit_id=circuit_id_of(out_dir / FILES["vk"]),
            input_shape=qm.input_shape,
            output_shape=qm.output_shape,
            input_scale=qm.input_scale,
            output_scale=qm.output_scale,
            input_bits=qm.input_bits,
            output_bits=qm.output_bits,
            signal_layout=layout,
            packing=packing.to_dict() if packing is not None else None,
            payee=payee_slot,
            files=dict(files),
            verifier_contract=VERIFIER_CONTRACT,
            dev_keys=dev_keys,
            toolchain=dict(tools.versions()),
            settings={
                "generator": self.generator,
                "generator_version": GENERATOR_VERSION if self.generator == "circom" else direct.LOWERING_VERSION,
                "quantization": asdict(self.settings),
                "calibration_source": calib_src,
                "calibration": qm.calibration,
                "layers": [
                    {"node": ly.node, "size": ly.size, "act": ly.act,
                     "weight_scale": ly.weight_scale, "acc_scale": ly.acc_scale,
                     "out_scale": ly.out_scale, "shift": ly.shift, "clip": [ly.lo, ly.hi]}
                    for ly in qm.layers
                ],
                "packed_signals": packing is not None,
                **({"circom_flags": ["--O2"]} if self.generator == "circom" else {}),
                "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
                "ptau": ptau_record,
                "phase2": "one local contribution + random beacon",
            },
            stats={
                "constraints": info.n_constraints,
                **gen_stats,
                "wires": info.n_wires,
                "public_signals": info.n_outputs + info.n_public_inputs,
                "ptau_power": power,
                "ptau_file_power": choice.power,
                "ptau_seconds": round(ptau_s, 3),
                "setup_seconds": round(setup_s, 3),
                "compile_seconds": round(time.monotonic() - t_start, 3),
                "zkey_bytes": sizes["zkey"],
                "vk_bytes": sizes["vk"],
                **({"wasm_bytes": sizes["wasm"]} if "wasm" in sizes else {}),
                "r1cs_bytes": sizes["r1cs"],
                "verifier_runtime_bytes": (len(verifier["deployedBytecode"]) - 2) // 2,
                "proof_bytes": 256,
            },
        )
        manifest.save(out_dir)
        log.info("compiled %s: %d constraints, setup %.1f s -> %s", name, info.n_constraints,
                 setup_s, out_dir)
        return manifest

    def _circom(self, out_dir: Path) -> None:
        # circom2 (WASI) only sees paths below its working directory: relative paths only.
        tools.run(
            [tools.node_binary(), str(tools.circom_cli()), FILES["circom"],
             "--r1cs", "--wasm", "--O2", "-o", "."],
            cwd=out_dir, what="circom",
        )
        js_dir = out_dir / "model_js"
        os.replace(js_dir / "model.wasm", out_dir / FILES["wasm"])
        shutil.rmtree(js_dir, ignore_errors=True)

    def _setup(self, out_dir: Path, ptau_file: Path, expected: float) -> None:
        """Phase 2: setup, one contribution, a beacon, exports. ``expected`` (the plan's estimate
        of the whole) is split by the measured shares of each step, for the progress lines."""
        sj = tools.snarkjs
        d = out_dir
        progress.snarkjs("groth16", "setup", FILES["r1cs"], str(ptau_file.resolve()), "z0.zkey", cwd=d,
                         what="groth16 setup", expected=0.42 * expected)
        progress.snarkjs("zkey", "contribute", "z0.zkey", "z1.zkey", "--name=local phase-2 contribution",
                         f"-e={os.urandom(32).hex()}", cwd=d, what="zkey contribute",
                         expected=0.21 * expected)
        progress.snarkjs("zkey", "beacon", "z1.zkey", FILES["zkey"], os.urandom(32).hex(), "10",
                         "-n=phase-2 beacon", cwd=d, what="zkey beacon", expected=0.33 * expected)
        for f in ("z0.zkey", "z1.zkey"):
            (d / f).unlink(missing_ok=True)
        sj("zkey", "export", "verificationkey", FILES["zkey"], FILES["vk"], cwd=d,
           what="export vk")
        sj("zkey", "export", "solidityverifier", FILES["zkey"], FILES["verifier_sol"], cwd=d,
           what="export solidity verifier")

    # -- prove / verify ---------------------------------------------------------------------
    def check_input(self, m: Manifest, input_fixed: list[int]) -> None:
        if len(input_fixed) != m.input_size:
            raise BackendError(f"expected {m.input_size} inputs, got {len(input_fixed)}")
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
        for i, v in enumerate(input_fixed):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                if isinstance(v, float) and not np.isfinite(v):
                    raise BackendError(f"input {i} = {v} is NaN or infinite")
                raise BackendError(f"input {i} = {v!r} is not an integer (fixed point expected)")
            if not lo <= int(v) <= hi:
                raise BackendError(
                    f"input {i} = {int(v)} is outside the {m.input_bits}-bit signed range "
                    f"[{lo}, {hi}]"
                )

    def prove(self, circuit_dir: Path, input_fixed: list[int], payee: str | None = None) -> Proof:
        c = self.load(circuit_dir)
        m = c.manifest
        self.check_input(m, input_fixed)
        x = [int(v) for v in input_fixed]
        expected = [int(v) for v in c.model.forward_batch(np.array([x], dtype=np.int64))[0]]
        packing = m.packed
        # The witness input is what the circuit takes publicly: the values, or their words.
        wit = packing.signals(x, []) if packing is not None else [to_field(v) for v in x]
        witness_input: dict[str, Any] = {"in": [str(w) for w in wit]}
        slot = m.payee
        if slot is not None:
            try:
                payee = normalize(payee)
                witness_input["payee"] = str(payee_int(payee))
            except PayeeError as e:
                raise BackendError(str(e)) from e
        t0 = time.monotonic()
        if c.plan is not None:
            # payee_int(None) raises: every direct circuit binds a payee (PayeeError -> BackendError)
            try:
                payee_value = payee_int(normalize(payee))
            except PayeeError as e:
                raise BackendError(str(e)) from e
            resp = direct.prove(self.pool, c.plan, c.zkey, c.vk, x, payee_value, self.self_check)
        else:
            resp = self.pool.request({
                "cmd": "prove", "wasm": str(c.wasm), "zkey": str(c.zkey), "input": witness_input,
            })
        elapsed = time.monotonic() - t0
        signals = [str(s) for s in resp["publicSignals"]]
        n_out = len(signals) - len(wit)
        try:
            out_signals = [int(s) for s in signals[:n_out]]
            if slot is not None:
                out_signals = strip_payee(out_signals, slot)
                n_out = len(out_signals)
            if packing is not None:
                got = unpack(out_signals, packing.output_bits, m.output_size)
            elif n_out != m.output_size:
                raise BackendError(f"circuit returned {len(signals)} public signals, "
                                   f"expected {m.output_size + m.input_size}")
            else:
                got = [from_field(v, BN254_R) for v in out_signals]
        except PackingError as e:
            raise BackendError(f"circuit output words are not a packing of {m.output_size} outputs ({e}): "
                               f"circuit folder {circuit_dir} is inconsistent") from e
        if got != expected:
            raise BackendError(
                f"circuit output {got} differs from the numpy reference {expected} "
                f"(circuit folder {circuit_dir} is inconsistent)"
            )
        if signals != m.public_signals(x, got, payee):
            raise BackendError("circuit public signals differ from the requested input and its output")
        proof = resp["proof"]
        return Proof(
            backend=NAME,
            circuit_id=m.circuit_id,
            input_fixed=x,
            output_fixed=got,
            public_signals=signals,
            proof=proof,
            calldata=encode_proof(proof),
            prove_seconds=elapsed,
            extra={"daemon_ms": resp.get("ms", {})},
            payee=payee if slot is not None else None,
        )

    def verify(self, circuit_dir: Path, proof: Proof) -> bool:
        c = self.load(circuit_dir)
        m = c.manifest
        m.check_circuit_id(circuit_dir)
        reason = self.mismatch(m, proof)
        if reason:
            log.info("proof rejected: %s", reason)
            return False
        try:
            resp = self.pool.request({"cmd": "verify", "vk": str(c.vk), "proof": proof.proof,
                                      "publicSignals": proof.public_signals})
        except SnarkjsError as e:         # malformed proof (e.g. a point not on the curve)
            log.info("proof rejected by snarkjs: %s", e)
            return False
        return bool(resp.get("valid"))

    def mismatch(self, m: Manifest, proof: Proof) -> str | None:
        """Why a proof cannot be for (input_fixed, output_fixed) of this circuit, or None."""
        why = shape_mismatch(NAME, m, proof)
        if why is not None:
            return why
        try:
            expected = m.public_signals(list(proof.input_fixed), list(proof.output_fixed), proof.payee)
        except (PackingError, PayeeError) as e:       # out of range: no proof of it can exist
            return str(e)
        except (TypeError, ValueError):
            return "input/output are not integers"
        if list(proof.public_signals) != expected:
            return f"public signals do not encode (output_fixed, input_fixed) as {m.signal_layout}"
        try:
            if encode_proof(proof.proof) != proof.calldata.lower():
                return "calldata does not encode the proof"
        except BackendError as e:
            return str(e)
        return None


def _generator(m: Manifest) -> str:
    """Which generator built a folder (manifests before the direct generator: circom)."""
    return str(m.settings.get("generator", "circom"))
