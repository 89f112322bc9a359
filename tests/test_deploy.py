"""`oracle deploy` and the Python chain layer against a real anvil node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from web3 import Web3

from oracle.chain.anvil import Anvil
from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import Deployment


def _oracle_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ORACLE_")}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "oracle.cli", *args], capture_output=True, text=True, env=e, timeout=120
    )


def test_cli_deploy_prints_addresses(anvil: Anvil) -> None:
    r = _oracle_cli("deploy", "--rpc", anvil.url)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"registry", "oracle", "token", "vault"}
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    for addr in out.values():
        assert len(w3.eth.get_code(Web3.to_checksum_address(addr))) > 0


def test_cli_deploy_refuses_dev_key_on_non_local_chain() -> None:
    with Anvil(chain_id=4242) as node:
        r = _oracle_cli("deploy", "--rpc", node.url)
    assert r.returncode == 2
    assert "no signing key" in r.stderr and "ORACLE_PRIVATE_KEY" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_deploy_with_env_key_on_non_local_chain() -> None:
    key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil #1
    with Anvil(chain_id=4242) as node:
        r = _oracle_cli("deploy", "--rpc", node.url, env={"ORACLE_PRIVATE_KEY": key})
    assert r.returncode == 0, r.stderr
    assert key[2:] not in r.stderr + r.stdout  # the key is never logged


def test_cli_unreachable_rpc_is_a_clear_error() -> None:
    r = _oracle_cli("deploy", "--rpc", "http://127.0.0.1:9")
    assert r.returncode == 2
    assert "cannot reach RPC endpoint http://127.0.0.1:9" in r.stderr


def test_deployment_is_wired(chain: Chain, deployment: Deployment) -> None:
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    vault = chain.contract("LRTVault", deployment.vault)
    assert oracle.functions.registry().call() == deployment.registry
    assert vault.functions.oracle().call() == deployment.oracle
    assert vault.functions.asset().call() == deployment.token


def test_custom_errors_are_decoded(chain: Chain, deployment: Deployment) -> None:
    oracle = chain.contract("InferenceOracle", deployment.oracle)
    with pytest.raises(ContractError) as e:
        chain.transact(oracle.functions.requestInference(b"\x01" * 32, [1, 2], chain.account.address, 0, 0))  # type: ignore[union-attr]
    assert e.value.name == "UnknownModel"
    assert str(e.value).startswith("UnknownModel(modelId=0x0101")
    with pytest.raises(ContractError) as e2:
        chain.call(oracle.functions.getRequest(7))
    assert str(e2.value) == "UnknownRequest(requestId=7)"
