"""A web3 connection with the project's contract artifacts: deploy, call, transact, and
decode custom errors into readable messages (``InputSizeMismatch(expected=8, got=7)``).

This client is where web3's and requests' exceptions stop: a revert comes out as
``ContractError``, a node that cannot be reached (or is busy) as ``ChainUnavailable`` (transient),
a request the node refuses as ``NodeError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt, Wei

from oracle.chain.compiler import Artifact, compile_project
from oracle.errors import TransientError, UserError

log = logging.getLogger(__name__)


class ContractError(UserError):
    """A call or transaction reverted; ``name`` is the custom error, ``args`` its values."""

    def __init__(self, name: str, args: dict[str, Any], raw: bytes = b"") -> None:
        inner = ", ".join(f"{k}={_fmt(v)}" for k, v in args.items())
        super().__init__(f"{name}({inner})")
        self.name = name
        self.args_ = args
        self.raw = raw


class ChainUnavailable(TransientError):
    """The node cannot be reached, is busy or did not answer in time (a transaction not mined
    within the wait included): the same call may succeed later."""


class NodeError(UserError):
    """The node refused the request (a JSON-RPC error such as insufficient funds or a nonce too
    low, an HTTP error that is not the node being busy, a URL that is not an RPC endpoint)."""


def _fmt(v: Any) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)


class ErrorDecoder:
    """Maps 4-byte selectors of every error in every artifact to their ABI."""

    def __init__(self, artifacts: dict[str, Artifact]) -> None:
        self._by_selector: dict[bytes, dict[str, Any]] = {}
        for art in artifacts.values():
            for item in art.abi:
                if item.get("type") == "error":
                    sel = function_abi_to_4byte_selector(cast(Any, item))
                    self._by_selector[sel] = item

    def name_of(self, selector: bytes) -> str:
        item = self._by_selector.get(selector)
        return item["name"] if item else "0x" + selector.hex()

    def decode(self, data: bytes) -> ContractError:
        if len(data) < 4:
            return ContractError("Revert", {"data": data}, data)
        item = self._by_selector.get(data[:4])
        if item is None:
            if data[:4] == bytes.fromhex("08c379a0"):
                (msg,) = abi_decode(["string"], data[4:])
                return ContractError("Error", {"message": msg}, data)
            return ContractError("UnknownError", {"data": data}, data)
        types = [_abi_type(i) for i in item["inputs"]]
        values = abi_decode(types, data[4:]) if types else ()
        return ContractError(item["name"], {i["name"]: v for i, v in zip(item["inputs"], values, strict=True)}, data)

    def decode_exception(self, exc: Exception) -> ContractError:
        """The revert carried by a web3 exception (an ``eth_call`` or a gas estimate that
        reverted), decoded. A revert without data decodes as ``Revert``."""
        data = revert_data(exc)
        return self.decode(data if data is not None else b"")


def _abi_type(inp: dict[str, Any]) -> str:
    t: str = inp["type"]
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in inp["components"])
        return f"({inner}){t[5:]}"
    return t


def revert_data(exc: Exception) -> bytes | None:
    """The raw revert bytes a web3 exception carries (hex string, bytes or a JSON-RPC error
    object), or None when it carries none."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes.fromhex(data["data"].removeprefix("0x"))
    return None


# HTTP statuses that mean "busy or down, ask again later" rather than "refused".
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _node_failure(exc: Exception, what: str) -> ChainUnavailable | NodeError | None:
    """The transport or JSON-RPC failure ``exc`` of a round trip to a node as one of ours, or None
    when it is neither (a revert, or not a web3/requests exception at all)."""
    if isinstance(exc, requests.exceptions.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status in _RETRY_STATUSES:
            return ChainUnavailable(f"{what}: {exc}")
        return NodeError(f"{what}: {exc}")
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                  | ProviderConnectionError | TimeExhausted):
        return ChainUnavailable(f"{what}: {exc}")
    if isinstance(exc, requests.exceptions.RequestException | Web3RPCError):
        return NodeError(f"{what}: {exc}")
    return None


def probe_chain_id(rpc_url: str, timeout: float = 10.0) -> int:
    """The chain id at ``rpc_url``, asked with a short timeout: the first contact with an
    endpoint a user named, so that a wrong or dead URL fails fast and says which."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    what = f"cannot reach RPC endpoint {rpc_url}"
    try:
        return int(w3.eth.chain_id)
    except (requests.exceptions.RequestException, Web3Exception) as exc:
        raise _node_failure(exc, what) or NodeError(f"{what}: {exc}") from exc
    except ValueError as exc:    # the answer is not JSON-RPC (not a node)
        raise NodeError(f"{what}: {exc}") from exc


@dataclass
class Chain:
    """One RPC endpoint plus an optional signing account."""

    w3: Web3
    account: LocalAccount | None
    artifacts: dict[str, Artifact]

    @classmethod
    def connect(
        cls, rpc_url: str, account: LocalAccount | None = None, timeout: float = 30.0
    ) -> Chain:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        return cls(w3=w3, account=account, artifacts=compile_project())

    @property
    def chain_id(self) -> int:
        with self._rpc("chain id"):
            return int(self.w3.eth.chain_id)

    @property
    def errors(self) -> ErrorDecoder:
        return ErrorDecoder(self.artifacts)

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=self.artifacts[name].abi)

    def deploy(self, name: str, *args: Any, artifact: Artifact | None = None) -> str:
        art = artifact or self.artifacts[name]
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        with self._rpc(f"deploying {name}"):
            receipt = self._send(factory.constructor(*args).build_transaction(self._base_tx()))
        address = receipt["contractAddress"]
        assert address is not None
        log.info("deployed %s at %s (gas %d)", name, address, receipt["gasUsed"])
        return str(address)

    def transact(
        self, fn: ContractFunction, *, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Sends ``fn`` and waits for the receipt; reverts come back as ContractError."""
        tx = self._base_tx(value=value)
        if gas is not None:
            tx["gas"] = gas
        with self._rpc(f"{fn.fn_name} transaction"):
            built = fn.build_transaction(tx)
            receipt = self._send(built)
        if receipt["status"] != 1:
            raise self._replay_failure(built, receipt)
        return receipt

    def call(self, fn: ContractFunction, **tx: Any) -> Any:
        with self._rpc(f"{fn.fn_name} call"):
            return fn.call(cast(TxParams, tx) if tx else None)

    @contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Round trips to the node inside come out with our exceptions only (see module doc)."""
        try:
            yield
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._decoded(exc) from exc
        except (requests.exceptions.RequestException, Web3Exception) as exc:
            ours = _node_failure(exc, what)
            if ours is None:
                raise
            raise ours from exc

    def _base_tx(self, value: int = 0) -> TxParams:
        if self.account is None:
            raise RuntimeError("this Chain has no signing account")
        return {"from": self.account.address, "value": Wei(value), "chainId": self.chain_id}

    def _send(self, tx: TxParams) -> TxReceipt:
        assert self.account is not None
        tx = dict(tx)  # type: ignore[assignment]
        tx.setdefault("nonce", self.w3.eth.get_transaction_count(self.account.address, "pending"))
        if "gas" not in tx:
            tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 1.2) + 20_000
        signed = self.account.sign_transaction(cast(Any, tx))
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)

    def _decoded(self, exc: Exception) -> ContractError:
        data = revert_data(exc)
        if data is None:
            return ContractError("Revert", {"message": str(exc)})
        return self.errors.decode(data)

    def _replay_failure(self, tx: TxParams, receipt: TxReceipt) -> ContractError:
        """Re-runs a failed transaction as a call at its block to recover the revert reason."""
        call = {k: v for k, v in dict(tx).items() if k in ("from", "to", "data", "value", "gas")}
        try:
            self.w3.eth.call(cast(TxParams, call), receipt["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError) as exc:
            return self._decoded(exc)
        except Exception as exc:
            return ContractError("Reverted", {"tx": receipt["transactionHash"].hex(), "replay": str(exc)})
        return ContractError("Reverted", {"tx": receipt["transactionHash"].hex(), "gasUsed": receipt["gasUsed"]})
