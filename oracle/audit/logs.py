"""Finding one request's logs without an indexer: locate the block that created the request,
then read logs forward in block ranges small enough for the provider."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, LogReceipt

from oracle.audit.defaults import DEFAULT_MAX_RANGE

log = logging.getLogger(__name__)



def topic_uint(v: int) -> HexBytes:
    """An indexed uint256 as a log topic."""
    return HexBytes(v.to_bytes(32, "big"))


def scan_first(
    w3: Web3,
    address: str,
    topics: Sequence[HexBytes | list[HexBytes] | None],
    start: int,
    end: int,
    max_range: int = DEFAULT_MAX_RANGE,
) -> list[LogReceipt]:
    """The logs of the first range in [start, end] that has any, or []. A provider that refuses
    a range (too many blocks or results) gets half of it, down to one block."""
    step = max(1, max_range)
    lo = start
    while lo <= end:
        hi = min(end, lo + step - 1)
        params: FilterParams = {
            "address": to_checksum_address(address),
            "fromBlock": lo,
            "toBlock": hi,
            "topics": list(topics),
        }
        try:
            found = [e for e in w3.eth.get_logs(params) if not e.get("removed", False)]
        # web3 7 raises Web3RPCError (not a ValueError) for JSON-RPC errors such as a range limit.
        except (Web3RPCError, ValueError) as exc:
            if step == 1:
                raise
            step = max(1, step // 2)
            log.warning("eth_getLogs refused blocks %d-%d (%s); retrying with %d blocks", lo, hi, exc, step)
            continue
        if found:
            return found
        lo = hi + 1
    return []


def find_creation_block(w3: Web3, oracle: str, request_id: int, head: int) -> int | None:
    """The block whose transactions created ``request_id``: the first block at which the
    oracle's ``nextRequestId`` exceeds it (ids are sequential). Binary search over historical
    state, ~log2(head) calls; None when the node cannot serve old state (not an archive node)."""
    selector = Web3.keccak(text="nextRequestId()")[:4]
    addr = to_checksum_address(oracle)

    def next_id_at(block: int) -> int:
        raw = w3.eth.call({"to": addr, "data": HexBytes(selector)}, block)
        # Before the oracle was deployed there is no code: the call returns nothing.
        return int.from_bytes(raw, "big") if len(raw) == 32 else 0

    try:
        if next_id_at(head) <= request_id:
            return None
        lo, hi = 0, head  # invariant: next_id_at(hi) > request_id
        while lo < hi:
            mid = (lo + hi) // 2
            if next_id_at(mid) > request_id:
                hi = mid
            else:
                lo = mid + 1
        return hi
    except (Web3RPCError, ValueError) as exc:
        log.warning("historical state unavailable (%s): scanning logs from the start block instead", exc)
        return None
