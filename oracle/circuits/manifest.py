"""``manifest.json``: everything needed to prove, verify, encode and register one circuit.

One folder per circuit; the manifest names the files in it (relative paths) so the folder can be
copied anywhere (to a miner, an auditor) and still work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from oracle.circuits.fixedpoint import to_field
from oracle.circuits.packing import Packing, check_range
from oracle.circuits.payee import payee_int, place_payee
from oracle.errors import UserError

MANIFEST_FILE = "manifest.json"
SLICE_VK = "verification_key.json"       # in each slice folder of a sliced model
FORMAT_VERSION = 1

Backend = Literal["groth16", "ezkl"]
# Order of public signals in the proof, as the on-chain adapter rebuilds them. The packed layout
# (see oracle.circuits.packing and the manifest's ``packing`` entry) is output words, then
# input words, several values per field element.
SignalLayout = Literal["outputs_then_inputs", "inputs_then_outputs", "packed_outputs_then_inputs"]
PACKED_LAYOUT: Final = "packed_outputs_then_inputs"

# On-chain ProofSystem enum in contracts/ModelRegistry.sol.
PROOF_SYSTEM_IDS: dict[str, int] = {"groth16": 1, "ezkl": 2}


class ManifestError(UserError):
    """Missing, unreadable or inconsistent circuit folder."""


@dataclass
class Manifest:
    backend: Backend
    name: str
    circuit_id: str                  # "0x" + sha256(verification key file bytes)
    input_shape: list[int]
    output_shape: list[int]
    input_scale: int                 # fixed = round(x * 2**scale)
    output_scale: int
    input_bits: int                  # signed range enforced on-chain and in the circuit
    output_bits: int
    signal_layout: SignalLayout
    files: dict[str, str]            # role -> relative path (vk, pk, verifier_sol, onnx, ...)
    verifier_contract: str           # contract name inside files["verifier_sol"]
    dev_keys: bool                   # True: keys from a local, UNSAFE setup
    toolchain: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    # Set iff signal_layout is packed: {"input_bits", "output_bits", "per_word_in", "per_word_out"}.
    packing: dict[str, int] | None = None
    # Set iff the circuit binds a payee address (oracle.circuits.payee): {"signal": i,
    # "shift": s, "extra": 0|1}. extra=1: a signal of its own inserted at index i holding the
    # payee; extra=0: payee << s added to signal i (spare high bits of a packed word).
    payee: dict[str, int] | None = None
    # Set iff the model is sliced (docs/sliced-models.md): one entry per slice, in order,
    # {"circuit_id", "layers": [from, to], "dir"}; circuit_id is then the model id, a hash over
    # the slices' circuit ids (oracle.circuits.slicing.model_id), and proofs go through
    # oracle.proving.groth16.sliced.
    slices: list[dict[str, Any]] | None = None

    @property
    def input_size(self) -> int:
        return _prod(self.input_shape)

    @property
    def output_size(self) -> int:
        return _prod(self.output_shape)

    @property
    def packed(self) -> Packing | None:
        """The signal packing, or None for one value per public signal."""
        if self.signal_layout != PACKED_LAYOUT:
            return None
        if self.packing is None:
            raise ManifestError(f"manifest of {self.name}: packed signal layout without a packing entry")
        try:
            p = Packing.from_dict(self.packing)
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"manifest of {self.name}: bad packing entry ({e})") from e
        if (p.input_bits, p.output_bits) != (self.input_bits, self.output_bits):
            raise ManifestError(f"manifest of {self.name}: packing bit widths differ from input/output_bits")
        return p

    @property
    def n_public_signals(self) -> int:
        payee = "0x" + "00" * 20 if self.binds_payee else None
        return len(self.public_signals([0] * self.input_size, [0] * self.output_size, payee))

    @property
    def binds_payee(self) -> bool:
        return self.payee is not None

    def public_signals(self, input_fixed: list[int], output_fixed: list[int], payee: str | None = None) -> list[str]:
        """The proof's public signals for (input, output[, payee]), as decimal field elements, in
        the order the on-chain adapter rebuilds them. Raises PackingError for a value outside its
        bit width (no proof can exist for it, and on-chain it would be refused): without that
        check ``v`` and ``v + r`` would share a field element."""
        check_range(input_fixed, self.input_bits, "input")
        check_range(output_fixed, self.output_bits, "output")
        p = self.packed
        if p is not None:
            signals = list(p.signals(input_fixed, output_fixed))
        else:
            ordered = [*output_fixed, *input_fixed] if self.signal_layout == "outputs_then_inputs" \
                else [*input_fixed, *output_fixed]
            signals = [to_field(int(v)) for v in ordered]
        if self.payee is not None:
            signals = place_payee(signals, self.payee, payee_int(payee))
        return [str(v) for v in signals]

    def path(self, circuit_dir: Path, role: str) -> Path:
        if role not in self.files:
            raise ManifestError(f"{circuit_dir / MANIFEST_FILE}: no file with role {role!r}")
        p = circuit_dir / self.files[role]
        if not p.exists():
            raise ManifestError(f"{p}: missing ({role} file named by the manifest)")
        return p

    def save(self, circuit_dir: Path) -> Path:
        out = circuit_dir / MANIFEST_FILE
        out.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, circuit_dir: Path) -> Manifest:
        p = circuit_dir / MANIFEST_FILE
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError as e:
            raise ManifestError(f"{p}: not a circuit folder (no {MANIFEST_FILE})") from e
        except json.JSONDecodeError as e:
            raise ManifestError(f"{p}: corrupt manifest ({e})") from e
        try:
            m = cls(**raw)
        except TypeError as e:
            raise ManifestError(f"{p}: unexpected manifest fields ({e})") from e
        if m.format != FORMAT_VERSION:
            raise ManifestError(f"{p}: manifest format {m.format}, expected {FORMAT_VERSION}")
        return m

    def slice_vk(self, circuit_dir: Path, j: int) -> Path:
        """Slice j's verification key file (sliced models: ``<dir>/verification_key.json``)."""
        assert self.slices is not None
        return circuit_dir / str(self.slices[j]["dir"]) / SLICE_VK

    def held_slices(self, circuit_dir: Path) -> list[int]:
        """The slices whose folders are present here (a miner may hold only some of them)."""
        return [j for j in range(len(self.slices or [])) if self.slice_vk(circuit_dir, j).exists()]

    def check_circuit_id(self, circuit_dir: Path) -> None:
        """The circuit id must be the hash of the verification key actually on disk. A sliced
        model's id must be the hash over its slices' ids, and every slice present here must
        have the key its id names (a miner's copy may hold only the slices it proves)."""
        if self.slices:
            self._check_sliced_ids(circuit_dir)
            return
        actual = circuit_id_of(self.path(circuit_dir, "vk"))
        if actual != self.circuit_id:
            raise ManifestError(
                f"{circuit_dir}: verification key hash {actual} != manifest circuit_id "
                f"{self.circuit_id} (corrupt or tampered vk)"
            )

    def _check_sliced_ids(self, circuit_dir: Path) -> None:
        assert self.slices is not None
        try:
            ids = [str(s["circuit_id"]) for s in self.slices]
            raw = b"".join(bytes.fromhex(cid.removeprefix("0x")) for cid in ids)
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"{circuit_dir}: malformed 'slices' entry ({e})") from e
        # oracle.circuits.slicing.model_id (not imported: slicing imports the quantizer).
        if len(raw) != 32 * len(ids) or len(ids) < 2 or "0x" + hashlib.sha256(raw).hexdigest() != self.circuit_id:
            raise ManifestError(f"{circuit_dir}: model id {self.circuit_id} is not the hash of its slices' ids")
        held = self.held_slices(circuit_dir)
        if not held:
            raise ManifestError(f"{circuit_dir}: sliced model with none of its {len(ids)} slices present")
        for j in held:
            actual = circuit_id_of(self.slice_vk(circuit_dir, j))
            if actual != ids[j]:
                raise ManifestError(f"{circuit_dir}: slice {j}'s verification key hash {actual} != its id {ids[j]} "
                                    "(corrupt or tampered vk)")


def circuit_id_of(vk_file: Path) -> str:
    return "0x" + sha256_file(vk_file)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (keys and SRS files run to hundreds of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
