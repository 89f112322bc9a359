"""Contract structs decoded once, into typed objects (never by position at the call site).

web3 returns a Solidity struct as a tuple in declaration order; ``_named`` zips it with the
field names of the struct's ABI components, so a field added to the contract cannot silently
shift what a caller reads.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from web3.contract import Contract

from oracle.circuits.manifest import PROOF_SYSTEM_IDS, Manifest
from oracle.errors import UserError


class StructMismatch(UserError, ValueError):
    """The deployed contract's struct is not the one this client knows (another version of the
    contracts): use a client of the same release, or point it at a matching deployment."""


class RequestStatus(enum.IntEnum):
    """InferenceOracle.Status."""

    NONE = 0
    PENDING = 1
    FULFILLED = 2
    REFUNDED = 3


def _components(contract: Contract, fn_name: str) -> list[str]:
    for item in cast(list[dict[str, Any]], contract.abi):
        if item.get("type") == "function" and item.get("name") == fn_name:
            return [str(c["name"]) for c in item["outputs"][0]["components"]]
    raise LookupError(f"{fn_name} not in the ABI")


def _named(contract: Contract, fn_name: str, raw: Sequence[Any]) -> dict[str, Any]:
    names = _components(contract, fn_name)
    if len(names) != len(raw):
        raise StructMismatch(f"{fn_name} returned {len(raw)} fields, the ABI names {len(names)}")
    return dict(zip(names, raw, strict=True))


@dataclass(frozen=True)
class RegistryModel:
    """ModelRegistry.Model."""

    verifier: str
    proof_system: int
    input_size: int
    output_size: int
    input_scale: int
    output_scale: int
    input_bits: int
    output_bits: int
    frozen: bool
    batch_verify: bool
    binds_payee: bool
    verifier_version: int
    circuit_id: str          # 0x-hex
    fee: int
    verify_gas: int


def read_model(contract: Contract, model_id: bytes, block: Any = "latest") -> RegistryModel:
    """``getModel(model_id)`` of a ModelRegistry or an InferenceOracle (same struct)."""
    f = _named(contract, "getModel", contract.functions.getModel(model_id).call(block_identifier=block))
    return RegistryModel(
        verifier=str(f["verifier"]), proof_system=int(f["proofSystem"]), input_size=int(f["inputSize"]),
        output_size=int(f["outputSize"]), input_scale=int(f["inputScale"]), output_scale=int(f["outputScale"]),
        input_bits=int(f["inputBits"]), output_bits=int(f["outputBits"]), frozen=bool(f["frozen"]),
        batch_verify=bool(f["batchVerify"]), binds_payee=bool(f["bindsPayee"]),
        verifier_version=int(f["verifierVersion"]), circuit_id="0x" + bytes(f["circuitId"]).hex(),
        fee=int(f["fee"]), verify_gas=int(f["verifyGas"]),
    )


def new_model(m: Manifest, *, verifier: str, batch: bool, fee: int, verify_gas: int) -> RegistryModel:
    """The entry ``ModelRegistry.register`` takes for a compiled model: shapes, scales and bit
    widths from its manifest. ``frozen``, ``bindsPayee`` and ``verifierVersion`` are the
    registry's to set (it reads ``bindsPayee`` from the adapter), so they go in as zero."""
    return RegistryModel(
        verifier=verifier, proof_system=PROOF_SYSTEM_IDS[m.backend], input_size=m.input_size,
        output_size=m.output_size, input_scale=m.input_scale, output_scale=m.output_scale, input_bits=m.input_bits,
        output_bits=m.output_bits, frozen=False, batch_verify=batch, binds_payee=False, verifier_version=0,
        circuit_id=m.circuit_id, fee=fee, verify_gas=verify_gas,
    )


def model_arg(contract: Contract, m: RegistryModel) -> tuple[Any, ...]:
    """``m`` as the ``Model`` tuple a ModelRegistry call takes, ordered by the ABI's component
    names (the inverse of ``read_model``), so a reordered or added field fails here, by name."""
    values = {
        "verifier": m.verifier, "proofSystem": m.proof_system, "inputSize": m.input_size,
        "outputSize": m.output_size, "inputScale": m.input_scale, "outputScale": m.output_scale,
        "inputBits": m.input_bits, "outputBits": m.output_bits, "frozen": m.frozen, "batchVerify": m.batch_verify,
        "bindsPayee": m.binds_payee, "verifierVersion": m.verifier_version,
        "circuitId": bytes.fromhex(m.circuit_id.removeprefix("0x")), "fee": m.fee, "verifyGas": m.verify_gas,
    }
    names = _components(contract, "getModel")
    if set(names) != set(values):
        raise StructMismatch(f"the registry's Model has fields {sorted(names)}; this client knows "
                             f"{sorted(values)}: use a client of the same release as the contracts")
    return tuple(values[n] for n in names)


@dataclass(frozen=True)
class OracleRequest:
    """InferenceOracle.RequestView."""

    request_id: int
    model_id: str            # 0x-hex
    requester: str
    callback: str
    callback_gas_limit: int
    deadline: int
    fee: int
    status: RequestStatus
    input: list[int]


def read_request(oracle: Contract, request_id: int, block: Any = "latest") -> OracleRequest:
    """``getRequest(request_id)``; the contract's UnknownRequest error propagates."""
    f = _named(oracle, "getRequest", oracle.functions.getRequest(request_id).call(block_identifier=block))
    return OracleRequest(
        request_id=int(f["requestId"]), model_id="0x" + bytes(f["modelId"]).hex(), requester=str(f["requester"]),
        callback=str(f["callback"]), callback_gas_limit=int(f["callbackGasLimit"]), deadline=int(f["deadline"]),
        fee=int(f["fee"]), status=RequestStatus(int(f["status"])), input=[int(v) for v in f["input"]],
    )
