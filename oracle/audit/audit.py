"""Audit one request of an InferenceOracle from public data only: the chain (request, logs,
fulfilment calldata, the registered verifier) and, optionally, the model's circuit folder.

Every read is pinned to the head block seen at the start, so the report is one consistent
snapshot even while the chain moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import BadFunctionCallOutput, ContractCustomError, ContractLogicError

from oracle.audit.artifacts import Located, expected_runtime_code, locate_circuit, registration_mismatches
from oracle.audit.defaults import DEFAULT_MAX_RANGE, DEFAULT_VERIFY_GAS
from oracle.audit.logs import find_creation_block, scan_first, topic_uint
from oracle.audit.proofs import proof_from_chain
from oracle.audit.report import AuditReport, CheckStatus, Fulfilment, ModelInfo, RequestStatus
from oracle.chain.client import Chain, ContractError, probe_chain_id
from oracle.chain.fulfilment import CalldataError, Entry, entries_in
from oracle.chain.structs import RegistryModel, read_model, read_request
from oracle.chain.structs import RequestStatus as OnChainStatus
from oracle.chain.vk import groth16_vk_words
from oracle.circuits.manifest import PROOF_SYSTEM_IDS, ManifestError
from oracle.errors import UserError
from oracle.proving.base import BackendError

log = logging.getLogger(__name__)

PASS, FAIL, SKIP = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.SKIP
PROOF_SYSTEM_NAMES = {v: k for k, v in PROOF_SYSTEM_IDS.items()}
ARTIFACT_CHECKS = ("circuit_id", "registration", "verifier_code", "offchain_verify")


class AuditError(UserError, ValueError):
    """The audit cannot start (unreachable RPC, no oracle at the address)."""


@dataclass(frozen=True)
class AuditParams:
    rpc: str
    oracle: str
    request_id: int
    models: Path | None = None
    max_log_range: int = DEFAULT_MAX_RANGE
    from_block: int = 0                # where log scans start when the request block is unknown
    verify_gas: int = DEFAULT_VERIFY_GAS


def connect(rpc: str) -> Chain:
    probe_chain_id(rpc)    # a dead or wrong --rpc fails here, fast
    return Chain.connect(rpc)


def audit_request(p: AuditParams, chain: Chain | None = None) -> AuditReport:
    chain = chain or connect(p.rpc)
    return _Auditor(chain, p).run()


class _Auditor:
    def __init__(self, chain: Chain, p: AuditParams) -> None:
        self.chain, self.w3, self.p = chain, chain.w3, p
        try:
            self.address = to_checksum_address(p.oracle)
        except ValueError as exc:
            raise AuditError(f"--oracle {p.oracle!r} is not an address") from exc
        self.head = int(self.w3.eth.block_number)
        if not self.w3.eth.get_code(self.address, self.head):
            raise AuditError(f"no contract at {self.address} on chain {chain.chain_id}")
        self.oracle: Contract = chain.contract("InferenceOracle", self.address)
        self.report = AuditReport(request_id=p.request_id, oracle=self.address, chain_id=chain.chain_id,
                                  block=self.head, status=RequestStatus.UNKNOWN)

    def _view(self, fn: Any) -> Any:
        try:
            return fn.call(block_identifier=self.head)
        except (ContractCustomError, ContractLogicError) as exc:
            raise _decoded(self.chain, exc) from exc

    # ------------------------------------------------------------------ steps

    def run(self) -> AuditReport:
        r, rid = self.report, self.p.request_id
        r.status = RequestStatus(_STATUS[int(self._view(self.oracle.functions.requestStatus(rid)))])
        if r.status is RequestStatus.UNKNOWN:
            r.add("request", FAIL, f"request {rid} does not exist on oracle {self.address}")
            return r
        try:
            req = read_request(self.oracle, rid, self.head)
            model_id = bytes.fromhex(req.model_id[2:])
            m = read_model(self.oracle, model_id, self.head)
        except (ContractCustomError, ContractLogicError) as exc:
            raise _decoded(self.chain, exc) from exc
        deadline, r.input = req.deadline, req.input
        r.model = ModelInfo(model_id=req.model_id, verifier=m.verifier,
                            proof_system=PROOF_SYSTEM_NAMES.get(m.proof_system, f"unknown ({m.proof_system})"),
                            circuit_id=m.circuit_id, input_size=m.input_size, output_size=m.output_size)
        self._setup(m)
        if r.status is not RequestStatus.FULFILLED:
            r.add("fulfilled", FAIL, f"request {rid} is not fulfilled (status: {r.status.value}, deadline {deadline})")
            return r
        r.add("fulfilled", PASS, "status fulfilled")
        start = self._request_log(model_id)
        entry = self._fulfilment(model_id, start)
        if entry is None:
            for name in (*ARTIFACT_CHECKS, "onchain_verify"):
                r.add(name, SKIP, "no submitted proof to check (see above)")
            return r
        self._artifacts(m, entry)
        self._onchain(entry)
        return r

    def _request_log(self, model_id: bytes) -> int:
        """Checks the InferenceRequested log against the stored request; returns the block to
        scan for the fulfilment from."""
        r, rid = self.report, self.p.request_id
        block = find_creation_block(self.w3, self.address, rid, self.head)
        lo, hi = (block, block) if block is not None else (self.p.from_block, self.head)
        logs = scan_first(self.w3, self.address, [self._topic("InferenceRequested"), topic_uint(rid)],
                          lo, hi, self.p.max_log_range)
        if not logs:
            r.add("request_log", FAIL, f"no InferenceRequested log for request {rid} in blocks {lo}-{hi}")
            return block if block is not None else self.p.from_block
        ev = self.oracle.events.InferenceRequested().process_log(logs[0])
        r.request_block, r.request_tx = int(logs[0]["blockNumber"]), HexBytes(logs[0]["transactionHash"]).to_0x_hex()
        logged = [int(v) for v in ev["args"]["input"]]
        if bytes(ev["args"]["modelId"]) != model_id:
            r.add("request_log", FAIL, f"requested model 0x{bytes(ev['args']['modelId']).hex()} differs from "
                                       f"the stored 0x{model_id.hex()}")
        elif logged != r.input:
            r.add("request_log", FAIL, f"requested input {logged} differs from the stored input {r.input}")
        else:
            r.add("request_log", PASS, f"InferenceRequested in block {r.request_block}: model and input "
                                       "equal the stored request")
        return r.request_block

    def _fulfilment(self, model_id: bytes, start: int) -> Entry | None:
        r, rid = self.report, self.p.request_id
        logs = scan_first(self.w3, self.address, [self._topic("InferenceFulfilled"), topic_uint(rid)],
                          start, self.head, self.p.max_log_range)
        if len(logs) != 1:
            what = "no" if not logs else f"{len(logs)}"
            r.add("fulfilment_log", FAIL, f"{what} InferenceFulfilled log(s) for request {rid} in blocks "
                                          f"{start}-{self.head} (expected exactly one)")
            return None
        lg = logs[0]
        args = self.oracle.events.InferenceFulfilled().process_log(lg)["args"]
        event_output = [int(v) for v in args["output"]]
        tx_ref = HexBytes(lg["transactionHash"])
        tx_hash = tx_ref.to_0x_hex()
        if bytes(args["modelId"]) != model_id:
            r.add("fulfilment_log", FAIL, f"fulfilled as model 0x{bytes(args['modelId']).hex()}, "
                                          f"requested 0x{model_id.hex()}")
        else:
            r.add("fulfilment_log", PASS, f"InferenceFulfilled in block {int(lg['blockNumber'])}, tx {tx_hash}")
        sender = ""
        try:
            tx = dict(self.w3.eth.get_transaction(tx_ref))
            sender = str(tx.get("from", ""))
            entries = entries_in(self.w3, self.oracle, tx, rid)
        except CalldataError as exc:
            entries, problem = [], str(exc)
        else:
            problem = f"no fulfil call in tx {tx_hash} names request {rid}"
        chosen = self._choose(entries, event_output) if entries else None
        r.fulfilment = Fulfilment(
            tx_hash=tx_hash, block_number=int(lg["blockNumber"]), payee=str(args["payee"]), sender=sender,
            callback_succeeded=bool(args["callbackSucceeded"]),
            function=chosen.function if chosen else "unknown",
            batch_index=chosen.index if chosen else None, batch_size=chosen.size if chosen else 0,
            event_output=event_output, calldata_output=chosen.output if chosen else None,
            proof="0x" + chosen.proof.hex() if chosen else None,
        )
        if chosen is None:
            r.add("calldata", FAIL, problem)
            r.add("output_match", SKIP, "no calldata entry to compare with")
            return None
        where = "fulfill" if chosen.index is None else f"fulfillBatch entry {chosen.index} of {chosen.size}"
        r.add("calldata", PASS, f"decoded {where}: {len(chosen.proof)}-byte proof")
        if chosen.output == event_output:
            r.add("output_match", PASS, f"event output {event_output} equals the calldata output")
        else:
            r.add("output_match", FAIL, f"event output {event_output} differs from the calldata output "
                                        f"{chosen.output}")
        return chosen

    def _choose(self, entries: Sequence[Entry], event_output: list[int]) -> Entry:
        """The entry that produced the event. A batch may name an id twice; the contract fulfils
        its first *valid* entry, so among the entries carrying the event's output prefer one
        the verifier accepts."""
        same = [e for e in entries if e.output == event_output]
        if len(same) > 1:
            for e in same:
                if self._verify_call(e)[0]:
                    return e
        return (same or list(entries))[0]

    def _setup(self, m: RegistryModel) -> None:
        """The setup provenance the registry recorded for the circuit (ModelRegistry.setups)."""
        registry = self.chain.contract("ModelRegistry", self._view(self.oracle.functions.registry()))
        setup_hash, dev_keys = self._view(registry.functions.setups(bytes.fromhex(m.circuit_id[2:])))
        self.report.setup = {"setup_hash": "0x" + bytes(setup_hash).hex(), "dev_keys": bool(dev_keys)}
        if bytes(setup_hash) == bytes(32):
            self.report.add("setup", FAIL, f"no setup provenance recorded for circuit {m.circuit_id}")
        elif dev_keys:
            self.report.add("setup", FAIL, f"circuit {m.circuit_id} was registered with DEVELOPMENT keys "
                                           f"(setup 0x{bytes(setup_hash).hex()}): whoever ran that ceremony "
                                           "can forge its proofs")
        else:
            self.report.add("setup", PASS, f"ceremony file sha256 0x{bytes(setup_hash).hex()}")

    def _artifacts(self, m: RegistryModel, entry: Entry) -> None:
        r = self.report
        if self.p.models is None:
            for name in ARTIFACT_CHECKS:
                r.add(name, SKIP, "no --models given: circuit artifacts not checked")
            return
        registered = m.circuit_id
        loc: Located = locate_circuit(self.p.models, registered)
        r.circuit_dir = str(loc.dir) if loc.dir else None
        if loc.problem is not None or loc.dir is None or loc.manifest is None:
            r.add("circuit_id", FAIL, loc.problem or "no circuit folder")
            for name in ARTIFACT_CHECKS[1:]:
                r.add(name, SKIP, "no matching circuit folder (see circuit_id)")
            return
        if loc.manifest.slices:
            r.add("circuit_id", PASS, f"registered {registered} = manifest model id = sha256 over its "
                                      f"{len(loc.manifest.slices)} slices' circuit ids, each the sha256 of that "
                                      "slice's verification key")
        else:
            r.add("circuit_id", PASS, f"registered {registered} = manifest circuit_id = sha256 of {loc.vk_name}")
        bad = registration_mismatches(loc.manifest, m)
        if bad:
            r.add("registration", FAIL, "registered model differs from the manifest: " + "; ".join(bad))
        else:
            r.add("registration", PASS, f"proof system ({loc.manifest.backend}), sizes, scales and bit widths "
                                        "equal the manifest's")
        if loc.manifest.slices:
            self._sliced_adapter_keys(loc)
            self._sliced_offchain(loc, entry)
            return
        self._verifier_code(loc)
        self._offchain(loc, entry)

    def _sliced_adapter_keys(self, loc: Located) -> None:
        """A sliced model's adapter verifies with its own copy of every slice's key: each must
        equal that slice's verification key in the artifacts, and there must be no extra one."""
        r = self.report
        assert r.model is not None and loc.dir is not None and loc.manifest is not None and loc.manifest.slices
        adapter = self.chain.contract("SlicedGroth16Adapter", r.model.verifier)
        k = len(loc.manifest.slices)
        for j in range(k + 1):
            try:
                words = [int(w) for w in adapter.functions.verificationKey(j).call(block_identifier=self.head)]
            except (ContractLogicError, ContractCustomError, BadFunctionCallOutput, ValueError) as exc:
                if j == k:
                    break                  # NoSuchSlice: exactly k slices
                r.add("verifier_code", FAIL, f"sliced adapter {r.model.verifier} has no key for slice {j} ({exc})")
                return
            if j == k:
                r.add("verifier_code", FAIL, f"sliced adapter {r.model.verifier} holds more than the model's {k} "
                                             "slice keys")
                return
            if words != groth16_vk_words(loc.manifest.slice_vk(loc.dir, j)):
                r.add("verifier_code", FAIL, f"sliced adapter {r.model.verifier} holds another key than slice "
                                             f"{j}'s verification key")
                return
        r.add("verifier_code", PASS, f"sliced adapter {r.model.verifier} holds exactly the {k} slices' "
                                     "verification keys of the artifacts, in order")

    def _sliced_offchain(self, loc: Located, entry: Entry) -> None:
        """Slice by slice: each proof under its slice's key with the public signals rebuilt from
        the request's input, the submitted output, the payee and the commitments in the proof
        bytes; then the chaining (c_j out of slice j-1 is c_j into slice j, for every j)."""
        from oracle.proving.groth16 import slice_jobs
        from oracle.proving.groth16.slice_jobs import groth16_pool

        r = self.report
        assert loc.dir is not None
        try:
            proof = slice_jobs.from_calldata(loc.dir, r.input, entry.output, "0x" + entry.proof.hex(), entry.payee)
            results, why = slice_jobs.slice_results(loc.dir, proof, groth16_pool())
        except (BackendError, ManifestError) as exc:
            r.add("offchain_verify", FAIL, f"sliced proof: {exc}")
            return
        for j, ok, detail in results:
            r.add(f"slice_{j}", PASS if ok else FAIL, detail)
        n = len(proof.public_signals)
        if why is None:
            r.add("chaining", PASS, f"{n} boundary commitment(s) chain the {n + 1} slices from the request's input "
                                    "to the submitted output for the payee")
            r.add("offchain_verify", PASS, f"sliced proof valid: {n + 1} slice proofs, one computation of the model "
                                           "on the request's input")
        else:
            r.add("chaining", FAIL, why)
            r.add("offchain_verify", FAIL, f"sliced proof rejected: {why}")

    def _verifier_code(self, loc: Located) -> None:
        """The registered circuit id is only a label: what the chain verifies with is the code
        behind the adapter (and, for the batch adapter, its own copy of the key)."""
        r = self.report
        assert r.model is not None and loc.dir is not None and loc.manifest is not None
        adapter = self.chain.contract("Groth16BatchAdapter", r.model.verifier)
        try:
            inner = str(adapter.functions.verifier().call(block_identifier=self.head))
            expected = expected_runtime_code(loc.manifest, loc.dir)
        except (ContractLogicError, BadFunctionCallOutput, ValueError, ManifestError) as exc:
            r.add("verifier_code", FAIL, f"cannot compare the deployed verifier with the artifacts ({exc})")
            return
        if bytes(self.w3.eth.get_code(to_checksum_address(inner), self.head)) != expected:
            r.add("verifier_code", FAIL, f"runtime code of verifier {inner} (behind adapter {r.model.verifier}) "
                                         f"differs from {loc.manifest.files['verifier_json']}")
            return
        detail = f"verifier {inner} runtime code equals {loc.manifest.files['verifier_json']}"
        if loc.manifest.backend == "groth16":
            try:
                words = [int(w) for w in adapter.functions.verificationKey().call(block_identifier=self.head)]
            except (ContractLogicError, BadFunctionCallOutput, ValueError):
                words = None  # a plain Groth16VerifierAdapter keeps no key of its own
            if words is not None:
                if words != groth16_vk_words(loc.manifest.path(loc.dir, "vk")):
                    r.add("verifier_code", FAIL, f"batch adapter {r.model.verifier} holds a verification key "
                                                 "other than the artifacts'")
                    return
                detail += "; the batch adapter's key equals the verification key"
        r.add("verifier_code", PASS, detail)

    def _offchain(self, loc: Located, entry: Entry) -> None:
        from oracle.proving.registry import get_backend

        r = self.report
        assert loc.dir is not None and loc.manifest is not None
        backend_name = loc.manifest.backend
        try:
            backend = get_backend(backend_name)
        except BackendError as exc:
            what = "ezkl audit not supported yet" if backend_name == "ezkl" else "backend unavailable"
            r.add("offchain_verify", FAIL, f"{what} ({exc})")
            return
        try:
            proof = proof_from_chain(loc.manifest, r.input, entry.output, entry.proof, entry.payee)
            valid = backend.verify(loc.dir, proof)
        except (BackendError, ManifestError) as exc:
            r.add("offchain_verify", FAIL, f"{backend_name}: {exc}")
            return
        if valid:
            r.add("offchain_verify", PASS, f"{backend_name} proof valid for the request's input and the "
                                           "submitted output")
        else:
            r.add("offchain_verify", FAIL, f"{backend_name} rejects the submitted proof for the request's input "
                                           "and the submitted output")

    def _onchain(self, entry: Entry) -> None:
        valid, detail = self._verify_call(entry)
        self.report.add("onchain_verify", PASS if valid else FAIL, detail)

    def _verify_call(self, entry: Entry) -> tuple[bool, str]:
        assert self.report.model is not None
        adapter = self.report.model.verifier
        fn = self.chain.contract("IInferenceVerifier", adapter).functions.verify(
            self.report.input, entry.output, entry.payee, entry.proof)
        try:
            ok = bool(fn.call({"gas": self.p.verify_gas}, block_identifier=self.head))
        except (ContractCustomError, ContractLogicError) as exc:
            return False, f"adapter {adapter} reverted: {_decoded(self.chain, exc)}"
        if ok:
            return True, f"adapter {adapter}.verify(input, output, payee, proof) = true at block {self.head} " \
                         f"(gas limit {self.p.verify_gas})"
        return False, f"adapter {adapter}.verify(input, output, payee, proof) = false at block {self.head}"

    def _topic(self, event: str) -> HexBytes:
        abi = next(e for e in self.oracle.abi if e.get("type") == "event" and e.get("name") == event)
        return HexBytes(event_abi_to_log_topic(abi))  # type: ignore[arg-type]


# The report's names of the on-chain InferenceOracle.Status (oracle.chain.structs.RequestStatus).
_STATUS = {s.value: "unknown" if s is OnChainStatus.NONE else s.name.lower() for s in OnChainStatus}


def _decoded(chain: Chain, exc: Exception) -> ContractError:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return chain.errors.decode(bytes.fromhex(data[2:]))
    return ContractError("Revert", {"message": str(exc)})
