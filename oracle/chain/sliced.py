"""Put a SLICED model on-chain: one SlicedGroth16Adapter for all its slices, registered as one
model (docs/sliced-models.md, "On-chain").

A sliced model folder (oracle.proving.groth16.sliced) has a manifest whose ``slices`` list the
slices in order, ``[{"circuit_id", "layers": [from, to], "dir"}]``, and whose ``circuit_id`` is
the model id (``oracle.circuits.slicing.model_id``: sha256 over the slices' circuit ids); each
``dir`` holds the slice's verification key (named by its ``slice.json``). No slice verifier
contract is deployed: the adapter holds every slice's key and checks all k proofs with one
pairing check.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from oracle.chain.client import Chain
from oracle.chain.structs import model_arg, new_model
from oracle.chain.vk import groth16_vk_words
from oracle.circuits.manifest import MANIFEST_FILE, Manifest, ManifestError, circuit_id_of
from oracle.circuits.slicing import model_id

log = logging.getLogger(__name__)

ADAPTER = "SlicedGroth16Adapter"
SLICE_MANIFEST = "slice.json"
DEFAULT_VK = "verification_key.json"


def is_sliced(model_dir: Path) -> bool:
    """True when the folder's manifest lists slices (a plain circuit has ``slices`` null)."""
    try:
        raw = json.loads((model_dir / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(raw, dict) and isinstance(raw.get("slices"), list) and len(raw["slices"]) > 0


@dataclass(frozen=True)
class SlicedModel:
    """What the adapter and the registry need of a sliced model folder."""

    manifest: Manifest
    vk_files: tuple[Path, ...]  # per slice, in order

    def vk_words(self) -> list[list[int]]:
        """Per slice, its verification key as the adapter's constructor takes it."""
        return [groth16_vk_words(f) for f in self.vk_files]

    def setup_hash(self) -> bytes:
        """ModelRegistry.Setup hash: sha256 of the one ptau file all slices come from when the
        manifest records it, else the model id (which names every slice key)."""
        info = self.manifest.settings.get("ptau")
        digest = info.get("sha256") if isinstance(info, dict) else None
        if not isinstance(digest, str) or len(digest.removeprefix("0x")) != 64:
            digest = self.manifest.circuit_id
        return bytes.fromhex(digest.removeprefix("0x"))


def _vk_file(slice_dir: Path) -> Path:
    try:
        doc = json.loads((slice_dir / SLICE_MANIFEST).read_text())
        name = doc["files"]["vk"] if isinstance(doc, dict) else DEFAULT_VK
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        name = DEFAULT_VK
    return slice_dir / str(name)


def load_sliced(model_dir: Path) -> SlicedModel:
    """Reads and checks a sliced model folder: a Groth16 manifest with at least 2 slices, each
    slice's key hashing to the circuit id the manifest lists, and the model id equal to the hash
    of those ids (so the registered circuit id names every key the adapter holds)."""
    m = Manifest.load(model_dir)
    if m.backend != "groth16" or not m.slices or len(m.slices) < 2:
        raise ManifestError(f"{model_dir}: not a sliced Groth16 model (backend {m.backend}, "
                            f"{len(m.slices or [])} slices; at least 2 needed)")
    files = []
    for j, s in enumerate(m.slices):
        if not isinstance(s, dict) or not isinstance(s.get("dir"), str) or not isinstance(s.get("circuit_id"), str):
            raise ManifestError(f"{model_dir}: slice {j} needs 'dir' and 'circuit_id', got {s!r}")
        vk = _vk_file(model_dir / s["dir"])
        if not vk.exists():
            raise ManifestError(f"{vk}: missing verification key of slice {j}")
        if circuit_id_of(vk) != s["circuit_id"]:
            raise ManifestError(f"{vk}: hash {circuit_id_of(vk)} != slice {j}'s circuit id {s['circuit_id']}")
        files.append(vk)
    mid = model_id([str(s["circuit_id"]) for s in m.slices])
    if mid != m.circuit_id:
        raise ManifestError(f"{model_dir}: model id {m.circuit_id} is not the hash of its slices' ids ({mid})")
    return SlicedModel(manifest=m, vk_files=tuple(files))


def deploy_sliced_adapter(chain: Chain, model: SlicedModel) -> str:
    """Deploys the adapter holding every slice's key; checks the stored keys read back."""
    m = model.manifest
    words = model.vk_words()
    adapter = chain.deploy(ADAPTER, m.input_size, m.output_size, m.input_bits, m.output_bits, words)
    c = chain.contract(ADAPTER, adapter)
    for j, w in enumerate(words):
        if [int(v) for v in chain.call(c.functions.verificationKey(j))] != w:
            raise ManifestError(f"slice {j}: the deployed adapter holds another key than {model.vk_files[j]}")
    return adapter


@dataclass(frozen=True)
class SlicedRegistration:
    model_id: str  # 0x-prefixed bytes32
    adapter: str
    circuit_id: str
    verify_gas: int


def register_sliced(
    chain: Chain, registry: str, model: SlicedModel, *, model_id: str | None = None, fee_wei: int = 0,
    batch: bool = True,
) -> SlicedRegistration:
    """Deploys the adapter and registers the model; the verification gas budget is the adapter's
    own floor (``minVerifyGas``). The caller (``register_circuit``) has already judged dev keys."""
    adapter = deploy_sliced_adapter(chain, model)
    gas = int(chain.call(chain.contract(ADAPTER, adapter).functions.minVerifyGas()))
    m = model.manifest
    cid = m.circuit_id
    mid = model_id or cid
    entry = new_model(m, verifier=adapter, batch=batch, fee=fee_wei, verify_gas=gas)
    reg = chain.contract("ModelRegistry", registry)
    chain.transact(reg.functions.register(bytes.fromhex(mid.removeprefix("0x")), model_arg(reg, entry),
                                          (model.setup_hash(), m.dev_keys)))
    log.info("registered sliced model %s (%d slices, circuit %s) with adapter %s", mid, len(model.vk_files), cid,
             adapter)
    return SlicedRegistration(model_id=mid, adapter=adapter, circuit_id=cid, verify_gas=gas)
