"""Compiling the snarkjs Solidity verifier with the project's solc (scripts/solc over solc-js).

The compiled artifact (abi + creation/runtime bytecode) is stored in the circuit folder so that
deployment never needs a compiler, and compiling once at build time proves the exported source
is valid for the pinned solc.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from oracle.proving.base import BackendError
from oracle.proving.groth16 import tools

log = logging.getLogger(__name__)

OPTIMIZER_RUNS = 200
EVM_VERSION = "cancun"


def compile_verifier(sol_file: Path, contract: str) -> dict[str, Any]:
    import solcx  # imported lazily: only compile needs it
    from solcx.exceptions import SolcError

    std_input = {
        "language": "Solidity",
        "sources": {sol_file.name: {"content": sol_file.read_text()}},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    try:
        out = solcx.compile_standard(std_input, solc_binary=str(tools.solc_binary()))
    except SolcError as e:
        raise BackendError(f"{sol_file}: solc failed: {e}") from e
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BackendError(f"{sol_file}: solc errors: {errors[0].get('formattedMessage')}")
    try:
        c = out["contracts"][sol_file.name][contract]
    except KeyError as e:
        raise BackendError(f"{sol_file}: no contract {contract!r} in solc output") from e
    return {
        "contract": contract,
        "source": sol_file.name,
        "abi": c["abi"],
        "bytecode": "0x" + c["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        "compiler": {"solc": tools.versions().get("solc", ""), "optimizer_runs": OPTIMIZER_RUNS,
                     "evm_version": EVM_VERSION},
    }
