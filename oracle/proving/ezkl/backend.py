"""EZKL 23 (Halo2-KZG over BN254) as a ``ProofBackend``: compile (``build``), prove, verify."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from oracle.circuits.fixedpoint import from_field, to_field
from oracle.circuits.manifest import Manifest, ManifestError
from oracle.errors import BackendError
from oracle.proving.base import CompileOptions, Proof, ProofBackend, shape_mismatch
from oracle.proving.ezkl.build import build_circuit
from oracle.proving.ezkl.folder import BUILD_VERSION, NAME, Circuit, load_circuit
from oracle.proving.ezkl.instances import (
    expected_instances,
    felt_from_hex,
    native_mismatch,
    norm_hex,
    snark_for,
)
from oracle.proving.ezkl.runtime import EZKL_LOCK
from oracle.proving.ezkl.settings import CalibrateOptions

log = logging.getLogger(__name__)


class EzklBackend(ProofBackend):
    """EZKL 23 (Halo2-KZG over BN254) through its Python API.

    Owns nothing long-lived (EZKL runs in this process, one call at a time under
    ``EZKL_LOCK``). ``compile`` runs the named build steps of ``build`` (settings, calibration,
    SRS and keys, Solidity verifier). ``prove`` refuses (``BackendError``) an input EZKL would
    quantize to another value or that drives a lookup outside the calibrated range (``ezkl.prove``
    hangs on those), and checks the proof's instances against the input, the witness and the
    output range the chain enforces; with ``self_verify`` every proof is verified before it is
    handed out. ``verify`` checks exactly the proof bytes the chain would get against
    ``[inputs..., outputs...]``.

    Never talks to a chain, the store or the network. It binds no payee: the ``payee`` argument
    of ``prove`` is ignored, and front-running is stopped by commit-reveal, which the relayer
    does (``CommitGate``). ``target``, ``scales``, ``lookup_safety_margin`` and ``max_logrows``
    go to ``calibrate_settings``: with ``"resources"`` EZKL picks the scales and the smallest
    logrows that fit the calibrated lookup range.
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
        self.calibrate_options = CalibrateOptions(
            target=target, scales=list(scales) if scales is not None else None,
            lookup_safety_margin=lookup_safety_margin, max_logrows=max_logrows)
        self.self_verify = self_verify   # verify every proof before handing it out (~20 ms)

    def config(self) -> dict[str, Any]:
        """Everything in this object that shapes a compiled circuit (for cache keys)."""
        o = self.calibrate_options
        return {
            "target": o.target, "scales": o.scales,
            "lookup_safety_margin": o.lookup_safety_margin, "max_logrows": o.max_logrows,
            "build_version": BUILD_VERSION,
        }

    def compile(self, onnx_path: Path, out_dir: Path, options: CompileOptions) -> Manifest:
        return build_circuit(onnx_path, out_dir, options, self.calibrate_options)

    # -- prove ------------------------------------------------------------------------------
    def load(self, circuit_dir: Path) -> Circuit:
        return load_circuit(circuit_dir)

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
        c = self.load(circuit_dir)
        m = c.manifest
        x = self.check_input(m, input_fixed)
        with tempfile.TemporaryDirectory(prefix="ezkl-prove-") as tmp:
            data, wit, proof_file = (Path(tmp) / n for n in ("input.json", "witness.json", "proof.json"))
            # v / 2**s is exact in binary floating point (|v| < 2**24 also survives EZKL's f32).
            data.write_text(json.dumps({"input_data": [[v / float(1 << m.input_scale) for v in x]]}))
            with EZKL_LOCK:
                t0 = time.monotonic()
                w = _provable_witness(c, x, data, wit)
                witness_s = time.monotonic() - t0
                prove_s = self._prove_witness(c, wit, proof_file)
            native = json.loads(proof_file.read_text())
        instances, output = _proven_output(m, x, native, w)
        proof_bytes = bytes(native["proof"])
        return Proof(
            backend=NAME,
            circuit_id=m.circuit_id,
            input_fixed=x,
            output_fixed=output,
            public_signals=[str(f) for f in instances],
            proof=native,
            calldata="0x" + proof_bytes.hex(),
            prove_seconds=prove_s,
            extra={"witness_seconds": round(witness_s, 4), "proof_bytes": len(proof_bytes),
                   "lookup_inputs": [int(w["min_lookup_inputs"]), int(w["max_lookup_inputs"])]},
        )

    def _prove_witness(self, c: Circuit, wit: Path, proof_file: Path) -> float:
        """Proves the witness into ``proof_file`` (checked when ``self_verify``); the seconds
        the proof itself took."""
        import ezkl

        t0 = time.monotonic()
        try:
            ezkl.prove(str(wit), str(c.file("compiled")), str(c.file("pk")), str(proof_file),
                       srs_path=str(c.file("srs")))
        except RuntimeError as e:
            raise BackendError(f"EZKL proving failed: {e}") from e
        prove_s = time.monotonic() - t0
        if self.self_verify and not self._ezkl_verify(c, proof_file):
            raise BackendError("EZKL produced a proof that does not verify")
        return prove_s

    # -- verify -----------------------------------------------------------------------------
    def expected_instances(self, input_fixed: Sequence[int], output_fixed: Sequence[int]
                           ) -> list[int]:
        """The verifier's ``uint256[] instances``: inputs then outputs as field elements."""
        return expected_instances(input_fixed, output_fixed)

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
        expected = expected_instances(proof.input_fixed, proof.output_fixed)
        if list(proof.public_signals) != [str(f) for f in expected]:
            return "public signals do not equal [input_fixed..., output_fixed...]"
        if isinstance(proof.proof, dict):
            return native_mismatch(proof.proof, expected, proof.calldata)
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
            proof_bytes = bytes.fromhex(norm_hex(proof.calldata)[2:])
        except ValueError:
            log.info("proof rejected: calldata is not hex")
            return False
        # What the chain checks: exactly these proof bytes against (input, output).
        snark = snark_for(expected_instances(proof.input_fixed, proof.output_fixed), proof_bytes)
        with tempfile.TemporaryDirectory(prefix="ezkl-verify-") as tmp:
            f = Path(tmp) / "proof.json"
            f.write_text(json.dumps(snark))
            with EZKL_LOCK:
                return self._ezkl_verify(c, f)

    def _ezkl_verify(self, c: Circuit, proof_file: Path) -> bool:
        import ezkl

        try:
            return bool(ezkl.verify(str(proof_file), str(c.file("settings")), str(c.file("vk")),
                                    srs_path=str(c.file("srs")), reduced_srs=False))
        except RuntimeError as e:   # EZKL raises on an invalid proof
            log.info("proof rejected by EZKL: %s", e)
            return False


def _provable_witness(c: Circuit, x: list[int], data: Path, wit: Path) -> dict[str, Any]:
    """EZKL's witness for input ``x``, refused unless proving it can succeed: EZKL must have
    quantized the input to exactly ``x``, and every lookup must stay inside the calibrated
    range (``ezkl.prove`` HANGS, no error and no CPU, on a witness whose lookup inputs fall
    outside it)."""
    import ezkl

    m = c.manifest
    try:
        w: dict[str, Any] = ezkl.gen_witness(str(data), str(c.file("compiled")), str(wit),
                                             vk_path=None, srs_path=None)
    except RuntimeError as e:
        raise BackendError(f"EZKL witness generation failed: {e}") from e
    got_in = [from_field(felt_from_hex(h)) for h in w["inputs"][0]]
    if got_in != x:
        raise BackendError(
            f"EZKL quantized the input to {got_in}, not the requested {x} "
            f"(input scale {m.input_scale})")
    t_lo, t_hi = c.lookup_range
    w_lo, w_hi = int(w["min_lookup_inputs"]), int(w["max_lookup_inputs"])
    if w_lo < t_lo or w_hi > t_hi:
        raise BackendError(
            f"input drives a lookup to [{w_lo}, {w_hi}], outside the circuit's "
            f"calibrated range [{t_lo}, {t_hi}]: this circuit cannot prove it")
    return w


def _proven_output(m: Manifest, x: list[int], native: dict[str, Any], w: dict[str, Any]
                   ) -> tuple[list[int], list[int]]:
    """(the proof's instances, the output they state), checked against the input asked for, the
    witness, and the output range the chain enforces."""
    n_in, n_out = m.input_size, m.output_size
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
    return inst, output
