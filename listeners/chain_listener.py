"""One listener per chain: reads the oracle's events by block ranges, persists a checkpoint
(number + hash) after each range, detects reorgs by block-hash ancestry and rewinds.

A request is ``seen`` as soon as its log is read and ``confirmed`` once its block is
``confirmations`` deep and still canonical. Only confirmed requests are ever proven.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, LogReceipt

from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import TRANSITIONS, Request, State

log = logging.getLogger(__name__)

RECENT_WINDOW = 128  # block hashes kept for ancestry checks


@dataclass
class ListenerConfig:
    chain_id: int
    oracle: str
    confirmations: int = 1
    start_block: int = 0
    max_range: int = 2_000          # provider log-range limit; halved on "range too large"
    min_range: int = 1


@dataclass
class PollResult:
    new_requests: int = 0
    confirmed: int = 0
    fulfilled: int = 0
    refunded: int = 0
    orphaned: int = 0
    cross_chain: int = 0
    head: int = 0
    processed_to: int = 0
    notes: list[str] = field(default_factory=list)


class ChainListener:
    """The intake stage for one (chain, oracle contract): what happened on-chain, into the store.

    Owns the chain's block checkpoint (number, hash and recent hashes, committed together with
    the logs of each range), reorg detection by hash ancestry and the rewind, and the log-range
    size (halved when a provider refuses a range). It records requests as ``seen`` from
    ``InferenceRequested`` and moves them to ``confirmed`` once their block is
    ``confirmations`` deep and still canonical (``expired`` if the deadline passed first);
    orphans requests whose block left the chain; records every ``InferenceFulfilled`` (by
    anyone) as ``fulfilled`` and ``InferenceRefunded`` as ``expired``; and stores a ``waiting``
    delivery for each ``CrossChainRequested``.

    Never decides whether a request is valid (input size and range are the dispatcher's checks)
    or whether a proof is (the chain already did, for the fulfilments it reads); never proves,
    never signs or sends a transaction. It only reads the chain.
    """

    def __init__(self, db: Database, w3: Web3, abi: list[dict[str, Any]], cfg: ListenerConfig) -> None:
        self.db = db
        self.w3 = w3
        self.cfg = cfg
        self.oracle = to_checksum_address(cfg.oracle)
        self._contract = w3.eth.contract(address=self.oracle, abi=abi)
        self._events = {
            HexBytes(event_abi_to_log_topic(e)): e["name"]  # type: ignore[arg-type]
            for e in abi
            if e.get("type") == "event"
            and e["name"] in ("InferenceRequested", "InferenceFulfilled", "InferenceRefunded", "CrossChainRequested")
        }
        self._range = cfg.max_range

    # ------------------------------------------------------------------ public

    def poll(self) -> PollResult:
        """Processes everything new up to the head; safe to call repeatedly."""
        res = PollResult()
        head = int(self.w3.eth.block_number)
        res.head = head
        start = self._check_ancestry(res)
        while start <= head:
            end = min(head, start + self._range - 1)
            try:
                logs = self._get_logs(start, end)
            except (Web3RPCError, ValueError) as exc:  # provider refuses the range (too large, too many logs)
                if self._range <= self.cfg.min_range:
                    raise
                self._range = max(self.cfg.min_range, self._range // 2)
                log.warning("chain %d: log range too large (%s); now %d blocks", self.cfg.chain_id, exc, self._range)
                continue
            end_block = self.w3.eth.get_block(end)
            self._store_range(logs, end, _hex(end_block["hash"]), res)
            res.processed_to = end
            start = end + 1
        self._confirm(head, res)
        return res

    # ------------------------------------------------------------------ reorgs

    def _check_ancestry(self, res: PollResult) -> int:
        """Returns the first block to read. If the checkpointed block is no longer canonical,
        finds the fork point among recent hashes, orphans what came after it, rewinds."""
        with self.db.session() as s:
            cp = repo.get_checkpoint(s, self.cfg.chain_id, self.oracle)
            if cp is None:
                return self.cfg.start_block
            number, stored_hash, recent = cp.block_number, cp.block_hash, dict(cp.recent_hashes)
        if self._canonical_hash(number) == stored_hash:
            return number + 1
        fork = self._fork_point(recent, number)
        log.warning("chain %d: reorg detected at block %d; rewinding to %d", self.cfg.chain_id, number, fork)
        res.notes.append(f"reorg: rewound from {number} to {fork}")
        with self.db.session() as s:
            repo.lock_listener(s, self.cfg.chain_id, self.oracle)
            orphaned = self._orphan_after(s, fork)
            res.orphaned += orphaned
            kept = {k: v for k, v in recent.items() if int(k) <= fork}
            fork_hash = kept.get(str(fork)) or self._canonical_hash(fork) or ""
            repo.set_checkpoint(s, self.cfg.chain_id, self.oracle, fork, fork_hash, kept)
        return fork + 1

    def _fork_point(self, recent: dict[str, str], number: int) -> int:
        for n in sorted((int(k) for k in recent), reverse=True):
            if n < number and self._canonical_hash(n) == recent[str(n)]:
                return n
        # Deeper than our window: re-read the whole window (safe, only slower).
        return max(self.cfg.start_block - 1, number - RECENT_WINDOW)

    def _orphan_after(self, s: Session, fork: int) -> int:
        """Orphans requests after ``fork`` whose block is no longer canonical."""
        rows = repo.orphanable_after(s, self.cfg.chain_id, self.oracle, fork)
        hashes: dict[int, str | None] = {}
        count = 0
        for r in rows:
            if r.block_number not in hashes:
                hashes[r.block_number] = self._canonical_hash(r.block_number)
            if hashes[r.block_number] != r.block_hash:
                repo.transition(s, r, State.ORPHANED, f"block {r.block_number} {r.block_hash[:12]} left the chain")
                count += 1
        return count

    def _canonical_hash(self, number: int) -> str | None:
        if number < 0:
            return None
        try:
            block = self.w3.eth.get_block(number)
        except Exception:
            return None
        return _hex(block["hash"])

    # ------------------------------------------------------------------ reading

    def _get_logs(self, start: int, end: int) -> list[LogReceipt]:
        params: FilterParams = {
            "address": self.oracle,
            "fromBlock": start,
            "toBlock": end,
            "topics": [list(self._events)],
        }
        return list(self.w3.eth.get_logs(params))

    def _store_range(self, logs: list[LogReceipt], end: int, end_hash: str, res: PollResult) -> None:
        """All logs of one range and the new checkpoint commit together."""
        with self.db.session() as s:
            # Another instance's listener may be storing the same range: take turns, and read
            # the store only once it has committed (record_seen then finds its rows).
            repo.lock_listener(s, self.cfg.chain_id, self.oracle)
            for lg in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
                name = self._events.get(HexBytes(lg["topics"][0]))
                if name == "InferenceRequested":
                    if self._on_requested(s, lg):
                        res.new_requests += 1
                elif name == "InferenceFulfilled":
                    res.fulfilled += self._on_fulfilled(s, lg)
                elif name == "InferenceRefunded":
                    res.refunded += self._on_refunded(s, lg)
                elif name == "CrossChainRequested":
                    res.cross_chain += self._on_cross_chain(s, lg)
            cp = repo.get_checkpoint(s, self.cfg.chain_id, self.oracle)
            recent = dict(cp.recent_hashes) if cp else {}
            recent[str(end)] = end_hash
            for lg in logs:
                recent[str(lg["blockNumber"])] = _hex(lg["blockHash"])
            if len(recent) > RECENT_WINDOW:
                for k in sorted(recent, key=int)[: len(recent) - RECENT_WINDOW]:
                    del recent[k]
            repo.set_checkpoint(s, self.cfg.chain_id, self.oracle, end, end_hash, recent)

    def _on_requested(self, s: Session, lg: LogReceipt) -> bool:
        ev = self._contract.events.InferenceRequested().process_log(lg)
        a = ev["args"]
        seen = repo.SeenRequest(
            chain_id=self.cfg.chain_id,
            oracle=self.oracle,
            request_id=int(a["requestId"]),
            model_id="0x" + bytes(a["modelId"]).hex(),
            requester=a["requester"],
            input=[int(v) for v in a["input"]],
            callback=a["callback"],
            callback_gas_limit=int(a["callbackGasLimit"]),
            deadline=int(a["deadline"]),
            fee=int(a["fee"]),
            block_number=int(lg["blockNumber"]),
            block_hash=_hex(lg["blockHash"]),
            tx_hash=_hex(lg["transactionHash"]),
            log_index=int(lg["logIndex"]),
        )
        return repo.record_seen(s, seen) is not None

    def _on_cross_chain(self, s: Session, lg: LogReceipt) -> int:
        # Logged right after its InferenceRequested (same transaction), so the row exists.
        a = self._contract.events.CrossChainRequested().process_log(lg)["args"]
        d = repo.record_cross_chain(
            s, self.cfg.chain_id, self.oracle, int(a["requestId"]), int(a["dstChainId"]),
            to_checksum_address(a["dstConsumer"]), int(a["dstCallbackGasLimit"]),
        )
        return 0 if d is None else 1

    def _request(self, s: Session, request_id: int) -> Request | None:
        # Locked: no stale read against another instance's relayer/dispatcher.
        return repo.find_request(s, self.cfg.chain_id, self.oracle, request_id, for_update=True)

    def _on_fulfilled(self, s: Session, lg: LogReceipt) -> int:
        ev = self._contract.events.InferenceFulfilled().process_log(lg)
        req = self._request(s, int(ev["args"]["requestId"]))
        if req is None:
            return 0
        recorded = repo.record_fulfilment(
            s, req, f"fulfilled on-chain, fee to {ev['args']['payee']}", tx_hash=_hex(lg["transactionHash"]),
            block_number=int(lg["blockNumber"]), callback_succeeded=bool(ev["args"]["callbackSucceeded"]),
        )
        return int(recorded)

    def _on_refunded(self, s: Session, lg: LogReceipt) -> int:
        ev = self._contract.events.InferenceRefunded().process_log(lg)
        req = self._request(s, int(ev["args"]["requestId"]))
        if req is None or req.state in (State.EXPIRED.value, State.ORPHANED.value, State.FULFILLED.value):
            return 0
        if State.EXPIRED in _allowed(req):
            repo.transition(s, req, State.EXPIRED, "refunded on-chain")
            return 1
        return 0

    # ------------------------------------------------------------------ confirmation

    def _confirm(self, head: int, res: PollResult) -> None:
        depth_ok = head - self.cfg.confirmations + 1
        with self.db.session() as s:
            repo.lock_listener(s, self.cfg.chain_id, self.oracle)
            rows = repo.awaiting_confirmation(s, self.cfg.chain_id, self.oracle, depth_ok)
            if not rows:
                return
            now = int(self.w3.eth.get_block("latest")["timestamp"])
            hashes: dict[int, str | None] = {}
            for r in rows:
                if r.block_number not in hashes:
                    hashes[r.block_number] = self._canonical_hash(r.block_number)
                if hashes[r.block_number] != r.block_hash:
                    continue  # the next poll's ancestry check orphans it
                if r.deadline < now:
                    repo.transition(s, r, State.EXPIRED, "deadline passed before confirmation")
                    continue
                repo.transition(s, r, State.CONFIRMED)
                res.confirmed += 1


def _allowed(req: Request) -> frozenset[State]:
    return TRANSITIONS[State(req.state)]


def _hex(v: Any) -> str:
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    s = str(v)
    return s if s.startswith("0x") else "0x" + s
