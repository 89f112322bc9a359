"""A contract that forwards any call: a fulfilment sent through it is a transaction to the
forwarder, not to the oracle, so whoever reads its calldata has to trace the transaction
(fulfilment is permissionless: a contract may make it)."""

from __future__ import annotations

from web3.contract import Contract

from oracle.chain.client import Chain
from oracle.chain.compiler import Artifact, compile_sources

FORWARDER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Forwarder {
    function forward(address to, bytes calldata data) external {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) assembly { revert(add(ret, 32), mload(ret)) }
    }
}
"""


def deploy_forwarder(chain: Chain) -> Contract:
    out = compile_sources({"Forwarder.sol": FORWARDER})["contracts"]["Forwarder.sol"]["Forwarder"]
    address = chain.deploy("Forwarder", artifact=Artifact.from_json("Forwarder", out))
    forwarder: Contract = chain.w3.eth.contract(address=address, abi=out["abi"])  # type: ignore[call-overload]
    return forwarder
