"""Helpers for on-chain tests: register the risk circuit, fund a vault, read requests, commit
a fulfilment (commit-reveal for verifiers that do not bind the payee)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from web3.contract import Contract

from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment
from oracle.chain.registration import Registration, register_circuit
from oracle.chain.structs import read_request

ETH = 10**18


@dataclass
class Protocol:
    chain: Chain
    d: Deployment
    reg: Registration
    oracle: Contract
    registry: Contract
    vault: Contract
    token: Contract

    @property
    def model_id(self) -> bytes:
        return bytes.fromhex(self.reg.model_id[2:])


def rpc_url(chain: Chain) -> str:
    """The node's URL: lets registration see it is a local dev chain (dev-keys circuits allowed)."""
    return str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def commit_fulfilment(chain: Chain, oracle: Contract, request_id: int, output: list[int], payee: str,
                      proof: bytes) -> bytes:
    """The commit step of commit-reveal, for a model whose verifier does not bind the payee
    (EZKL): ``commitFulfillment`` of exactly this fulfilment, then a block mined, so the
    ``fulfill`` that follows lands in a later block than its commitment. Returns the commitment."""
    c = bytes(oracle.functions.fulfillmentCommitment(request_id, output, payee, proof).call())
    chain.transact(oracle.functions.commitFulfillment(c))
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return c


def setup_protocol(chain: Chain, d: Deployment, circuit: Path, *, vault_deposit: int = 1_000 * ETH) -> Protocol:
    reg = register_circuit(chain, d.registry, circuit, rpc_url=rpc_url(chain))
    p = Protocol(
        chain=chain, d=d, reg=reg,
        oracle=chain.contract("InferenceOracle", d.oracle),
        registry=chain.contract("ModelRegistry", d.registry),
        vault=chain.contract("LRTVault", d.vault),
        token=chain.contract("LRTToken", d.token),
    )
    assert chain.account is not None
    me = chain.account.address
    chain.transact(p.vault.functions.setRiskModel(p.model_id))
    if vault_deposit:
        chain.transact(p.token.functions.mint(me, vault_deposit))
        chain.transact(p.token.functions.approve(d.vault, vault_deposit))
        chain.transact(p.vault.functions.deposit(vault_deposit))
    chain.w3.eth.send_transaction({"from": me, "to": d.vault, "value": ETH})  # fee budget
    return p


def last_request_id(p: Protocol) -> int:
    return int(p.oracle.functions.nextRequestId().call()) - 1


def request_input(p: Protocol, request_id: int) -> list[int]:
    return read_request(p.oracle, request_id).input
