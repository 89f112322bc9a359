"""Miner authentication over real HTTP against a real ``oracle miner`` process: only fresh,
unreplayed requests signed by an allowed validator for THIS miner, with the body they were
signed over, are proven; everything else gets 401/403 with a JSON reason and proves nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from bittensor import http_auth

from oracle.circuits.catalog import CircuitCatalog
from oracle.circuits.manifest import Manifest
from oracle.dispatch.provers import verify_offchain
from oracle.subnet import protocol as P
from oracle.subnet.auth import ResponseVerifier, hotkey_of, load_or_create_wallet
from oracle.subnet.local import MinerProcess, start_local_miners, stop_local_miners
from tests.malicious_miner import start_miners
from tests.service_harness import models_dir_with

ROOT = Path(__file__).resolve().parent.parent
PAYEE = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def env(risk_circuit: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("subnet-auth")
    validator = load_or_create_wallet("validator", base / "vw")
    intruder = load_or_create_wallet("intruder", base / "vw")
    miners = start_local_miners(1, models_dir_with(base, risk_circuit), hotkey_of(validator), base_dir=base / "m")
    try:
        yield {"validator": validator, "intruder": intruder, "miner": miners[0],
               "manifest": Manifest.load(risk_circuit), "circuit_dir": risk_circuit}
    finally:
        stop_local_miners(miners)


def _body(env: dict[str, Any], rid: str = "r1") -> bytes:
    m: Manifest = env["manifest"]
    return P.dumps(P.ProveRequest(request_id=rid, circuit_id=m.circuit_id, input_fixed=[3] * m.input_size,
                                  payee=PAYEE))


def _post(miner: MinerProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(miner.url + P.PROVE_PATH, content=body, headers=headers, timeout=30)


def _sign(wallet: Any, body: bytes, receiver: str, **kw: Any) -> dict[str, str]:
    return http_auth.sign(wallet, method="POST", path=P.PROVE_PATH, body=body, receiver_ss58=receiver, **kw)


def _started(miner: MinerProcess) -> int:
    return int(miner.health()["proofs_started"])


def test_signed_request_is_proven_and_the_answer_is_signed(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    before = _started(miner)
    body = _body(env)
    headers = _sign(env["validator"], body, miner.hotkey)
    r = _post(miner, body, headers)
    assert r.status_code == 200, r.text
    ans = P.ProveResponse.model_validate_json(r.content)
    assert ans.request_nonce == int(headers[http_auth.HEADER_NONCE]) and ans.miner_hotkey == miner.hotkey
    # The request's payee reached the prover and is bound into the proof the miner returns.
    assert ans.proof.payee == PAYEE
    circuit = CircuitCatalog.scan(env["circuit_dir"]).get(env["manifest"].circuit_id)
    assert circuit is not None and circuit.manifest.binds_payee
    assert verify_offchain(circuit, ans.proof.to_proof(), [3] * circuit.manifest.input_size, PAYEE) is None
    assert verify_offchain(circuit, ans.proof.to_proof(), [3] * circuit.manifest.input_size, "0x" + "cd" * 20)
    verifier = ResponseVerifier(hotkey_of(env["validator"]))
    assert verifier.verify(r.headers, r.content, path=P.PROVE_PATH, miner_hotkey=miner.hotkey) is None
    # The same answer claimed by another miner, or with a changed body, is refused.
    assert verifier.verify(r.headers, r.content, path=P.PROVE_PATH, miner_hotkey=hotkey_of(env["intruder"]))
    assert verifier.verify(r.headers, r.content.replace(b'"output_fixed":[', b'"output_fixed":[1,'),
                           path=P.PROVE_PATH, miner_hotkey=miner.hotkey)
    assert _started(miner) == before + 1


def _unsigned(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json"}


def _forged(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    # Signed by the intruder, claiming to be the validator.
    h = _sign(env["intruder"], body, env["miner"].hotkey)
    h[http_auth.HEADER_HOTKEY] = hotkey_of(env["validator"])
    return body, h


def _stale(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, _sign(env["validator"], body, env["miner"].hotkey, nonce_ns=time.time_ns() - 60 * 10**9)


def _wrong_receiver(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, _sign(env["validator"], body, hotkey_of(env["intruder"]))


def _not_allowed(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, _sign(env["intruder"], body, env["miner"].hotkey)


def _tampered(env: dict[str, Any], body: bytes) -> tuple[bytes, dict[str, str]]:
    h = _sign(env["validator"], body, env["miner"].hotkey)
    return body.replace(b"[3,", b"[4,"), h


@pytest.mark.parametrize(("make", "status", "code"), [
    (_unsigned, 401, "unsigned"),
    (_forged, 401, "bad_signature"),
    (_stale, 401, "stale"),
    (_wrong_receiver, 401, "wrong_receiver"),
    (_not_allowed, 403, "not_allowed"),
    (_tampered, 401, "bad_signature"),
])
def test_rejected_requests_prove_nothing(env: dict[str, Any], make: Any, status: int, code: str) -> None:
    miner: MinerProcess = env["miner"]
    before = _started(miner)
    body, headers = make(env, _body(env, rid=f"r-{code}"))
    r = _post(miner, body, headers)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["code"] == code and err["reason"] and err["error"] in ("unauthorized", "forbidden")
    assert _started(miner) == before
    assert miner.health()["rejected"].get(code, 0) >= 1


def test_replayed_request_is_refused(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    body = _body(env, rid="replay")
    headers = _sign(env["validator"], body, miner.hotkey)
    assert _post(miner, body, headers).status_code == 200
    after_first = _started(miner)
    r = _post(miner, body, headers)
    assert r.status_code == 401 and r.json()["code"] == "replayed"
    assert _started(miner) == after_first


def test_capacity_needs_a_signature(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    assert httpx.get(miner.url + P.CAPACITY_PATH).status_code == 401
    h = http_auth.sign(env["validator"], method="GET", path=P.CAPACITY_PATH, receiver_ss58=miner.hotkey)
    cap = P.Capacity.model_validate_json(httpx.get(miner.url + P.CAPACITY_PATH, headers=h).content)
    assert cap.circuits == [env["manifest"].circuit_id] and cap.max_concurrent == 2 and cap.in_flight == 0


def test_production_miner_has_no_test_behaviours(tmp_path: Path) -> None:
    """The misbehaviours live in tests/malicious_miner.py: ``oracle miner`` does not know the
    flags, and no lie is left in the production package."""
    for flag in (["--behaviour", "wrong_output"], ["--delay", "1"]):
        r = subprocess.run(
            [sys.executable, "-m", "oracle.cli", "miner", "--port", "1", "--models", str(tmp_path), "--allow", "x",
             "--wallet-path", str(tmp_path / "w"), *flag],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
        assert r.returncode == 2 and f"unrecognized arguments: {flag[0]}" in r.stderr, r.stderr
    source = "\n".join(f.read_text() for f in (ROOT / "oracle" / "subnet").rglob("*.py"))
    for trace in ("wrong_output", "invalid_proof", "other_input", "other_payee", "ORACLE_TEST_MODE", "--behaviour",
                  "--delay", "throwaway"):
        assert trace not in source, trace


def test_beyond_capacity_is_503_with_a_reason(risk_circuit: Path, tmp_path: Path) -> None:
    validator = load_or_create_wallet("validator", tmp_path / "vw")
    # An honest miner made slow (1 s per proof) by the tests' hook, one proving slot.
    miners = start_miners(1, models_dir_with(tmp_path, risk_circuit), hotkey_of(validator),
                          base_dir=tmp_path / "m", workers=1, delays=[1.0])
    miner = miners[0]
    m = Manifest.load(risk_circuit)
    try:
        def one(i: int) -> httpx.Response:
            body = P.dumps(P.ProveRequest(request_id=f"c{i}", circuit_id=m.circuit_id, input_fixed=[i] * m.input_size,
                                          payee=PAYEE))
            return _post(miner, body, _sign(validator, body, miner.hotkey))

        with ThreadPoolExecutor(3) as ex:
            codes = sorted(r.status_code for r in ex.map(one, range(3)))
        assert codes == [200, 503, 503]
        body = P.dumps(P.ProveRequest(request_id="late", circuit_id=m.circuit_id, input_fixed=[0] * m.input_size,
                                      payee=PAYEE))
        assert _post(miner, body, _sign(validator, body, miner.hotkey)).status_code == 200   # capacity is back
        assert miner.health()["rejected"]["busy"] == 2
    finally:
        stop_local_miners(miners)
