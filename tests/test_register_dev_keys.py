"""Development keys never reach a chain that is not a local dev node without a loud override,
and the registry records every circuit's setup provenance (hardening issue, finding 6)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment, deploy_all
from oracle.chain.registration import DevKeysRefused, is_local_dev_chain, register_circuit, setup_of
from oracle.chain.structs import StructMismatch, model_arg, new_model, read_model
from oracle.circuits.manifest import Manifest


def test_dev_keys_refused_unless_local_or_overridden(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                                     anvil) -> None:  # type: ignore[no-untyped-def]
    m = Manifest.load(risk_circuit)
    assert m.dev_keys
    assert is_local_dev_chain(chain, anvil.url)
    # The same node named by a non-loopback address is not judged local (a chain id proves nothing).
    remote = anvil.url.replace("127.0.0.1", "192.0.2.2")
    assert not is_local_dev_chain(chain, remote)
    with pytest.raises(DevKeysRefused, match="LOCAL development ceremony"):
        register_circuit(chain, deployment.registry, risk_circuit, model_id="0x" + "11" * 32, rpc_url=remote)
    with pytest.raises(DevKeysRefused):
        register_circuit(chain, deployment.registry, risk_circuit, model_id="0x" + "12" * 32, rpc_url=None)
    reg = chain.contract("ModelRegistry", deployment.registry)
    assert not reg.functions.isRegistered(bytes.fromhex("11" * 32)).call()

    r = register_circuit(chain, deployment.registry, risk_circuit, model_id="0x" + "13" * 32, rpc_url=remote,
                         allow_dev_keys_on_public_chain=True)
    assert reg.functions.isRegistered(bytes.fromhex(r.model_id[2:])).call()
    setup_hash, dev_keys = reg.functions.setups(bytes.fromhex(m.circuit_id[2:])).call()
    assert dev_keys is True
    assert bytes(setup_hash) == setup_of(m)[0] == bytes.fromhex(m.settings["ptau"]["sha256"])


def test_local_dev_chain_registers(chain: Chain, deployment: Deployment, risk_circuit: Path,
                                   anvil) -> None:  # type: ignore[no-untyped-def]
    r = register_circuit(chain, deployment.registry, risk_circuit, model_id="0x" + "14" * 32, fee_wei=7,
                         rpc_url=anvil.url)
    reg = chain.contract("ModelRegistry", deployment.registry)
    model = read_model(reg, bytes.fromhex(r.model_id[2:]))
    # Registered with its adapter; bindsPayee is read from the adapter (a Groth16 adapter binds it).
    assert (model.verifier, model.circuit_id, model.binds_payee) == (r.adapter, r.circuit_id, True)
    assert model.verifier_version == 1
    # Every field the client sent by name comes back in its place (the registry sets the last two).
    sent = new_model(Manifest.load(risk_circuit), verifier=r.adapter, batch=True, fee=7, verify_gas=r.verify_gas)
    assert model == replace(sent, binds_payee=True, verifier_version=1)


def test_model_tuple_follows_the_abi_by_name(chain: Chain, deployment: Deployment, risk_circuit: Path) -> None:
    reg = chain.contract("ModelRegistry", deployment.registry)
    m = new_model(Manifest.load(risk_circuit), verifier=deployment.registry, batch=False, fee=3, verify_gas=9)
    names = [c["name"] for item in reg.abi if item.get("name") == "getModel" for c in item["outputs"][0]["components"]]
    assert dict(zip(names, model_arg(reg, m), strict=True))["fee"] == 3
    # A contract whose struct gained (or renamed) a field is refused by name, not sent shifted.
    abi = copy.deepcopy(reg.abi)
    getter = next(item for item in abi if item.get("name") == "getModel")
    getter["outputs"][0]["components"].append({"name": "maxInputs", "type": "uint32", "internalType": "uint32"})
    with pytest.raises(StructMismatch, match="maxInputs"):       # a UserError: one line, exit 2
        model_arg(chain.w3.eth.contract(address=reg.address, abi=abi), m)


def test_loopback_alone_is_not_a_dev_chain(not_anvil: tuple[str, list[str]], chain: Chain, deployment: Deployment,
                                           risk_circuit: Path) -> None:
    """Loopback is not enough: a local mainnet fork or an SSH tunnel to a real node is on
    127.0.0.1 too. The client must be a dev node AND the chain id a dev id."""
    url, _ = not_anvil                          # says chain id 31337, client Geth
    assert not is_local_dev_chain(Chain.connect(url), url)
    with Anvil(chain_id=4242) as node:          # really anvil, on loopback, with another chain id
        other = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        assert other.w3.client_version.startswith("anvil/")
        assert not is_local_dev_chain(other, node.url)
        d = deploy_all(other)
        with pytest.raises(DevKeysRefused):
            register_circuit(other, d.registry, risk_circuit, model_id="0x" + "15" * 32, rpc_url=node.url)
        assert not other.contract("ModelRegistry", d.registry).functions.isRegistered(
            bytes.fromhex("15" * 32)).call()
