"""EZKL's settings for one inference, calibrated, and the circuit compiled from them.

The settings make inputs and outputs public and parameters fixed (so the proof's instances are
``[inputs..., outputs...]``, see ``instances``); calibration picks the scales (quantization is
``round(x * 2**scale)``), the lookup range and the smallest logrows that fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from oracle.errors import BackendError
from oracle.proving.ezkl.runtime import EZKL_LOCK


@dataclass(frozen=True)
class CalibrateOptions:
    """What goes to EZKL's ``calibrate_settings``: with ``"resources"`` EZKL picks the scales
    and the smallest logrows that fit the calibrated lookup range."""

    target: Literal["resources", "accuracy"] = "resources"
    scales: list[int] | None = None
    lookup_safety_margin: float = 2.0
    max_logrows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "scales": self.scales,
                "lookup_safety_margin": self.lookup_safety_margin,
                "scale_rebase_multiplier": [1], "max_logrows": self.max_logrows}


@dataclass(frozen=True)
class Shapes:
    input: list[int]
    output: list[int]

    @property
    def n_inputs(self) -> int:
        return _prod(self.input)

    @property
    def n_instances(self) -> int:
        return _prod(self.input) + _prod(self.output)


@dataclass(frozen=True)
class Calibrated:
    """The settings after calibration (``raw`` as EZKL wrote them)."""

    raw: dict[str, Any]

    @property
    def run_args(self) -> dict[str, Any]:
        ra: dict[str, Any] = self.raw["run_args"]
        return ra

    @property
    def logrows(self) -> int:
        return int(self.run_args["logrows"])

    @property
    def lookup_range(self) -> tuple[int, int]:
        lo, hi = self.run_args["lookup_range"]
        return int(lo), int(hi)

    @property
    def input_scale(self) -> int:
        return int(self.raw["model_input_scales"][0])

    @property
    def output_scale(self) -> int:
        return int(self.raw["model_output_scales"][0])


def write_settings(onnx_path: Path, paths: dict[str, Path]) -> Shapes:
    """EZKL's settings for one inference of the model (public input and output, fixed
    parameters); refuses models without exactly one input and one output tensor."""
    import ezkl

    run_args: Any = ezkl.PyRunArgs()    # (the .pyi stub declares no attributes)
    run_args.input_visibility = "public"
    run_args.output_visibility = "public"
    run_args.param_visibility = "fixed"
    # Symbolic dimensions (a dynamic batch "N", ...) are fixed to 1: one inference.
    run_args.variables = [("batch_size", 1)] + [
        (d, 1) for d in symbolic_input_dims(onnx_path) if d != "batch_size"]
    with EZKL_LOCK:
        try:
            ezkl.gen_settings(str(paths["onnx"]), str(paths["settings"]), py_run_args=run_args)
        except RuntimeError as e:
            raise BackendError(f"{onnx_path}: EZKL cannot read this model ({e})") from e
    raw = json.loads(paths["settings"].read_text())
    shapes = raw.get("model_instance_shapes", [])
    if len(raw.get("model_input_scales", [])) != 1 or len(shapes) != 2:
        raise BackendError(
            f"{onnx_path}: only models with exactly one input and one output tensor "
            f"are supported (instance shapes {shapes})"
        )
    return Shapes(input=[int(d) for d in shapes[0]], output=[int(d) for d in shapes[1]])


def calibrate(onnx_path: Path, paths: dict[str, Path], samples: np.ndarray[Any, np.dtype[np.float64]],
              options: CalibrateOptions) -> Calibrated:
    """Writes the samples in EZKL's format and calibrates the settings on them."""
    import ezkl

    paths["calibration"].write_text(json.dumps({"input_data": [samples.reshape(-1).tolist()]}) + "\n")
    with EZKL_LOCK:
        try:
            ezkl.calibrate_settings(
                str(paths["calibration"]), str(paths["onnx"]), str(paths["settings"]), options.target,
                lookup_safety_margin=options.lookup_safety_margin, scales=options.scales,
                scale_rebase_multiplier=[1], max_logrows=options.max_logrows,
            )
        except RuntimeError as e:
            raise BackendError(f"{onnx_path}: EZKL calibration failed ({e})") from e
    return Calibrated(json.loads(paths["settings"].read_text()))


def compile_circuit(onnx_path: Path, paths: dict[str, Path]) -> None:
    import ezkl

    with EZKL_LOCK:
        try:
            ezkl.compile_circuit(str(paths["onnx"]), str(paths["compiled"]), str(paths["settings"]))
        except RuntimeError as e:
            raise BackendError(f"{onnx_path}: EZKL cannot compile the circuit ({e})") from e


def symbolic_input_dims(onnx_file: Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    return sorted({d.dim_param for i in model.graph.input if i.name not in init
                   for d in i.type.tensor_type.shape.dim if d.dim_param})


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
