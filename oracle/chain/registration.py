"""Put a compiled circuit on-chain: deploy its generated verifier and the matching adapter,
then register the model in the ModelRegistry."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from oracle.chain.anvil import is_loopback_url
from oracle.chain.client import Chain
from oracle.chain.compiler import Artifact
from oracle.chain.sliced import is_sliced, load_sliced, register_sliced
from oracle.chain.structs import model_arg, new_model
from oracle.chain.vk import groth16_vk_words
from oracle.circuits.manifest import Manifest, ManifestError
from oracle.errors import UserError

log = logging.getLogger(__name__)

# Gas budget of one verification, priced into fee quotes and used as the adapter gas floor.
# Groth16: ~190 k + ~7 k per public signal (snarkjs template); EZKL: measured ~613 k for an
# 8->16->1 MLP, so budget generously.
GROTH16_BASE_GAS = 230_000
GROTH16_GAS_PER_SIGNAL = 8_000
# Every input and output value also costs gas around the verification: the oracle unpacks the
# stored input, the adapter re-encodes each value into its public signals. Measured ~1.3 k per
# value (models/lenet, 784 inputs + 10 outputs: fulfil 1,442,309 gas against a ~400 k
# verification); small models never noticed, the CNN's fulfilment ran out of gas without it.
GROTH16_GAS_PER_VALUE = 1_600
HALO2_DEFAULT_GAS = 1_500_000


class DevKeysRefused(UserError, ValueError):
    """A circuit whose keys come from a local ceremony, registered on a chain that is not local."""


# Chains where keys from a local ceremony are acceptable: the anvil/hardhat development ids,
# reached on this machine and answering as a development node.
DEV_CHAIN_IDS = frozenset({31337, 1337})
DEV_CLIENTS = ("anvil", "hardhat", "ganache")


def is_local_dev_chain(chain: Chain, rpc_url: str) -> bool:
    """True only for a development node on this machine: loopback URL, a development chain id
    and a development client (a chain id alone proves nothing: anyone can run id 31337)."""
    if not is_loopback_url(rpc_url) or chain.chain_id not in DEV_CHAIN_IDS:
        return False
    client = str(chain.w3.client_version).lower()
    return any(c in client for c in DEV_CLIENTS)


def setup_of(manifest: Manifest) -> tuple[bytes, bool]:
    """ModelRegistry.Setup: sha256 of the ptau/SRS file the keys came from, and the dev-keys flag."""
    info = manifest.settings.get("ptau") or manifest.settings.get("srs") or {}
    digest = info.get("sha256") if isinstance(info, dict) else None
    if not isinstance(digest, str) or len(digest.removeprefix("0x")) != 64:
        # Older circuit folders: the circuit id still names the exact keys.
        digest = manifest.circuit_id
    return bytes.fromhex(digest.removeprefix("0x")), bool(manifest.dev_keys)


@dataclass(frozen=True)
class Registration:
    model_id: str  # 0x-prefixed bytes32
    verifier: str  # generated verifier
    adapter: str  # IInferenceVerifier registered for the model
    circuit_id: str
    verify_gas: int


def verify_gas_for(manifest: Manifest) -> int:
    if manifest.backend == "groth16":
        # Packed circuits: words, not values (the adapter's gas floor is priced the same way),
        # plus the per-value handling (the adapters' floors cover the verifier call only).
        return (GROTH16_BASE_GAS + GROTH16_GAS_PER_SIGNAL * manifest.n_public_signals
                + GROTH16_GAS_PER_VALUE * (manifest.input_size + manifest.output_size))
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
    rpc_url: str | None = None,
    allow_dev_keys_on_public_chain: bool = False,
) -> Registration:
    """Deploys the verifier and its adapter and registers the model. For Groth16 the default
    adapter also verifies batches of proofs together (cheaper fulfillBatch).

    A circuit with development keys (``dev_keys``: a local ceremony whose secrets this machine
    may still hold, so it can forge any proof) is refused unless the chain is a local
    development node (``is_local_dev_chain``; without ``rpc_url`` the chain cannot be judged
    local) or ``allow_dev_keys_on_public_chain`` is set. The registry records the setup's
    provenance either way. A sliced model folder (a manifest listing ``slices``) gets one
    SlicedGroth16Adapter for all its slices (``oracle.chain.sliced``)."""
    if is_sliced(circuit_dir):  # k slice circuits behind one SlicedGroth16Adapter
        sliced = load_sliced(circuit_dir)
        _check_dev_keys(chain, circuit_dir, sliced.manifest.dev_keys, rpc_url, allow_dev_keys_on_public_chain)
        r = register_sliced(chain, registry, sliced, model_id=model_id, fee_wei=fee_wei, batch=batch)
        return Registration(model_id=r.model_id, verifier=r.adapter, adapter=r.adapter, circuit_id=r.circuit_id,
                            verify_gas=r.verify_gas)
    manifest = Manifest.load(circuit_dir)
    manifest.check_circuit_id(circuit_dir)
    _check_dev_keys(chain, circuit_dir, manifest.dev_keys, rpc_url, allow_dev_keys_on_public_chain)
    verifier_json = manifest.path(circuit_dir, "verifier_json")
    try:
        art = json.loads(verifier_json.read_text())
        verifier_art = Artifact(name=manifest.verifier_contract, abi=art["abi"], bytecode=_hex(art["bytecode"]))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ManifestError(f"{verifier_json}: not a compiled verifier ({e!r})") from e
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
    model = new_model(manifest, verifier=adapter, batch=batch, fee=fee_wei, verify_gas=gas)
    reg = chain.contract("ModelRegistry", registry)
    chain.transact(reg.functions.register(bytes.fromhex(mid.removeprefix("0x")), model_arg(reg, model),
                                          setup_of(manifest)))
    log.info(
        "registered model %s (%s, circuit %s) with adapter %s", mid, manifest.backend, manifest.circuit_id, adapter
    )
    return Registration(
        model_id=mid, verifier=verifier, adapter=adapter, circuit_id=manifest.circuit_id, verify_gas=gas
    )


def _check_dev_keys(chain: Chain, circuit_dir: Path, dev_keys: bool, rpc_url: str | None, allow: bool) -> None:
    if dev_keys and not (rpc_url is not None and is_local_dev_chain(chain, rpc_url)):
        if not allow:
            raise DevKeysRefused(
                f"{circuit_dir}: keys from a LOCAL development ceremony (dev_keys) cannot be registered on "
                f"chain {chain.chain_id} ({rpc_url or 'unknown RPC'}), which is not a local development node: "
                "whoever ran that ceremony can forge any proof. Recompile with --ptau/--srs from a public "
                "ceremony, or pass --i-understand-dev-keys-are-forgeable to register anyway."
            )
        log.warning("registering DEVELOPMENT keys of %s on chain %d: anyone with the ceremony's "
                    "secrets can forge proofs for this model", circuit_dir, chain.chain_id)


def _hex(s: str) -> str:
    return s if s.startswith("0x") else "0x" + s
