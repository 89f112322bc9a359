"""Put a compiled circuit on-chain: deploy its generated verifier and the matching adapter,
then register the model in the ModelRegistry."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from oracle.chain.client import Chain
from oracle.chain.compiler import Artifact
from oracle.chain.vk import groth16_vk_words
from oracle.circuits.manifest import PROOF_SYSTEM_IDS, Manifest

log = logging.getLogger(__name__)

# Gas budget of one verification, priced into fee quotes and used as the adapter gas floor.
# Groth16: ~190 k + ~7 k per public signal (snarkjs template); EZKL: measured ~613 k for an
# 8->16->1 MLP, so budget generously.
GROTH16_BASE_GAS = 230_000
GROTH16_GAS_PER_SIGNAL = 8_000
HALO2_DEFAULT_GAS = 1_500_000


@dataclass(frozen=True)
class Registration:
    model_id: str  # 0x-prefixed bytes32
    verifier: str  # generated verifier
    adapter: str  # IInferenceVerifier registered for the model
    circuit_id: str
    verify_gas: int


def verify_gas_for(manifest: Manifest) -> int:
    if manifest.backend == "groth16":
        # Packed circuits: words, not values (the adapter's gas floor is priced the same way).
        return GROTH16_BASE_GAS + GROTH16_GAS_PER_SIGNAL * manifest.n_public_signals
    measured = manifest.stats.get("verify_gas")
    return int(measured * 1.3) if isinstance(measured, int) else HALO2_DEFAULT_GAS


def register_circuit(
    chain: Chain,
    registry: str,
    circuit_dir: Path,
    *,
    model_id: str | None = None,
    fee_wei: int = 0,
    batch: bool = True,
) -> Registration:
    """Deploys the verifier and its adapter and registers the model. For Groth16 the default
    adapter also verifies batches of proofs together (cheaper fulfillBatch)."""
    manifest = Manifest.load(circuit_dir)
    manifest.check_circuit_id(circuit_dir)
    art = json.loads(manifest.path(circuit_dir, "verifier_json").read_text())
    verifier_art = Artifact(name=manifest.verifier_contract, abi=art["abi"], bytecode=_hex(art["bytecode"]))
    verifier = chain.deploy(manifest.verifier_contract, artifact=verifier_art)
    gas = verify_gas_for(manifest)
    batch = batch and manifest.backend == "groth16"
    packed = manifest.packed
    if packed is not None:  # values packed several per public signal: the packed adapters
        bits = (packed.input_bits, packed.output_bits)
        sizes = (manifest.input_size, manifest.output_size)
        if batch:
            words = groth16_vk_words(manifest.path(circuit_dir, "vk"))
            adapter = chain.deploy("PackedGroth16BatchAdapter", verifier, *sizes, *bits, words)
        else:
            adapter = chain.deploy("PackedGroth16Adapter", verifier, *sizes, *bits)
    elif batch:
        words = groth16_vk_words(manifest.path(circuit_dir, "vk"))
        adapter = chain.deploy("Groth16BatchAdapter", verifier, manifest.input_size, manifest.output_size, words)
    elif manifest.backend == "groth16":
        adapter = chain.deploy("Groth16VerifierAdapter", verifier, manifest.input_size, manifest.output_size)
    else:
        adapter = chain.deploy("Halo2VerifierAdapter", verifier, manifest.input_size, manifest.output_size, gas)
    mid = model_id or manifest.circuit_id
    model = (
        adapter,
        PROOF_SYSTEM_IDS[manifest.backend],
        manifest.input_size,
        manifest.output_size,
        manifest.input_scale,
        manifest.output_scale,
        manifest.input_bits,
        manifest.output_bits,
        False,  # frozen
        batch,  # batchVerify: the adapter implements IBatchInferenceVerifier
        bytes.fromhex(manifest.circuit_id.removeprefix("0x")),
        fee_wei,
        gas,
    )
    reg = chain.contract("ModelRegistry", registry)
    chain.transact(reg.functions.register(bytes.fromhex(mid.removeprefix("0x")), model))
    log.info(
        "registered model %s (%s, circuit %s) with adapter %s", mid, manifest.backend, manifest.circuit_id, adapter
    )
    return Registration(
        model_id=mid, verifier=verifier, adapter=adapter, circuit_id=manifest.circuit_id, verify_gas=gas
    )


def _hex(s: str) -> str:
    return s if s.startswith("0x") else "0x" + s
