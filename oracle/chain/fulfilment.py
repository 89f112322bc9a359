"""Recovering the (output, proof, payee) a fulfilment submitted, from its transaction's calldata.

The one decoder of ``fulfill``/``fulfillBatch`` calldata: ``oracle audit`` re-checks what it
finds, and the cross-chain delivery job takes a proof it did not make from it (a request
fulfilled by someone else). The fulfilment may be a direct ``fulfill``/``fulfillBatch``
transaction or a call made by a contract (fulfilment is permissionless); for the latter the
oracle-bound calls are read from a ``callTracer`` trace of the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from oracle.errors import UserError

log = logging.getLogger(__name__)

FULFIL_FUNCTIONS = ("fulfill", "fulfillBatch")


class CalldataError(UserError):
    """The fulfilment transaction cannot be decoded into the request's entry."""


@dataclass(frozen=True)
class Entry:
    function: str            # "fulfill" or "fulfillBatch"
    index: int | None        # position inside the batch (None for fulfill)
    size: int                # entries in the call
    output: list[int]
    proof: bytes
    payee: str = ""          # the fee recipient the call named (checksummed)


def entries_for(oracle: Contract, data: bytes, request_id: int) -> list[Entry]:
    """Every entry of one fulfil call that names ``request_id``, in calldata order."""
    try:
        fn, args = oracle.decode_function_input(data)
    except ValueError as exc:
        raise CalldataError(f"not an InferenceOracle call ({exc})") from exc
    name = str(fn.fn_name)
    if name == "fulfill":
        if int(args["requestId"]) != request_id:
            return []
        return [Entry("fulfill", None, 1, [int(v) for v in args["output"]], bytes(args["proof"]),
                      to_checksum_address(args["payee"]))]
    if name == "fulfillBatch":
        ids, outs, proofs = args["requestIds"], args["outputs"], args["proofs"]
        n = len(ids)
        return [
            Entry("fulfillBatch", i, n, [int(v) for v in outs[i]], bytes(proofs[i]),
                  to_checksum_address(args["payee"]))
            for i in range(n)
            if int(ids[i]) == request_id and i < len(outs) and i < len(proofs)
        ]
    raise CalldataError(f"the transaction calls {name}, not fulfill or fulfillBatch")


def fulfil_calls(w3: Web3, oracle: Contract, tx: dict[str, Any]) -> list[bytes]:
    """Calldata of every fulfil call the transaction made to the oracle: the transaction itself
    when it was sent to the oracle, else the internal calls found by tracing it."""
    addr = to_checksum_address(oracle.address)
    to = tx.get("to")
    if to is not None and to_checksum_address(to) == addr:
        return [bytes(tx["input"])]
    try:
        trace = w3.provider.make_request(
            "debug_traceTransaction", [HexBytes(tx["hash"]).to_0x_hex(), {"tracer": "callTracer"}]  # type: ignore[arg-type]
        )
    except (Web3RPCError, ValueError, OSError) as exc:
        raise CalldataError(f"the transaction was sent to {to}, not the oracle, and tracing it failed ({exc})") from exc
    if "error" in trace or "result" not in trace:
        raise CalldataError(
            f"the transaction was sent to {to}, not the oracle, and the node cannot trace it "
            f"({trace.get('error')})"
        )
    selectors = _selectors(oracle)
    calls = [
        bytes(HexBytes(c.get("input", "0x")))
        for c in _walk(trace["result"])
        if c.get("to") and to_checksum_address(c["to"]) == addr and c.get("type") == "CALL"
        and not c.get("error")
    ]
    return [c for c in calls if c[:4] in selectors]


def entries_in(w3: Web3, oracle: Contract, tx: dict[str, Any], request_id: int) -> list[Entry]:
    """Every entry naming ``request_id`` in every fulfil call of the transaction ``tx`` (as
    returned by ``eth_getTransactionByHash``), in call and calldata order."""
    return [e for data in fulfil_calls(w3, oracle, tx) for e in entries_for(oracle, data, request_id)]


def _selectors(oracle: Contract) -> set[bytes]:
    return {
        bytes(function_abi_to_4byte_selector(cast(Any, item)))
        for item in oracle.abi
        if item.get("type") == "function" and item.get("name") in FULFIL_FUNCTIONS
    }


def _walk(frame: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield frame
    for child in frame.get("calls", []) or []:
        yield from _walk(child)
