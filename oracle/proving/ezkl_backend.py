"""Halo2-KZG proofs through EZKL 23 (Python API), with an EZKL-generated Solidity verifier.

Circuit folder (all paths relative, see ``FILES``): the ONNX copy, EZKL's settings and compiled
circuit, the proving and verification keys, the KZG SRS the keys were made from, the calibration
samples, the generated ``verifier.sol`` and its compiled ``verifier.json`` (abi + bytecode).

Facts this module relies on (measured with EZKL 23.0.5, see TOOLCHAIN.md):

* With input and output visibility ``public`` and parameters ``fixed``, the proof's instances
  are exactly ``[inputs..., outputs...]`` (one column, flattened row-major), each a BN254 scalar
  field element (``v`` or ``r - |v|``), serialized by EZKL as 32-byte little-endian hex.
* Quantization is ``round(x * 2**scale)`` with the scales in ``settings.json``.
* The generated ``Halo2Verifier`` exposes ``verifyProof(bytes proof, uint256[] instances)
  returns (bool)`` (non-view, but it only touches memory, so a ``staticcall`` works). It
  requires ``instances.length`` to equal the circuit's count and every instance to be ``< r``,
  and reads the proof's evaluations at *absolute* calldata offsets: the call must be
  standard-ABI-encoded with ``proof`` first, so its bytes start at calldata offset 0x64
  (Solidity's ``abi.encodeWithSignature``/``abi.encodeCall`` do this). It reverts on a bad
  proof rather than returning false. ``encode_evm_calldata`` produces the same standard
  encoding plus 32 trailing zero bytes.
* ``ezkl.prove`` can HANG (no error, no CPU) on a witness whose lookup inputs fall outside the
  calibrated ``lookup_range``: ``prove`` checks the witness first and raises ``BackendError``.
* ``create_evm_verifier`` looks for solc 0.8.20 at ``$HOME/.svm/0.8.20/solc-0.8.20`` and
  otherwise downloads it. We run it in a child process whose ``HOME`` is the project-local
  ``.cache/ezkl-home``, where that path is a symlink to the project's ``scripts/solc``: nothing
  is downloaded and nothing is written outside the project. The Solidity is then compiled with
  ``scripts/solc`` (optimizer on, viaIR off: "stack too deep" otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import numpy as np

from oracle.circuits.fixedpoint import BN254_R, from_field, to_field
from oracle.circuits.manifest import Manifest, ManifestError, circuit_id_of
from oracle.paths import CACHE_DIR, ROOT, SOLC
from oracle.proving.base import BackendError, CompileOptions, Proof, ProofBackend, shape_mismatch

log = logging.getLogger(__name__)

# EZKL keeps its lookup-table cache (and default SRS folder) under $EZKL_REPO_PATH, default
# ~/.ezkl: keep it inside the project. Read once by EZKL, so set before its first use.
os.environ.setdefault("EZKL_REPO_PATH", str(CACHE_DIR / "ezkl"))

NAME: Literal["ezkl"] = "ezkl"
VERIFIER_CONTRACT = "Halo2Verifier"
# Bump when the circuit folder's layout or the way it is built changes (cache keys use it).
BUILD_VERSION = 1

FILES: dict[str, str] = {
    "onnx": "model.onnx",
    "calibration": "calibration.json",   # EZKL's {"input_data": [[flattened samples]]}
    "settings": "settings.json",
    "compiled": "model.compiled",
    "srs": "kzg.srs",
    "vk": "vk.key",
    "pk": "pk.key",
    "verifier_sol": "verifier.sol",
    "verifier_json": "verifier.json",
}

SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": False,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

DEFAULT_CALIBRATION_SAMPLES = 64
# Registered signed ranges = calibrated range x headroom, rounded up to a power of two. Inputs
# beyond ~2x the calibrated range may leave EZKL's lookup tables (lookup_safety_margin 2).
INPUT_HEADROOM = 1.25
OUTPUT_HEADROOM = 2.0
EIP170_MAX_RUNTIME = 24_576

# EZKL keeps process-wide state and its heavy calls use every core: one call at a time.
_EZKL_LOCK = threading.RLock()

T = TypeVar("T")


def _run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run one EZKL coroutine on a private, short-lived event loop (never the caller's loop).

    EZKL's async functions must be *called* while a loop is running, hence the factory.
    """

    async def runner() -> T:
        return await make()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(runner())
    finally:
        loop.close()


# -- field elements as EZKL writes them ------------------------------------------------------
def felt_from_hex(h: str) -> int:
    """EZKL's 32-byte little-endian hex (no 0x) -> field element."""
    return int.from_bytes(bytes.fromhex(h.removeprefix("0x")), "little")


def felt_to_hex(f: int) -> str:
    return (f % BN254_R).to_bytes(32, "little").hex()


@dataclass(frozen=True)
class _Circuit:
    dir: Path
    manifest: Manifest
    settings: dict[str, Any]

    def file(self, role: str) -> Path:
        return self.manifest.path(self.dir, role)

    @property
    def lookup_range(self) -> tuple[int, int]:
        lo, hi = self.settings["run_args"]["lookup_range"]
        return int(lo), int(hi)


class EzklBackend(ProofBackend):
    """EZKL 23 (Halo2-KZG over BN254) through its Python API.

    ``target``, ``scales``, ``lookup_safety_margin`` and ``max_logrows`` go to
    ``calibrate_settings``: with ``"resources"`` EZKL picks the scales and the smallest logrows
    that fit the calibrated lookup range.
    """

    name = NAME

    def __init__(
        self,
        *,
        target: Literal["resources", "accuracy"] = "resources",
        scales: Sequence[int] | None = None,
        lookup_safety_margin: float = 2.0,
        max_logrows: int | None = None,
        self_verify: bool = True,
    ) -> None:
        self.target = target
        self.scales = list(scales) if scales is not None else None
        self.lookup_safety_margin = lookup_safety_margin
        self.max_logrows = max_logrows
        self.self_verify = self_verify   # verify every proof before handing it out (~20 ms)

    def config(self) -> dict[str, Any]:
        """Everything in this object that shapes a compiled circuit (for cache keys)."""
        return {
            "target": self.target, "scales": self.scales,
            "lookup_safety_margin": self.lookup_safety_margin, "max_logrows": self.max_logrows,
            "build_version": BUILD_VERSION,
        }

    # -- compile ----------------------------------------------------------------------------
    def compile(self, onnx_path: Path, out_dir: Path, options: CompileOptions) -> Manifest:
        import ezkl

        t_start = time.monotonic()
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise BackendError(f"{onnx_path}: no such ONNX file")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in [*FILES.values(), "manifest.json", "verifier.abi"]:
            (out_dir / f).unlink(missing_ok=True)
        shutil.copyfile(onnx_path, out_dir / FILES["onnx"])
        p = {role: out_dir / f for role, f in FILES.items()}

        with _EZKL_LOCK:
            # 1. settings
            run_args: Any = ezkl.PyRunArgs()    # (the .pyi stub declares no attributes)
            run_args.input_visibility = "public"
            run_args.output_visibility = "public"
            run_args.param_visibility = "fixed"
            # Symbolic dimensions (a dynamic batch "N", ...) are fixed to 1: one inference.
            run_args.variables = [("batch_size", 1)] + [
                (d, 1) for d in _symbolic_input_dims(onnx_path) if d != "batch_size"]
            try:
                ezkl.gen_settings(str(p["onnx"]), str(p["settings"]), py_run_args=run_args)
            except RuntimeError as e:
                raise BackendError(f"{onnx_path}: EZKL cannot read this model ({e})") from e
            raw = json.loads(p["settings"].read_text())
            shapes = raw.get("model_instance_shapes", [])
            if len(raw.get("model_input_scales", [])) != 1 or len(shapes) != 2:
                raise BackendError(
                    f"{onnx_path}: only models with exactly one input and one output tensor "
                    f"are supported (instance shapes {shapes})"
                )
            input_shape = [int(d) for d in shapes[0]]
            output_shape = [int(d) for d in shapes[1]]
            n_in = _prod(input_shape)

            # 2. calibration
            if options.calibration is not None:
                calib = load_calibration(Path(options.calibration), n_in)
                calib_src = str(options.calibration)
            else:
                calib = np.random.default_rng(0).uniform(
                    0.0, 1.0, size=(DEFAULT_CALIBRATION_SAMPLES, n_in))
                calib_src = (f"default: {DEFAULT_CALIBRATION_SAMPLES} uniform samples in "
                             "[0, 1], seed 0")
                log.warning("no calibration data for %s: using %s", onnx_path, calib_src)
            p["calibration"].write_text(
                json.dumps({"input_data": [calib.reshape(-1).tolist()]}) + "\n")
            t0 = time.monotonic()
            try:
                ezkl.calibrate_settings(
                    str(p["calibration"]), str(p["onnx"]), str(p["settings"]), self.target,
                    lookup_safety_margin=self.lookup_safety_margin, scales=self.scales,
                    scale_rebase_multiplier=[1], max_logrows=self.max_logrows,
                )
            except RuntimeError as e:
                raise BackendError(f"{onnx_path}: EZKL calibration failed ({e})") from e
            calibrate_s = time.monotonic() - t0
            settings = json.loads(p["settings"].read_text())
            ra = settings["run_args"]
            logrows = int(ra["logrows"])
            input_scale = int(settings["model_input_scales"][0])
            output_scale = int(settings["model_output_scales"][0])

            # 3. circuit
            try:
                ezkl.compile_circuit(str(p["onnx"]), str(p["compiled"]), str(p["settings"]))
            except RuntimeError as e:
                raise BackendError(f"{onnx_path}: EZKL cannot compile the circuit ({e})") from e

            # 4. SRS
            t0 = time.monotonic()
            dev_keys = options.setup_file is None
            if dev_keys:
                srs_src = dev_srs(logrows, options.cache_dir)
            else:
                assert options.setup_file is not None
                srs_src = Path(options.setup_file)
                if not srs_src.is_file():
                    raise BackendError(f"{srs_src}: no such SRS file")
            _link_or_copy(srs_src, p["srs"])
            srs_s = time.monotonic() - t0

            # 5. keys
            t0 = time.monotonic()
            try:
                ezkl.setup(str(p["compiled"]), str(p["vk"]), str(p["pk"]), srs_path=str(p["srs"]),
                           witness_path=None, disable_selector_compression=False)
            except RuntimeError as e:
                hint = "" if dev_keys else f" (is {srs_src} a KZG SRS of at least 2^{logrows}?)"
                raise BackendError(f"{onnx_path}: EZKL setup failed ({e}){hint}") from e
            setup_s = time.monotonic() - t0

        # 6. verifier (child process, see module docstring), then our own solc
        t0 = time.monotonic()
        _create_evm_verifier(p["vk"], p["settings"], p["srs"], p["verifier_sol"])
        contract = _contract_name(p["verifier_sol"])
        verifier = compile_verifier(p["verifier_sol"], contract)
        p["verifier_json"].write_text(json.dumps(verifier, indent=1) + "\n")
        verifier_s = time.monotonic() - t0
        runtime_bytes = (len(verifier["deployedBytecode"]) - 2) // 2
        if runtime_bytes > EIP170_MAX_RUNTIME:
            log.warning("%s: verifier runtime is %d bytes, above the EIP-170 limit of %d: it "
                        "cannot be deployed on mainnet-like chains", out_dir, runtime_bytes,
                        EIP170_MAX_RUNTIME)

        # 7. signed ranges the registry enforces
        # Headroom: calibration samples rarely reach the edges of the real range (uniform
        # [0, 1) samples never contain 1.0); the power-of-two rounding adds more.
        input_bits = signed_bits_for(np.round(calib * (1 << input_scale) * INPUT_HEADROOM))
        ref_out = _onnx_reference(p["onnx"], calib, input_shape)
        calib_out_fixed = np.round(ref_out * (1 << output_scale))
        # Wider headroom: an honest output for an input beyond the calibrated samples (but
        # inside input_bits) must never fail the on-chain range check.
        output_bits = signed_bits_for(calib_out_fixed * OUTPUT_HEADROOM)

        circuit = _Circuit(out_dir, _placeholder_manifest(input_shape, output_shape, input_scale,
                                                          output_scale, input_bits, output_bits),
                           settings)
        probe = self._probe_input_range(circuit, p)
        if probe["lookup_overflows"]:
            log.warning(
                "%s: %d of %d probe inputs inside the %d-bit input range drive a lookup outside "
                "the calibrated range %s; proving such inputs fails with BackendError. Use "
                "calibration data covering the whole input range or a larger "
                "lookup_safety_margin.", out_dir, probe["lookup_overflows"], probe["probes"],
                input_bits, ra["lookup_range"])

        name = options.name or (onnx_path.parent.name if onnx_path.stem == "model"
                                else onnx_path.stem)
        sizes = {role: (out_dir / f).stat().st_size for role, f in FILES.items()}
        manifest = Manifest(
            backend=NAME,
            name=name,
            circuit_id=circuit_id_of(p["vk"]),
            input_shape=input_shape,
            output_shape=output_shape,
            input_scale=input_scale,
            output_scale=output_scale,
            input_bits=input_bits,
            output_bits=output_bits,
            signal_layout="inputs_then_outputs",
            files=dict(FILES),
            verifier_contract=contract,
            dev_keys=dev_keys,
            toolchain=toolchain_versions(),
            settings={
                "build_version": BUILD_VERSION,
                "calibration_source": calib_src,
                "calibration_samples": int(calib.shape[0]),
                "calibrate": {"target": self.target, "scales": self.scales,
                              "lookup_safety_margin": self.lookup_safety_margin,
                              "scale_rebase_multiplier": [1], "max_logrows": self.max_logrows},
                "run_args": ra,
                "onnx_sha256": _sha256_file(p["onnx"]),
                "srs": {"source": str(srs_src), "logrows": logrows, "local_dev_srs": dev_keys,
                        "sha256": _sha256_file(p["srs"])},
                "solc": {k: v for k, v in SOLC_SETTINGS.items() if k != "outputSelection"},
                "verifier": {"function": "verifyProof(bytes,uint256[])", "reusable": False,
                             "instances": "inputs_then_outputs (field elements)"},
                "input_range_probe": probe,
            },
            stats={
                "logrows": logrows,
                "num_rows": int(settings.get("num_rows", 0)),
                "num_instances": _prod(input_shape) + _prod(output_shape),
                "calibrate_seconds": round(calibrate_s, 3),
                "srs_seconds": round(srs_s, 3),
                "setup_seconds": round(setup_s, 3),
                "verifier_seconds": round(verifier_s, 3),
                "compile_seconds": round(time.monotonic() - t_start, 3),
                "pk_bytes": sizes["pk"],
                "vk_bytes": sizes["vk"],
                "srs_bytes": sizes["srs"],
                "compiled_bytes": sizes["compiled"],
                "verifier_runtime_bytes": runtime_bytes,
                "proof_bytes": _sol_proof_length(p["verifier_sol"]),
            },
        )
        manifest.save(out_dir)
        log.info("compiled %s with EZKL: logrows %d, scales in/out %d/%d, setup %.1f s -> %s",
                 name, logrows, input_scale, output_scale, setup_s, out_dir)
        return manifest

    def _probe_input_range(self, c: _Circuit, p: dict[str, Path]) -> dict[str, Any]:
        """Witnesses for inputs at the edges of the registered input range: do their lookups stay
        inside the calibrated table? (Informative: recorded in the manifest, warned about.)"""
        import ezkl

        m = c.manifest
        n = m.input_size
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
        rng = np.random.default_rng(1)
        probes = [np.full(n, lo), np.full(n, hi)]
        probes += [rng.choice([lo, hi], size=n) for _ in range(8)]
        probes += [rng.integers(lo, hi, endpoint=True, size=n) for _ in range(8)]
        t_lo, t_hi = c.lookup_range
        overflows = 0
        with tempfile.TemporaryDirectory(prefix="ezkl-probe-") as tmp, _EZKL_LOCK:
            data, wit = Path(tmp) / "input.json", Path(tmp) / "witness.json"
            for x in probes:
                floats = [int(v) / float(1 << m.input_scale) for v in x]
                data.write_text(json.dumps({"input_data": [floats]}))
                w = ezkl.gen_witness(str(data), str(p["compiled"]), str(wit), vk_path=None,
                                     srs_path=None)
                if int(w["max_lookup_inputs"]) > t_hi or int(w["min_lookup_inputs"]) < t_lo:
                    overflows += 1
        return {"probes": len(probes), "lookup_overflows": overflows,
                "lookup_range": [t_lo, t_hi]}

    # -- prove ------------------------------------------------------------------------------
    def load(self, circuit_dir: Path) -> _Circuit:
        d = Path(circuit_dir)
        try:
            m = Manifest.load(d)
        except ManifestError as e:
            raise BackendError(str(e)) from e
        if m.backend != NAME:
            raise BackendError(f"{d}: circuit built for backend {m.backend!r}, not {NAME!r}")
        if m.signal_layout != "inputs_then_outputs":
            raise BackendError(f"{d}: unexpected signal layout {m.signal_layout!r}")
        try:
            settings = json.loads(m.path(d, "settings").read_text())
        except (ManifestError, json.JSONDecodeError) as e:
            raise BackendError(f"{d}: unreadable EZKL settings ({e})") from e
        return _Circuit(d, m, settings)

    def check_input(self, m: Manifest, input_fixed: Sequence[Any]) -> list[int]:
        if len(input_fixed) != m.input_size:
            raise BackendError(f"expected {m.input_size} inputs, got {len(input_fixed)}")
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
        out: list[int] = []
        for i, v in enumerate(input_fixed):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise BackendError(f"input {i} = {v!r} is not an integer (fixed point expected)")
            if not lo <= int(v) <= hi:
                raise BackendError(f"input {i} = {int(v)} is outside the {m.input_bits}-bit "
                                   f"signed range [{lo}, {hi}]")
            out.append(int(v))
        return out

    def prove(self, circuit_dir: Path, input_fixed: list[int], payee: str | None = None) -> Proof:
        import ezkl

        c = self.load(circuit_dir)
        m = c.manifest
        x = self.check_input(m, input_fixed)
        n_in, n_out = m.input_size, m.output_size
        # v / 2**s is exact in binary floating point (|v| < 2**24 also survives EZKL's f32).
        floats = [v / float(1 << m.input_scale) for v in x]
        with tempfile.TemporaryDirectory(prefix="ezkl-prove-") as tmp:
            data, wit, proof_file = (Path(tmp) / n for n in
                                     ("input.json", "witness.json", "proof.json"))
            data.write_text(json.dumps({"input_data": [floats]}))
            with _EZKL_LOCK:
                t0 = time.monotonic()
                try:
                    w = ezkl.gen_witness(str(data), str(c.file("compiled")), str(wit),
                                         vk_path=None, srs_path=None)
                except RuntimeError as e:
                    raise BackendError(f"EZKL witness generation failed: {e}") from e
                witness_s = time.monotonic() - t0
                got_in = [from_field(felt_from_hex(h)) for h in w["inputs"][0]]
                if got_in != x:
                    raise BackendError(
                        f"EZKL quantized the input to {got_in}, not the requested {x} "
                        f"(input scale {m.input_scale})")
                t_lo, t_hi = c.lookup_range
                w_lo, w_hi = int(w["min_lookup_inputs"]), int(w["max_lookup_inputs"])
                if w_lo < t_lo or w_hi > t_hi:
                    # ezkl.prove hangs on such a witness instead of failing.
                    raise BackendError(
                        f"input drives a lookup to [{w_lo}, {w_hi}], outside the circuit's "
                        f"calibrated range [{t_lo}, {t_hi}]: this circuit cannot prove it")
                t0 = time.monotonic()
                try:
                    ezkl.prove(str(wit), str(c.file("compiled")), str(c.file("pk")),
                               str(proof_file), srs_path=str(c.file("srs")))
                except RuntimeError as e:
                    raise BackendError(f"EZKL proving failed: {e}") from e
                prove_s = time.monotonic() - t0
                if self.self_verify and not self._ezkl_verify(c, proof_file):
                    raise BackendError("EZKL produced a proof that does not verify")
            native = json.loads(proof_file.read_text())
        inst = [felt_from_hex(h) for h in native["instances"][0]]
        if len(inst) != n_in + n_out:
            raise BackendError(f"proof has {len(inst)} instances, expected {n_in} inputs + "
                               f"{n_out} outputs")
        if inst[:n_in] != [to_field(v) for v in x]:
            raise BackendError("proof instances do not start with the requested input")
        output = [from_field(f) for f in inst[n_in:]]
        w_out = [from_field(felt_from_hex(h)) for h in w["outputs"][0]]
        if w_out != output:
            raise BackendError(f"proof outputs {output} differ from the witness {w_out}")
        lo, hi = -(1 << (m.output_bits - 1)), (1 << (m.output_bits - 1)) - 1
        bad = [i for i, v in enumerate(output) if not lo <= v <= hi]
        if bad:
            raise BackendError(
                f"output {bad[0]} = {output[bad[0]]} is outside the registered {m.output_bits}-bit "
                f"range [{lo}, {hi}]: the chain would reject it")
        proof_bytes = bytes(native["proof"])
        return Proof(
            backend=NAME,
            circuit_id=m.circuit_id,
            input_fixed=x,
            output_fixed=output,
            public_signals=[str(f) for f in inst],
            proof=native,
            calldata="0x" + proof_bytes.hex(),
            prove_seconds=prove_s,
            extra={"witness_seconds": round(witness_s, 4), "proof_bytes": len(proof_bytes),
                   "lookup_inputs": [w_lo, w_hi]},
        )

    # -- verify -----------------------------------------------------------------------------
    def expected_instances(self, input_fixed: Sequence[int], output_fixed: Sequence[int]
                           ) -> list[int]:
        """The verifier's ``uint256[] instances``: inputs then outputs as field elements."""
        return [to_field(int(v)) for v in [*input_fixed, *output_fixed]]

    def mismatch(self, m: Manifest, proof: Proof) -> str | None:
        """Why ``proof`` cannot be for its (input_fixed, output_fixed) on this circuit, or None."""
        why = shape_mismatch(NAME, m, proof)
        if why is not None:
            return why
        for what, vals, bits in (("input", proof.input_fixed, m.input_bits),
                                 ("output", proof.output_fixed, m.output_bits)):
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            for v in vals:
                if isinstance(v, bool) or not isinstance(v, int | np.integer):
                    return f"{what} {v!r} is not an integer"
                if not lo <= int(v) <= hi:
                    return f"{what} {int(v)} is outside the {bits}-bit range"
        expected = self.expected_instances(proof.input_fixed, proof.output_fixed)
        if list(proof.public_signals) != [str(f) for f in expected]:
            return "public signals do not equal [input_fixed..., output_fixed...]"
        native = proof.proof
        if isinstance(native, dict):
            try:
                if "instances" in native and (
                        [felt_from_hex(h) for h in native["instances"][0]] != expected):
                    return "the native proof's instances differ from (input, output)"
                if "proof" in native and "0x" + bytes(native["proof"]).hex() != _norm_hex(
                        proof.calldata):
                    return "the native proof's bytes differ from the calldata"
            except (TypeError, ValueError, IndexError, KeyError) as e:
                return f"malformed native proof ({e})"
        return None

    def verify(self, circuit_dir: Path, proof: Proof) -> bool:
        c = self.load(circuit_dir)
        m = c.manifest
        try:
            m.check_circuit_id(c.dir)
        except ManifestError as e:
            raise BackendError(str(e)) from e
        reason = self.mismatch(m, proof)
        if reason:
            log.info("proof rejected: %s", reason)
            return False
        try:
            proof_bytes = bytes.fromhex(_norm_hex(proof.calldata)[2:])
        except ValueError:
            log.info("proof rejected: calldata is not hex")
            return False
        # What the chain checks: exactly these proof bytes against (input, output).
        expected = self.expected_instances(proof.input_fixed, proof.output_fixed)
        snark = {"instances": [[felt_to_hex(f) for f in expected]], "proof": list(proof_bytes),
                 "protocol": None, "split": None}
        with tempfile.TemporaryDirectory(prefix="ezkl-verify-") as tmp:
            f = Path(tmp) / "proof.json"
            f.write_text(json.dumps(snark))
            with _EZKL_LOCK:
                return self._ezkl_verify(c, f)

    def _ezkl_verify(self, c: _Circuit, proof_file: Path) -> bool:
        import ezkl

        try:
            return bool(ezkl.verify(str(proof_file), str(c.file("settings")), str(c.file("vk")),
                                    srs_path=str(c.file("srs")), reduced_srs=False))
        except RuntimeError as e:   # EZKL raises on an invalid proof
            log.info("proof rejected by EZKL: %s", e)
            return False


# -- helpers ---------------------------------------------------------------------------------
def load_calibration(path: Path, n_inputs: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Samples from .npy, JSON {"input": [[...], ...]}, EZKL's {"input_data": [[...]]} or a
    bare JSON list; each sample flattens to ``n_inputs`` floats."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            raw = json.loads(path.read_text())
            if isinstance(raw, dict):
                raw = raw["input"] if "input" in raw else raw["input_data"]
            arr = np.asarray(raw, dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"{path}: unreadable calibration data ({e})") from e
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size == 0 or arr.size % n_inputs:
        raise BackendError(f"{path}: {arr.size} calibration values are not a non-empty multiple "
                           f"of the model's {n_inputs} inputs")
    arr = arr.reshape(-1, n_inputs)
    if not np.all(np.isfinite(arr)):
        raise BackendError(f"{path}: calibration data contains NaN or infinity")
    return arr


def signed_bits_for(values: np.ndarray[Any, Any]) -> int:
    """Smallest b with -2**(b-1) <= min and max < 2**(b-1) (at least 2)."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    b = 2
    while not (-(1 << (b - 1)) <= lo and hi < (1 << (b - 1))):
        b += 1
    return b


def dev_srs(logrows: int, cache_dir: Path | None = None) -> Path:
    """A local KZG SRS for 2^logrows, generated once and cached. UNSAFE: development only."""
    import ezkl

    d = Path(cache_dir or CACHE_DIR) / "srs"
    path = d / f"kzg-dev-{logrows}.srs"
    log.warning(
        "EZKL keys will come from a LOCAL, UNSAFE SRS (%s): whoever generated it can forge "
        "proofs. DEVELOPMENT ONLY; pass a ceremony SRS file (setup_file) for production.", path)
    if path.is_file():
        return path
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".kzg-dev-{logrows}.{os.getpid()}.{threading.get_ident()}.tmp"
    t0 = time.monotonic()
    with _EZKL_LOCK:
        ezkl.gen_srs(str(tmp), logrows)
    tmp.replace(path)     # atomic: concurrent builders never see a partial file
    log.info("generated dev SRS 2^%d in %.1f s -> %s", logrows, time.monotonic() - t0, path)
    return path


def svm_home() -> Path:
    """A project-local HOME whose ``.svm/0.8.20/solc-0.8.20`` is the project's solc."""
    home = CACHE_DIR / "ezkl-home"
    link = home / ".svm" / "0.8.20" / "solc-0.8.20"
    target = SOLC.resolve()
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".solc.{os.getpid()}.{threading.get_ident()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return home


def _create_evm_verifier(vk: Path, settings: Path, srs: Path, sol: Path) -> None:
    env = dict(os.environ, HOME=str(svm_home()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    abi = sol.with_name("verifier.abi")
    cmd = [sys.executable, "-c",
           "import sys; from oracle.proving.ezkl_backend import _evm_verifier_main; "
           "_evm_verifier_main(sys.argv[1:])",
           str(vk), str(settings), str(sol), str(abi), str(srs)]
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=600, check=False)
    wrote_abi = abi.is_file()
    abi.unlink(missing_ok=True)    # we keep the abi of our own compilation (verifier.json)
    if res.returncode != 0 and not wrote_abi:
        why = f"exit code {res.returncode}: {(res.stderr + res.stdout).strip()[-2000:]}"
        if sol.is_file() and sol.stat().st_size > 0:
            # EZKL writes the .sol before it compiles it: usable, our solc compiles it next.
            log.warning("create_evm_verifier failed after writing %s (continuing; %s)", sol, why)
            return
        raise BackendError(f"EZKL create_evm_verifier failed ({why})")


def _evm_verifier_main(argv: list[str]) -> NoReturn:
    """Child-process entry point: EZKL's async ``create_evm_verifier`` on a private loop."""
    import ezkl

    vk, settings, sol, abi, srs = argv
    _run_async(lambda: ezkl.create_evm_verifier(vk, settings, sol, abi, srs_path=srs,
                                                reusable=False))
    # EZKL 23's async runtime crashes the interpreter at exit about half the time (SIGSEGV or
    # SIGABRT after the files are written): skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def compile_verifier(sol_file: Path, contract: str) -> dict[str, Any]:
    """Compile the generated verifier with the project's solc; abi + bytecode as JSON."""
    import solcx
    from solcx.exceptions import SolcError

    std = {"language": "Solidity",
           "sources": {sol_file.name: {"content": sol_file.read_text()}},
           "settings": SOLC_SETTINGS}
    try:
        out: dict[str, Any] = solcx.compile_standard(std, solc_binary=str(SOLC.resolve()))
    except SolcError as e:
        raise BackendError(f"{sol_file}: solc failed: {e}") from e
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BackendError(f"{sol_file}: " + "\n".join(
            e.get("formattedMessage", e["message"]) for e in errors))
    c = out["contracts"][sol_file.name][contract]
    return {
        "contractName": contract,
        "abi": c["abi"],
        "bytecode": "0x" + c["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        "compiler": {"solc": solc_version(),
                     "settings": {k: v for k, v in SOLC_SETTINGS.items()
                                  if k != "outputSelection"}},
    }


def _contract_name(sol: Path) -> str:
    m = re.search(r"^\s*contract\s+(\w+)", sol.read_text(), re.MULTILINE)
    if not m:
        raise BackendError(f"{sol}: no contract found in the generated verifier")
    return m.group(1)


def _sol_proof_length(sol: Path) -> int | None:
    m = re.search(r"eq\((0x[0-9a-fA-F]+),\s*proof\.length\)", sol.read_text())
    return int(m.group(1), 16) if m else None


_versions: dict[str, str] = {}


def solc_version() -> str:
    if "solc" not in _versions:
        out = subprocess.run([str(SOLC), "--version"], capture_output=True, text=True,
                             timeout=60, check=False).stdout
        m = re.search(r"Version:\s*(\S+)", out)
        _versions["solc"] = m.group(1) if m else out.strip()
    return _versions["solc"]


def toolchain_versions() -> dict[str, str]:
    from importlib.metadata import version

    v = {"ezkl": version("ezkl"), "onnx": version("onnx"), "solc": solc_version(),
         "python": sys.version.split()[0]}
    return v


def _onnx_reference(onnx_file: Path, samples: np.ndarray[Any, Any], input_shape: list[int]
                    ) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Float outputs of the model (onnxruntime) for each sample, flattened per sample."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [np.asarray(sess.run(None, {name: s.reshape(input_shape).astype(np.float32)})[0],
                       dtype=np.float64).reshape(-1) for s in samples]
    return np.stack(outs)


def _symbolic_input_dims(onnx_file: Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    return sorted({d.dim_param for i in model.graph.input if i.name not in init
                   for d in i.type.tensor_type.shape.dim if d.dim_param})


def _placeholder_manifest(input_shape: list[int], output_shape: list[int], input_scale: int,
                          output_scale: int, input_bits: int, output_bits: int) -> Manifest:
    return Manifest(backend=NAME, name="", circuit_id="", input_shape=input_shape,
                    output_shape=output_shape, input_scale=input_scale,
                    output_scale=output_scale, input_bits=input_bits, output_bits=output_bits,
                    signal_layout="inputs_then_outputs", files={}, verifier_contract="",
                    dev_keys=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _norm_hex(h: str) -> str:
    h = h.lower()
    return h if h.startswith("0x") else "0x" + h


def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
