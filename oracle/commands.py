"""Plain functions behind the ``oracle compile / prove / verify`` commands (any backend).

PROOF.json (written by ``prove_file``)::

    {"backend", "circuit_id",
     "input": floats (input_fixed / 2**input_scale: the value actually proven),
     "input_fixed": ints, "output": floats (output_fixed / 2**output_scale),
     "output_fixed": ints, "public_signals": decimal strings, "proof": backend-native JSON,
     "calldata": "0x..." (the bytes argument of fulfill), "prove_seconds": float,
     "payee": "0x..." (the fee recipient the proof is bound to) or null (circuit binds none)}
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from oracle.circuits.fixedpoint import FixedPointError, from_fixed, to_fixed
from oracle.circuits.manifest import Manifest, ManifestError
from oracle.errors import UserError
from oracle.proving.base import BackendError, CompileOptions, Proof
from oracle.proving.registry import get_backend, prove_folder, why_not_valid

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"


def _calibration(onnx: Path, calibration: Path | None) -> Path | None:
    """--calibration, else a calibration.json next to the model if present."""
    if not onnx.is_file():
        raise BackendError(f"{onnx}: no such ONNX file")
    if calibration is None and (onnx.parent / CALIBRATION_FILE).is_file():
        calibration = onnx.parent / CALIBRATION_FILE
        log.info("using calibration data %s", calibration)
    return calibration


def compile_model(onnx: Path, backend: str, out: Path, calibration: Path | None = None,
                  setup_file: Path | None = None, packed_signals: bool = True, generator: str | None = None,
                  ptau_power: int | None = None, max_ceremony_seconds: float | None = None) -> Manifest:
    """Build a circuit folder. Without --calibration, a calibration.json next to the model
    is used if present. ``generator`` (groth16): "direct" (the default) or "circom"."""
    options = CompileOptions(calibration=_calibration(onnx, calibration), setup_file=setup_file,
                             packed_signals=packed_signals, ptau_power=ptau_power,
                             max_ceremony_seconds=max_ceremony_seconds)
    if backend != "groth16":
        return get_backend(backend).compile(onnx, out, options)
    from oracle.proving.groth16 import Groth16Backend

    g = Groth16Backend(generator=generator) if generator else Groth16Backend()
    try:
        return g.compile(onnx, out, options)
    finally:
        g.close()


def compile_sliced_model(onnx: Path, out: Path, calibration: Path | None = None, setup_file: Path | None = None,
                         slices: int | str | None = "auto", slice_constraints: int | None = None,
                         ptau_power: int | None = None) -> Manifest:
    """A sliced model folder (oracle.proving.groth16.sliced): k direct circuits on one ceremony."""
    from oracle.proving.groth16.sliced import compile_sliced

    options = CompileOptions(calibration=_calibration(onnx, calibration), setup_file=setup_file,
                             ptau_power=ptau_power)
    return compile_sliced(onnx, out, options, slices=slices, slice_constraints=slice_constraints)


def plan_model(onnx: Path, calibration: Path | None = None, generator: str | None = None,
               setup_file: Path | None = None, packed_signals: bool = True, ptau_power: int | None = None,
               max_ceremony_seconds: float | None = None) -> tuple[dict[str, Any], str | None]:
    """What compiling ``onnx`` with groth16 would need and take, and why it would be refused
    (None: it would run). Seconds of work: nothing is written, no ceremony is built."""
    from oracle.proving.groth16 import Groth16Backend
    from oracle.proving.groth16.estimate import CompileRefused, check

    g = Groth16Backend(generator=generator) if generator else Groth16Backend()
    plan = g.plan(onnx, CompileOptions(calibration=_calibration(onnx, calibration), setup_file=setup_file,
                                       packed_signals=packed_signals, ptau_power=ptau_power))
    log.info("plan for %s:\n%s", onnx, plan.summary())
    try:
        check(plan, max_ceremony_seconds)
    except CompileRefused as e:
        return plan.to_json(), str(e)
    return plan.to_json(), None


def read_input(m: Manifest, input_json: Path) -> list[int]:
    """{"input": floats (any nesting)} at the model's input scale, or {"input_fixed": ints}."""
    try:
        raw = json.loads(input_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BackendError(f"{input_json}: cannot read input JSON ({e})") from e
    if isinstance(raw, dict) and "input_fixed" in raw:
        vals = np.asarray(raw["input_fixed"], dtype=object).reshape(-1).tolist()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise BackendError(f"{input_json}: input_fixed must be integers")
        return [int(v) for v in vals]
    data = raw.get("input") if isinstance(raw, dict) else raw
    if data is None:
        raise BackendError(
            f"{input_json}: expected {{\"input\": [...]}} or {{\"input_fixed\": [...]}}"
        )
    try:
        floats = np.asarray(data, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise BackendError(f"{input_json}: input must be numbers ({e})") from e
    if floats.size != m.input_size:
        raise BackendError(f"expected {m.input_size} inputs, got {floats.size}")
    try:
        return to_fixed(floats.tolist(), m.input_scale, m.input_bits)
    except FixedPointError as e:
        raise BackendError(f"{input_json}: {e}") from e


def proof_document(m: Manifest, p: Proof) -> dict[str, Any]:
    return {
        "backend": p.backend,
        "circuit_id": p.circuit_id,
        "input": from_fixed(p.input_fixed, m.input_scale),
        "input_fixed": p.input_fixed,
        "output": from_fixed(p.output_fixed, m.output_scale),
        "output_fixed": p.output_fixed,
        "public_signals": p.public_signals,
        "proof": p.proof,
        "calldata": p.calldata,
        "prove_seconds": round(p.prove_seconds, 4),
        "payee": p.payee,
    }


def prove_file(circuit_dir: Path, input_json: Path, out_json: Path, payee: str | None = None) -> dict[str, Any]:
    """Proves the input of ``input_json`` for ``payee``, the address the oracle will credit
    (required when the circuit binds a payee: ``fulfill`` must then name the same payee)."""
    m = Manifest.load(circuit_dir)
    if m.binds_payee and payee is None:
        raise BackendError(f"{circuit_dir}: this circuit binds the fee recipient into its proofs: "
                           "pass --payee <address the oracle will credit>")
    x = read_input(m, input_json)
    p = prove_folder(circuit_dir, m, x, payee)
    doc = proof_document(m, p)
    try:
        out_json.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as e:
        raise UserError(f"{out_json}: cannot write the proof ({e.strerror})") from e
    return doc


def verify_file(circuit_dir: Path, proof_json: Path) -> tuple[bool, str]:
    """(valid, reason). Every field that a consumer reads is re-checked against the proof."""
    try:
        m = Manifest.load(circuit_dir)
        m.check_circuit_id(circuit_dir)
    except ManifestError as e:
        return False, str(e)
    try:
        doc = json.loads(proof_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return False, f"{proof_json}: unreadable ({e})"
    keys = ("backend", "circuit_id", "input_fixed", "output", "output_fixed",
            "public_signals", "proof", "calldata")
    missing = [k for k in keys if k not in doc]
    if missing:
        return False, f"missing fields: {', '.join(missing)}"
    if doc["backend"] != m.backend:
        return False, f"proof is for backend {doc['backend']!r}, circuit is {m.backend!r}"
    if doc["circuit_id"] != m.circuit_id:
        return False, f"proof is for circuit {doc['circuit_id']}, this circuit is {m.circuit_id}"
    payee = doc.get("payee")
    if payee is not None and not isinstance(payee, str):
        return False, "payee must be a 0x-hex address or null"
    ints = doc["input_fixed"], doc["output_fixed"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for lst in ints for v in lst):
        return False, "input_fixed/output_fixed must be integers"
    if doc["output"] != from_fixed(doc["output_fixed"], m.output_scale):
        return False, "output does not equal output_fixed / 2**output_scale"
    if "input" in doc and doc["input"] != from_fixed(doc["input_fixed"], m.input_scale):
        return False, "input does not equal input_fixed / 2**input_scale"
    proof = Proof(
        backend=doc["backend"], circuit_id=doc["circuit_id"],
        input_fixed=list(doc["input_fixed"]), output_fixed=list(doc["output_fixed"]),
        public_signals=[str(s) for s in doc["public_signals"]], proof=doc["proof"],
        calldata=str(doc["calldata"]), payee=payee,
    )
    try:
        why = why_not_valid(circuit_dir, m, proof)
    except BackendError as e:
        return False, str(e)
    return (False, why) if why is not None else (True, "valid")
