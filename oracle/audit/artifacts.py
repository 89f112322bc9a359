"""Finding the circuit folder of a registered model and checking it is the registered circuit."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from oracle.chain.structs import RegistryModel
from oracle.circuits.catalog import CircuitCatalog
from oracle.circuits.manifest import MANIFEST_FILE, PROOF_SYSTEM_IDS, Manifest, ManifestError, circuit_id_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Located:
    dir: Path | None
    manifest: Manifest | None
    vk_name: str = "the verification key"
    problem: str | None = None       # set when the folder is absent or not the registered circuit


def locate_circuit(models: Path, circuit_id: str) -> Located:
    """The folder under ``models`` whose verification key hashes to ``circuit_id``. The catalog
    silently refuses tampered folders; when it has no match, look again at every manifest to
    say *why* (a folder claiming the id whose key hashes to something else is the case an
    auditor must see named)."""
    catalog = CircuitCatalog.scan(models)
    hit = catalog.get(circuit_id)
    if hit is not None:
        return Located(hit.dir, hit.manifest, hit.manifest.files.get("vk", "the verification key"))
    want = circuit_id.lower()
    for d in _circuit_dirs(models):
        try:
            m = Manifest.load(d)
            vk = m.path(d, "vk")
        except ManifestError as exc:
            log.info("ignoring %s: %s", d, exc)
            continue
        actual = circuit_id_of(vk)
        if m.circuit_id.lower() == want or actual == want:
            return Located(d, m, vk.name, (
                f"circuit id mismatch in {d}: sha256({vk.name}) = {actual}, registered circuit id = "
                f"{circuit_id}, manifest circuit_id = {m.circuit_id}: these artifacts are not the "
                "registered circuit"))
    known = ", ".join(catalog.ids()) or "none"
    return Located(None, None, problem=f"no circuit folder under {models} has circuit id {circuit_id} "
                                       f"(valid circuits there: {known})")


def _circuit_dirs(root: Path) -> list[Path]:
    return sorted(Path(dp) for dp, _, files in os.walk(root, followlinks=True) if MANIFEST_FILE in files)


def registration_mismatches(m: Manifest, model: RegistryModel) -> list[str]:
    """Fields of the on-chain ModelRegistry.Model (as returned by getModel) that disagree with
    the manifest; the adapter would rebuild the wrong public signals otherwise."""
    pairs = {
        "proof system": (PROOF_SYSTEM_IDS.get(m.backend), model.proof_system),
        "input size": (m.input_size, model.input_size),
        "output size": (m.output_size, model.output_size),
        "input scale": (m.input_scale, model.input_scale),
        "output scale": (m.output_scale, model.output_scale),
        "input bits": (m.input_bits, model.input_bits),
        "output bits": (m.output_bits, model.output_bits),
    }
    return [f"{k}: manifest {a}, registered {b}" for k, (a, b) in pairs.items() if a != b]


def expected_runtime_code(m: Manifest, circuit_dir: Path) -> bytes:
    """The generated verifier's runtime bytecode as compiled into the circuit folder."""
    art = json.loads(m.path(circuit_dir, "verifier_json").read_text())
    code = art.get("deployedBytecode")
    if not isinstance(code, str):
        raise ManifestError(f"{circuit_dir}: {m.files['verifier_json']} has no deployedBytecode")
    return bytes.fromhex(code.removeprefix("0x"))
