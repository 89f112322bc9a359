"""The Groth16 calldata and public signals are what the snarkjs Solidity verifier accepts:
deploy the compiled verifier (verifier.json) on anvil and call verifyProof."""

from __future__ import annotations

import json
from pathlib import Path

from eth_abi import decode
from web3 import Web3

from oracle.chain.anvil import Anvil
from oracle.circuits.manifest import Manifest
from oracle.proving.groth16 import Groth16Backend

# The pairing precompile fails at eth_estimateGas' ~32 k and verifyProof then returns false:
# always pass an explicit gas limit (docs/toolchain.md).
VERIFY_GAS = 2_000_000
PAYEE = "0x00000000000000000000000000000000000a11ce"
OTHER = "0x000000000000000000000000000000000000b0b0"


def test_verifier_accepts_calldata_on_chain(anvil: Anvil, groth16_backend: Groth16Backend,
                                            risk_circuit: Path) -> None:
    m = Manifest.load(risk_circuit)
    art = json.loads(m.path(risk_circuit, "verifier_json").read_text())
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    sender = w3.eth.accounts[0]
    tx = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": sender, "data": art["bytecode"], "gas": 3_000_000}))
    verifier = w3.eth.contract(address=tx["contractAddress"], abi=art["abi"])

    x = [300, 200, 100, 0, 50, 0, 400, 20]
    p = groth16_backend.prove(risk_circuit, x, PAYEE)
    words = decode(["uint256[2]", "uint256[2][2]", "uint256[2]"],
                   bytes.fromhex(p.calldata[2:]))
    signals = [int(s) for s in p.public_signals]

    def call(sig: list[int]) -> bool:
        return bool(verifier.functions.verifyProof(*words, sig).call({"gas": VERIFY_GAS}))

    assert call(signals)
    assert not call([signals[0] + 1, *signals[1:]])          # another output
    assert not call([*signals[:-1], signals[-1] + 1])        # another input
    stolen = [int(s) for s in m.public_signals(x, p.output_fixed, OTHER)]
    assert stolen != signals and not call(stolen)             # another payee (a copier's)
