"""``oracle audit`` on a real anvil with real Groth16 proofs: fulfilled via fulfill, via an entry
of fulfillBatch, via the running service for a request sent by an external client (cast), and
the failure modes (pending, unknown id, tampered verification key).

The audit FAILS a circuit registered with development keys (check ``setup``). The shared test
circuits have development keys, so most tests here expect exactly that one failure next to
every other check passing; the circuit compiled from a ptau file (``ceremony_circuit``) shows
the audit passing end to end."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from oracle.audit.proofs import proof_from_chain
from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.compiler import Artifact
from oracle.chain.deploy import Deployment
from oracle.chain.registration import setup_of, verify_gas_for
from oracle.chain.structs import model_arg, new_model
from oracle.circuits.manifest import Manifest
from oracle.paths import ROOT, foundry_bin
from oracle.proving.base import CompileOptions
from oracle.proving.groth16 import Groth16Backend
from oracle.proving.groth16 import ptau as ptau_files
from tests.conftest import account_chain
from tests.forwarder import deploy_forwarder
from tests.protocol import Protocol, last_request_id, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, running_service, service_config, wait_for

NO_CALLBACK = "0x" + "00" * 20
FULFIL_GAS = 1_500_000
ALL_CHECKS = ["setup", "fulfilled", "request_log", "fulfilment_log", "calldata", "output_match", "circuit_id",
              "registration", "verifier_code", "offchain_verify", "onchain_verify"]
ALL_PASS = dict.fromkeys(ALL_CHECKS, "PASS")
# A dev-keys circuit whose fulfilment is sound in every other respect.
ONLY_DEV_KEYS_FAIL = {**ALL_PASS, "setup": "FAIL"}
EXTERNAL_KEY = DEV_KEYS[7]  # an account no fixture or service uses


@pytest.fixture(scope="module")
def ceremony_circuit(groth16_backend: Groth16Backend, risk_circuit: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The risk model set up from a powers-of-tau FILE (``--ptau``), so not flagged dev_keys and
    recorded with that file's sha256. (The file is this machine's cached local ptau: good
    enough to exercise the audit's passing path, which only sees the flag and the hash.)"""
    d = tmp_path_factory.mktemp("ceremony")
    ptau = d / "ceremony.ptau"
    power = int(Manifest.load(risk_circuit).stats["ptau_power"])
    shutil.copyfile(ptau_files.local_ptau(power, ROOT / ".cache"), ptau)
    out = d / "risk"
    m = groth16_backend.compile(ROOT / "models" / "risk" / "model.onnx", out, CompileOptions(
        calibration=ROOT / "models" / "risk" / "calibration.json", setup_file=ptau))
    assert not m.dev_keys and m.settings["ptau"]["sha256"] == hashlib.sha256(ptau.read_bytes()).hexdigest()
    return out


def run_audit(rpc: str, oracle: str, request_id: int, *extra: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "oracle.cli", "audit", "--rpc", rpc, "--oracle", oracle,
         "--request", str(request_id), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def audit_json(rpc: str, oracle: str, request_id: int, *extra: str) -> tuple[int, dict[str, Any], str]:
    rc, out, err = run_audit(rpc, oracle, request_id, "--json", *extra)
    return rc, json.loads(out), err


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def rpc_of(chain: Chain) -> str:
    return str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def request(p: Protocol, x: list[int]) -> int:
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(p.chain.w3.eth.get_block("latest")["timestamp"]) + 600
    p.chain.transact(p.oracle.functions.requestInference(p.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
    return last_request_id(p)


def payee_of(chain: Chain) -> str:
    assert chain.account is not None
    return chain.account.address


def assert_only_dev_keys_fail(rc: int, rep: dict[str, Any], err: str) -> None:
    """Every check passes but ``setup``: the circuit was registered with development keys."""
    assert rc == 1, err
    assert rep["ok"] is False and rep["status"] == "fulfilled"
    assert statuses(rep) == ONLY_DEV_KEYS_FAIL, rep["checks"]
    assert rep["setup"]["dev_keys"] is True
    assert "DEVELOPMENT keys" in rep["reason"] and rep["reason"].startswith("setup:")


def test_audit_fulfill(chain: Chain, deployment: Deployment, ceremony_circuit: Path,
                       groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    """A circuit set up from a ptau file: every check passes, exit 0. The transaction is sent by
    another account than the payee the proof names: the report tells them apart."""
    p = setup_protocol(chain, deployment, ceremony_circuit, vault_deposit=0)
    rid = request(p, [10] * 8)
    payee = Account.from_key(DEV_KEYS[4]).address
    proof = groth16_backend.prove(ceremony_circuit, [10] * 8, payee)
    sender = account_chain(chain, 3)
    sender.transact(sender.contract("InferenceOracle", deployment.oracle).functions.fulfill(
        rid, proof.output_fixed, payee, HexBytes(proof.calldata)), gas=FULFIL_GAS)
    models = models_dir_with(tmp_path, ceremony_circuit)

    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid, "--models", str(models))
    assert rc == 0, err
    assert rep["ok"] is True and rep["status"] == "fulfilled"
    assert statuses(rep) == ALL_PASS
    ptau_sha = Manifest.load(ceremony_circuit).settings["ptau"]["sha256"]
    assert rep["setup"] == {"setup_hash": "0x" + ptau_sha, "dev_keys": False}
    f = rep["fulfilment"]
    assert f["function"] == "fulfill" and f["batch_index"] is None
    assert f["payee"] == payee and f["sender"] == sender.account.address != payee  # type: ignore[union-attr]
    assert f["event_output"] == f["calldata_output"] == proof.output_fixed
    assert f["proof"] == proof.calldata
    assert rep["input"] == [10] * 8 and rep["model"]["circuit_id"] == p.reg.circuit_id

    # Human-readable report, same verdict.
    rc, out, _ = run_audit(rpc_of(chain), deployment.oracle, rid, "--models", str(models))
    assert rc == 0 and "RESULT: PASS" in out and "[PASS   ] offchain_verify" in out
    assert f"fee to {payee}" in out

    # Without --models: the artifact checks are SKIPPED (said so), the chain checks still decide.
    rc, rep, _ = audit_json(rpc_of(chain), deployment.oracle, rid)
    assert rc == 0
    st = statuses(rep)
    skipped = [k for k, v in st.items() if v == "SKIPPED"]
    assert skipped == ["circuit_id", "registration", "verifier_code", "offchain_verify"]
    assert st["onchain_verify"] == st["setup"] == "PASS"
    assert "skipped" in rep["reason"]


def test_audit_fails_development_keys(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                      groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    """The same fulfilment with the dev-keys circuit: sound in every other respect, and still a
    FAIL (exit 1), because whoever ran that local ceremony can forge its proofs."""
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    rid = request(p, [10] * 8)
    proof = groth16_backend.prove(risk_circuit, [10] * 8, payee_of(chain))
    chain.transact(p.oracle.functions.fulfill(rid, proof.output_fixed, payee_of(chain), HexBytes(proof.calldata)),
                   gas=FULFIL_GAS)
    models = models_dir_with(tmp_path, risk_circuit)
    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid, "--models", str(models))
    assert_only_dev_keys_fail(rc, rep, err)
    assert rep["setup"]["setup_hash"] == "0x" + Manifest.load(risk_circuit).settings["ptau"]["sha256"]
    assert "setup: circuit" in err and "DEVELOPMENT keys" in err
    rc, out, _ = run_audit(rpc_of(chain), deployment.oracle, rid, "--models", str(models))
    assert rc == 1 and "RESULT: FAIL: setup:" in out and "[FAIL   ] setup" in out


def test_audit_entry_of_fulfill_batch(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                      groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    inputs = [[5] * 8, [12] * 8, [20] * 8]
    ids = [request(p, x) for x in inputs]
    proofs = [groth16_backend.prove(risk_circuit, x, payee_of(chain)) for x in inputs]
    chain.w3.provider.make_request("anvil_mine", ["0x5"])  # type: ignore[arg-type]  # blocks between request and fulfilment
    chain.transact(p.oracle.functions.fulfillBatch(ids, [pr.output_fixed for pr in proofs], payee_of(chain),
                                                   [HexBytes(pr.calldata) for pr in proofs]), gas=3 * FULFIL_GAS)
    # The middle entry; a 2-block log range makes the search walk several ranges.
    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, ids[1],
                              "--models", str(models_dir_with(tmp_path, risk_circuit)), "--max-log-range", "2")
    assert_only_dev_keys_fail(rc, rep, err)
    f = rep["fulfilment"]
    assert (f["function"], f["batch_index"], f["batch_size"]) == ("fulfillBatch", 1, 3)
    assert f["calldata_output"] == proofs[1].output_fixed and f["proof"] == proofs[1].calldata
    assert rep["input"] == inputs[1]


def test_audit_pending_request_is_not_fulfilled(chain: Chain, deployment: Deployment, risk_circuit: Path) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    rid = request(p, [3] * 8)
    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid)
    assert rc == 1
    assert rep["status"] == "pending" and rep["ok"] is False
    assert f"request {rid} is not fulfilled (status: pending" in err
    assert statuses(rep) == {"setup": "FAIL", "fulfilled": "FAIL"}   # setup: the circuit's dev keys


def test_audit_unknown_request(chain: Chain, deployment: Deployment) -> None:
    rc, out, err = run_audit(rpc_of(chain), deployment.oracle, 999)
    assert rc == 2
    assert f"request 999 does not exist on oracle {deployment.oracle}" in err
    assert "RESULT: FAIL" in out


def test_audit_tampered_artifacts(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                         groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    rid = request(p, [7] * 8)
    proof = groth16_backend.prove(risk_circuit, [7] * 8, payee_of(chain))
    chain.transact(p.oracle.functions.fulfill(rid, proof.output_fixed, payee_of(chain), HexBytes(proof.calldata)),
                   gas=FULFIL_GAS)
    bad = tmp_path / "models" / "risk"
    shutil.copytree(risk_circuit, bad)
    vk_file = bad / "verification_key.json"
    vk = json.loads(vk_file.read_text())
    vk["vk_alpha_1"][0] = str(int(vk["vk_alpha_1"][0]) + 1)
    vk_file.write_text(json.dumps(vk))

    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid, "--models", str(tmp_path / "models"))
    assert rc == 1
    st = statuses(rep)
    assert st["circuit_id"] == "FAIL" and st["offchain_verify"] == "SKIPPED"
    assert st["onchain_verify"] == "PASS"  # the chain itself is fine; the artifacts are not
    detail = next(c["detail"] for c in rep["checks"] if c["name"] == "circuit_id")
    assert "circuit id mismatch" in detail and p.reg.circuit_id in detail
    assert "circuit_id: circuit id mismatch" in err

    # A folder with the right key but another verifier build: the code on-chain is not this one.
    other = tmp_path / "models2" / "risk"
    shutil.copytree(risk_circuit, other)
    art = json.loads((other / "verifier.json").read_text())
    art["deployedBytecode"] = art["deployedBytecode"][:-2] + ("00" if art["deployedBytecode"][-2:] != "00" else "01")
    (other / "verifier.json").write_text(json.dumps(art))
    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid, "--models", str(tmp_path / "models2"))
    assert rc == 1
    st = statuses(rep)
    assert st["circuit_id"] == st["offchain_verify"] == st["onchain_verify"] == "PASS"
    assert st["verifier_code"] == "FAIL" and "differs from verifier.json" in err
    assert [k for k, v in st.items() if v == "FAIL"] == ["setup", "verifier_code"]   # setup: dev keys


def test_audit_external_request_fulfilled_by_service(chain: Chain, deployment: Deployment, ceremony_circuit: Path,
                                                     tmp_path: Path) -> None:
    p = setup_protocol(chain, deployment, ceremony_circuit, vault_deposit=0)
    rpc = rpc_of(chain)
    models = models_dir_with(tmp_path, ceremony_circuit)
    cfg = service_config(rpc, deployment.oracle, models, f"sqlite:///{tmp_path / 'oracle.db'}")
    x = [9, 0, 4, 17, 2, 30, 1, 8]
    fee = int(p.oracle.functions.quoteFee(p.model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    with running_service(cfg):
        out = subprocess.run(
            [str(foundry_bin("cast")), "send", "--json", "--rpc-url", rpc, "--private-key", EXTERNAL_KEY,
             deployment.oracle, "requestInference(bytes32,int256[],address,uint32,uint64)",
             p.reg.model_id, "[" + ",".join(map(str, x)) + "]", NO_CALLBACK, "0", str(deadline),
             "--value", str(fee)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        receipt = json.loads(out)
        assert int(receipt["status"], 16) == 1
        topic = "0x" + event_abi_to_log_topic(
            next(e for e in p.oracle.abi if e.get("name") == "InferenceRequested")).hex()  # type: ignore[arg-type]
        rid = next(int(lg["topics"][1], 16) for lg in receipt["logs"] if lg["topics"][0] == topic)
        wait_for(lambda: int(p.oracle.functions.requestStatus(rid).call()) == 2, 90, "the service to fulfil")

    rc, rep, err = audit_json(rpc, deployment.oracle, rid, "--models", str(models))
    assert rc == 0, err
    assert statuses(rep) == ALL_PASS
    assert rep["input"] == x
    assert rep["request_tx"] == receipt["transactionHash"]
    # The service sent the fulfilment and proved it for its payee (by default its relayer account).
    relayer = Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]).address
    f = rep["fulfilment"]
    assert f["payee"] == f["sender"] == relayer != to_checksum_address(receipt["from"])


def test_rebuilt_proof_verifies_only_for_its_own_signals(risk_circuit: Path, groth16_backend: Groth16Backend) -> None:
    """The off-chain check is not vacuous: the proof rebuilt from calldata bytes verifies for the
    request's (input, output) and for nothing else."""
    m = Manifest.load(risk_circuit)
    x = [4] * 8
    payee, other_payee = Account.from_key(DEV_KEYS[4]).address, Account.from_key(DEV_KEYS[6]).address
    proved = groth16_backend.prove(risk_circuit, x, payee)
    raw = bytes(HexBytes(proved.calldata))
    assert groth16_backend.verify(risk_circuit, proof_from_chain(m, x, proved.output_fixed, raw, payee))
    other_out = [proved.output_fixed[0] + 1, *proved.output_fixed[1:]]
    assert not groth16_backend.verify(risk_circuit, proof_from_chain(m, x, other_out, raw, payee))
    assert not groth16_backend.verify(risk_circuit, proof_from_chain(m, [5] * 8, proved.output_fixed, raw, payee))
    assert not groth16_backend.verify(risk_circuit, proof_from_chain(m, x, proved.output_fixed, raw, other_payee))
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    assert not groth16_backend.verify(risk_circuit, proof_from_chain(m, x, proved.output_fixed, flipped, payee))


def test_audit_misregistered_model(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                   groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    """A model registered with the right circuit but a wrong scale: proofs verify, the audit
    still fails, naming the field."""
    m = Manifest.load(risk_circuit)
    art = json.loads((risk_circuit / "verifier.json").read_text())
    verifier = chain.deploy("Groth16Verifier", artifact=Artifact("Groth16Verifier", art["abi"], art["bytecode"]))
    assert m.packed is not None  # the default layout: the packed adapter rebuilds the words
    adapter = chain.deploy("PackedGroth16Adapter", verifier, m.input_size, m.output_size, m.input_bits, m.output_bits)
    model_id = bytes(31) + b"\x01"
    registry = chain.contract("ModelRegistry", deployment.registry)
    wrong = replace(new_model(m, verifier=adapter, batch=False, fee=0, verify_gas=verify_gas_for(m)),
                    input_scale=m.input_scale + 1)
    chain.transact(registry.functions.register(model_id, model_arg(registry, wrong), setup_of(m)))
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    fee = int(oracle.functions.quoteFee(model_id, 0).call())
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    chain.transact(oracle.functions.requestInference(model_id, [6] * 8, NO_CALLBACK, 0, deadline), value=fee)
    rid = int(oracle.functions.nextRequestId().call()) - 1
    proof = groth16_backend.prove(risk_circuit, [6] * 8, payee_of(chain))
    chain.transact(oracle.functions.fulfill(rid, proof.output_fixed, payee_of(chain), HexBytes(proof.calldata)),
                   gas=FULFIL_GAS)

    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, rid,
                              "--models", str(models_dir_with(tmp_path, risk_circuit)))
    assert rc == 1
    st = statuses(rep)
    assert st["registration"] == "FAIL" and st["onchain_verify"] == st["offchain_verify"] == "PASS"
    assert [k for k, v in st.items() if v == "FAIL"] == ["setup", "registration"]   # setup: dev keys
    assert f"input scale: manifest {m.input_scale}, registered {m.input_scale + 1}" in err


def test_audit_fulfilment_made_by_a_contract(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                            groth16_backend: Groth16Backend, tmp_path: Path) -> None:
    """Fulfilment is permissionless, so it may come from a contract: the transaction is not
    sent to the oracle and the entry is found in a call trace."""
    fwd = deploy_forwarder(chain)
    p = setup_protocol(chain, deployment, risk_circuit, vault_deposit=0)
    inputs = [[2] * 8, [11] * 8]
    ids = [request(p, x) for x in inputs]
    proofs = [groth16_backend.prove(risk_circuit, x, payee_of(chain)) for x in inputs]
    data = p.oracle.encode_abi("fulfillBatch", args=[ids, [pr.output_fixed for pr in proofs], payee_of(chain),
                                                     [HexBytes(pr.calldata) for pr in proofs]])
    chain.transact(fwd.functions.forward(deployment.oracle, HexBytes(data)), gas=3 * FULFIL_GAS)
    assert int(p.oracle.functions.requestStatus(ids[1]).call()) == 2

    rc, rep, err = audit_json(rpc_of(chain), deployment.oracle, ids[1],
                              "--models", str(models_dir_with(tmp_path, risk_circuit)))
    assert_only_dev_keys_fail(rc, rep, err)
    assert (rep["fulfilment"]["function"], rep["fulfilment"]["batch_index"]) == ("fulfillBatch", 1)
