"""The `oracle` command line on a model that is not one of the references: compile, prove,
verify, register, and a clear error (no traceback, non-zero exit) for every user mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from web3 import Web3

from oracle.chain.anvil import Anvil
from oracle.chain.deploy import Deployment


def oracle(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORACLE_")}
    return subprocess.run([sys.executable, "-m", "oracle.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _model(path: Path, unsupported: bool = False) -> Path:
    rng = np.random.default_rng(5)
    w1 = numpy_helper.from_array(rng.normal(0, 0.6, (6, 5)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (5,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.6, (5, 2)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.normal(0, 0.1, (2,)).astype(np.float32), "b2")
    last = helper.make_node("Exp", ["z"], ["y"], name="final_exp") if unsupported else \
        helper.make_node("HardSigmoid", ["z"], ["y"], name="squash")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="mm1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add1"),
        helper.make_node("Relu", ["h1"], ["h"], name="relu"),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["z"], name="gemm2"),
        last,
    ]
    g = helper.make_graph(nodes, "cli-model", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w1, b1, w2, b2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    r = oracle("models", "compile", str(_model(d / "m.onnx")), "--backend", "groth16", "--out", str(d / "circuit"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["backend"] == "groth16" and out["circuit_id"].startswith("0x") and out["dev_keys"] is True
    assert "DEVELOPMENT" in r.stderr  # dev keys are announced loudly
    return d / "circuit"


PAYEE = "0x00000000000000000000000000000000000a11ce"


def _prove(circuit: Path, tmp: Path, values: object, payee: str | None = PAYEE
           ) -> tuple[subprocess.CompletedProcess[str], Path]:
    inp, out = tmp / "in.json", tmp / "proof.json"
    inp.write_text(json.dumps({"input": values}))
    extra = ("--payee", payee) if payee is not None else ()
    return oracle("prove", str(circuit), "--input", str(inp), "--out", str(out), *extra), out


def test_compile_prove_verify_a_new_model(compiled: Path, tmp_path: Path) -> None:
    r, out = _prove(compiled, tmp_path, [0.1, 0.5, -0.3, 0.9, 0.0, 0.25])
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert {"output", "output_fixed", "public_signals", "proof", "calldata", "payee"} <= set(doc)
    assert len(doc["output"]) == 2 and len(bytes.fromhex(doc["calldata"][2:])) == 256
    assert doc["payee"] == PAYEE
    v = oracle("verify", str(compiled), str(out))
    assert v.returncode == 0 and "valid" in v.stdout
    # Altering any of output, output_fixed, the payee or the proof fails verification with a reason.
    for field, change in (("output", lambda d: d["output"].__setitem__(0, d["output"][0] + 0.5)),
                          ("output_fixed", lambda d: d["output_fixed"].__setitem__(1, d["output_fixed"][1] + 1)),
                          ("payee", lambda d: d.__setitem__("payee", "0x" + "00" * 19 + "b0")),
                          ("calldata", lambda d: d.__setitem__("calldata", d["calldata"][:-2] + "00"))):
        bad = json.loads(out.read_text())
        change(bad)
        f = tmp_path / f"bad-{field}.json"
        f.write_text(json.dumps(bad))
        r2 = oracle("verify", str(compiled), str(f))
        assert r2.returncode == 1, field
        assert "INVALID" in r2.stderr and "Traceback" not in r2.stderr
    # The circuit binds the fee recipient: proving without --payee is a clear error.
    r3, _ = _prove(compiled, tmp_path, [0.1, 0.5, -0.3, 0.9, 0.0, 0.25], payee=None)
    assert r3.returncode == 2 and "--payee" in r3.stderr and "Traceback" not in r3.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.1] * 5, "expected 6"),
        ([0.1, float("nan"), 0, 0, 0, 0], "NaN"),
        ([0.1, 1e9, 0, 0, 0, 0], "range"),
    ],
)
def test_bad_inputs_are_clear_errors(compiled: Path, tmp_path: Path, values: list[float], message: str) -> None:
    r, _ = _prove(compiled, tmp_path, values)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_missing_and_corrupt_artifacts(compiled: Path, tmp_path: Path) -> None:
    r, _ = _prove(tmp_path / "nowhere", tmp_path, [0.0] * 6)
    assert r.returncode == 2 and "manifest" in r.stderr and "Traceback" not in r.stderr
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(compiled), str(broken)], check=True)
    (broken / "manifest.json").write_text("{ not json")
    r, _ = _prove(broken, tmp_path, [0.0] * 6)
    assert r.returncode == 2 and "corrupt manifest" in r.stderr and "Traceback" not in r.stderr


def test_a_user_error_is_one_line(tmp_path: Path) -> None:
    r, _ = _prove(tmp_path / "nowhere", tmp_path, [0.0] * 6)
    manifest = tmp_path / "nowhere" / "manifest.json"
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"error: {manifest}: not a circuit folder (no manifest.json)"]
    r = oracle("models", "compile", str(tmp_path / "m.onnx"), "--backend", "ezkl", "--out", str(tmp_path / "c"),
               "--ptau", str(tmp_path / "x.ptau"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["error: --ptau is for the groth16 backend; use --srs with ezkl"]


# `oracle prove` whose implementation has a bug: a ValueError that no user input explains.
_BUGGY_PROVE = """
import sys
import oracle.commands

def prove_file(*args, **kwargs):
    raise ValueError("a bug in prove_file")

oracle.commands.prove_file = prove_file
from oracle.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_programming_error_is_not_reported_as_bad_input(tmp_path: Path) -> None:
    """Only the oracle's own errors are user errors: a bug keeps its traceback and is never
    dressed up as a one-line complaint about the input."""
    r = subprocess.run([sys.executable, "-c", _BUGGY_PROVE, "prove", str(tmp_path), "--input", str(tmp_path / "i"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and r.stderr.rstrip().endswith("ValueError: a bug in prove_file")
    assert "error: a bug" not in r.stderr


def test_unsupported_operator_names_op_and_node(tmp_path: Path) -> None:
    # Exp has no exact or bounded-error lowering (Softmax as the last op is dropped, not refused).
    r = oracle("models", "compile", str(_model(tmp_path / "s.onnx", unsupported=True)), "--backend", "groth16",
               "--out", str(tmp_path / "c"))
    assert r.returncode == 2
    assert "Exp" in r.stderr and "final_exp" in r.stderr and "Traceback" not in r.stderr
    assert "ezkl" in r.stderr     # the way out is named


def test_register_prints_model_id(compiled: Path, anvil: Anvil, deployment: Deployment) -> None:
    r = oracle("models", "register", str(compiled), "--rpc", anvil.url, "--registry", deployment.registry)
    assert r.returncode == 0, r.stderr
    model_id = r.stdout.strip().splitlines()[-1]
    assert model_id.startswith("0x") and len(model_id) == 66
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    from oracle.chain.compiler import compile_project

    reg = w3.eth.contract(address=Web3.to_checksum_address(deployment.registry),
                          abi=compile_project()["ModelRegistry"].abi)
    assert reg.functions.isRegistered(bytes.fromhex(model_id[2:])).call()
    again = oracle("models", "register", str(compiled), "--rpc", anvil.url, "--registry", deployment.registry)
    assert again.returncode == 2 and "ModelAlreadyRegistered" in again.stderr


def test_destination_command(anvil: Anvil, deployment: Deployment) -> None:
    from oracle.chain.compiler import compile_project

    oracle_c = Web3(Web3.HTTPProvider(anvil.url)).eth.contract(
        address=Web3.to_checksum_address(deployment.oracle), abi=compile_project()["InferenceOracle"].abi)
    r = oracle("destination", "--rpc", anvil.url, "--oracle", deployment.oracle, "--chain-id", "424242")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["allowed"] is True and oracle_c.functions.isDestination(424242).call()
    r = oracle("destination", "--rpc", anvil.url, "--oracle", deployment.oracle, "--chain-id", "424242", "--disable")
    assert r.returncode == 0 and not oracle_c.functions.isDestination(424242).call()
    own = str(Web3(Web3.HTTPProvider(anvil.url)).eth.chain_id)
    r = oracle("destination", "--rpc", anvil.url, "--oracle", deployment.oracle, "--chain-id", own)
    assert r.returncode == 2 and f"InvalidDestination(chainId={own})" in r.stderr and "Traceback" not in r.stderr
