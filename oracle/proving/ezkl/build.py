"""Building an EZKL circuit folder from an ONNX model: one named step after the other, then the
manifest that describes what was built (and how long each step took)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx

from oracle.circuits.manifest import Manifest, circuit_id_of, sha256_file
from oracle.errors import BackendError
from oracle.proving.base import CompileOptions
from oracle.proving.ezkl.calibration import (
    F64,
    calibration_samples,
    probe_input_range,
    registered_bits,
)
from oracle.proving.ezkl.folder import BUILD_VERSION, FILES, NAME, SIGNAL_LAYOUT
from oracle.proving.ezkl.runtime import EZKL_LOCK, toolchain_versions
from oracle.proving.ezkl.settings import (
    Calibrated,
    CalibrateOptions,
    Shapes,
    calibrate,
    compile_circuit,
    write_settings,
)
from oracle.proving.ezkl.srs import Srs, make_keys, place_srs
from oracle.proving.ezkl.verifier import Verifier, build_verifier, sol_proof_length, solc_settings_recorded

log = logging.getLogger(__name__)


class _Stopwatch:
    """Seconds per named step, for the manifest's stats."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - t0, 3)

    def total(self) -> float:
        return round(time.monotonic() - self.start, 3)


def build_circuit(onnx_path: Path, out_dir: Path, options: CompileOptions, calibrate_options: CalibrateOptions
                  ) -> Manifest:
    """Settings, calibration, circuit, SRS, keys, verifier, registered ranges, range probe,
    manifest: the circuit folder ``out_dir`` for ``onnx_path``."""
    clock = _Stopwatch()
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if not onnx_path.is_file():
        raise BackendError(f"{onnx_path}: no such ONNX file")
    paths = _fresh_folder(onnx_path, out_dir)
    # One compile's EZKL steps run together: EZKL keeps process-wide state between them.
    with EZKL_LOCK:
        shapes = write_settings(onnx_path, paths)
        samples, samples_source = calibration_samples(options.calibration, shapes.n_inputs, onnx_path)
        with clock.step("calibrate"):
            calibrated = calibrate(onnx_path, paths, samples, calibrate_options)
        compile_circuit(onnx_path, paths)
        with clock.step("srs"):
            srs = place_srs(options.setup_file, calibrated.logrows, options.cache_dir, paths["srs"])
        with clock.step("setup"):
            make_keys(onnx_path, paths, srs, calibrated.logrows)
    with clock.step("verifier"):
        verifier = build_verifier(paths, out_dir)
    input_bits, output_bits = registered_bits(samples, calibrated, paths["onnx"], shapes.input)
    probe = probe_input_range(paths["compiled"], shapes.n_inputs, input_bits, calibrated.input_scale,
                              calibrated.lookup_range)
    if probe["lookup_overflows"]:
        log.warning(
            "%s: %d of %d probe inputs inside the %d-bit input range drive a lookup outside "
            "the calibrated range %s; proving such inputs fails with BackendError. Use "
            "calibration data covering the whole input range or a larger "
            "lookup_safety_margin.", out_dir, probe["lookup_overflows"], probe["probes"],
            input_bits, calibrated.run_args["lookup_range"])
    name = options.name or (onnx_path.parent.name if onnx_path.stem == "model" else onnx_path.stem)
    manifest = Manifest(
        backend=NAME,
        name=name,
        circuit_id=circuit_id_of(paths["vk"]),
        input_shape=shapes.input,
        output_shape=shapes.output,
        input_scale=calibrated.input_scale,
        output_scale=calibrated.output_scale,
        input_bits=input_bits,
        output_bits=output_bits,
        signal_layout=SIGNAL_LAYOUT,
        files=dict(FILES),
        verifier_contract=verifier.contract,
        dev_keys=srs.dev_keys,
        toolchain=toolchain_versions(),
        settings=_settings_record(paths, samples, samples_source, calibrate_options, calibrated, srs, probe),
        stats=_stats(out_dir, paths, shapes, calibrated, verifier, clock),
    )
    manifest.save(out_dir)
    log.info("compiled %s with EZKL: logrows %d, scales in/out %d/%d, setup %.1f s -> %s",
             name, calibrated.logrows, calibrated.input_scale, calibrated.output_scale,
             clock.seconds["setup"], out_dir)
    return manifest


def _fresh_folder(onnx_path: Path, out_dir: Path) -> dict[str, Path]:
    """``out_dir`` without the files of an earlier build, with a copy of the model; the path of
    every file by role."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in [*FILES.values(), "manifest.json", "verifier.abi"]:
        (out_dir / f).unlink(missing_ok=True)
    write_explicit_defaults(onnx_path, out_dir / FILES["onnx"])
    return {role: out_dir / f for role, f in FILES.items()}


# ONNX defaults that EZKL's reader (tract) requires spelled out: a Conv without ``strides``
# fails with "a node is missing required params: stride" although ONNX defines them.
_SPATIAL_DEFAULTS = {"Conv": ("strides", "pads", "dilations"), "MaxPool": ("strides", "pads"),
                     "AveragePool": ("strides", "pads")}


def write_explicit_defaults(src: Path, dst: Path) -> None:
    """Copies the model to ``dst`` with Conv/pool nodes' default strides, pads and dilations
    written out (the same function; onnxruntime agrees), so EZKL reads exported CNNs."""
    model = onnx.load(str(src))
    for n in model.graph.node:
        if n.op_type not in _SPATIAL_DEFAULTS:
            continue
        attrs = {a.name: a for a in n.attribute}
        if "auto_pad" in attrs and onnx.helper.get_attribute_value(attrs["auto_pad"]) not in (b"NOTSET", "NOTSET"):
            continue            # pads are implied by auto_pad; adding them would be invalid
        kernel = attrs.get("kernel_shape")
        if kernel is not None:
            rank = len(onnx.helper.get_attribute_value(kernel))
        else:                   # a Conv may omit kernel_shape: the weight's spatial rank
            weight = next((t for t in model.graph.initializer if len(n.input) > 1 and t.name == n.input[1]), None)
            if weight is None:
                continue
            rank = len(weight.dims) - 2
        for name in _SPATIAL_DEFAULTS[n.op_type]:
            if name not in attrs:
                n.attribute.append(onnx.helper.make_attribute(name, [0] * (2 * rank) if name == "pads" else [1] * rank))
    onnx.save(model, str(dst))


def _settings_record(paths: dict[str, Path], samples: F64, samples_source: str, options: CalibrateOptions,
                     calibrated: Calibrated, srs: Srs, probe: dict[str, Any]) -> dict[str, Any]:
    """How the circuit was built: enough to rebuild it, and to judge its setup."""
    return {
        "build_version": BUILD_VERSION,
        "calibration_source": samples_source,
        "calibration_samples": int(samples.shape[0]),
        "calibrate": options.to_json(),
        "run_args": calibrated.run_args,
        "onnx_sha256": sha256_file(paths["onnx"]),
        "srs": {"source": str(srs.source), "logrows": calibrated.logrows, "local_dev_srs": srs.dev_keys,
                "sha256": sha256_file(paths["srs"])},
        "solc": solc_settings_recorded(),
        "verifier": {"function": "verifyProof(bytes,uint256[])", "reusable": False,
                     "instances": "inputs_then_outputs (field elements)"},
        "input_range_probe": probe,
    }


def _stats(out_dir: Path, paths: dict[str, Path], shapes: Shapes, calibrated: Calibrated, verifier: Verifier,
           clock: _Stopwatch) -> dict[str, Any]:
    sizes = {role: (out_dir / f).stat().st_size for role, f in FILES.items()}
    return {
        "logrows": calibrated.logrows,
        "num_rows": int(calibrated.raw.get("num_rows", 0)),
        "num_instances": shapes.n_instances,
        "calibrate_seconds": clock.seconds["calibrate"],
        "srs_seconds": clock.seconds["srs"],
        "setup_seconds": clock.seconds["setup"],
        "verifier_seconds": clock.seconds["verifier"],
        "compile_seconds": clock.total(),
        "pk_bytes": sizes["pk"],
        "vk_bytes": sizes["vk"],
        "srs_bytes": sizes["srs"],
        "compiled_bytes": sizes["compiled"],
        "verifier_runtime_bytes": verifier.runtime_bytes,
        "proof_bytes": sol_proof_length(paths["verifier_sol"]),
    }
