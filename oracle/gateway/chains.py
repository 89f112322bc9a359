"""Read-only views of the configured chains: registry entries, fee quotes, the adapter's
verifier, on-chain verification by ``eth_call``. The gateway never signs or sends."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from oracle.chain.compiler import Artifact
from oracle.chain.structs import RegistryModel, read_model
from oracle.gateway.config import ChainEndpoint

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Registered:
    chain_id: int
    registry: str
    model: RegistryModel


class ChainView:
    """One chain, read lazily: a gateway starts (and answers what does not need the chain) even
    while a chain's RPC is down; ``/readyz`` reports it."""

    def __init__(self, cfg: ChainEndpoint, artifacts: dict[str, Artifact], timeout: float) -> None:
        self.cfg = cfg
        self.w3 = Web3(Web3.HTTPProvider(cfg.rpc_url, request_kwargs={"timeout": timeout}))
        self._abis = {n: artifacts[n].abi for n in ("InferenceOracle", "ModelRegistry", "IInferenceVerifier",
                                                    "VerifierAdapterBase")}
        self.oracle = self.w3.eth.contract(address=Web3.to_checksum_address(cfg.oracle),
                                           abi=self._abis["InferenceOracle"])
        self._chain_id: int | None = None
        self._registry: Any = None
        self._models: dict[str, tuple[float, RegistryModel | None]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._registry = self.w3.eth.contract(address=self.oracle.functions.registry().call(),
                                                  abi=self._abis["ModelRegistry"])
        return self._registry

    def ping(self) -> int:
        """The chain id, read now (raises when the RPC does not answer)."""
        return int(self.w3.eth.chain_id)

    def model(self, model_id: str) -> RegistryModel | None:
        """The registry entry of ``model_id`` (cached for a few seconds), None if unregistered."""
        key = model_id.lower()
        with self._lock:
            hit = self._models.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        raw = bytes.fromhex(key.removeprefix("0x"))
        entry = read_model(self.registry, raw) if self.registry.functions.isRegistered(raw).call() else None
        with self._lock:
            self._models[key] = (time.monotonic(), entry)
        return entry

    def model_ids(self) -> list[str]:
        return ["0x" + bytes(m).hex() for m in self.registry.functions.modelIds().call()]

    def quote(self, model_id: str, callback_gas: int) -> int:
        return int(self.oracle.functions.quoteFee(bytes.fromhex(model_id.removeprefix("0x")), callback_gas).call())

    def adapter_verifier(self, adapter: str) -> str | None:
        """The generated verifier behind an adapter (None for adapters without ``verifier()``)."""
        c = self.w3.eth.contract(address=Web3.to_checksum_address(adapter), abi=self._abis["VerifierAdapterBase"])
        try:
            return str(c.functions.verifier().call())
        except Exception:     # an adapter of another shape: the registry entry still names it
            return None

    def verify(self, adapter: str, input_fixed: list[int], output_fixed: list[int], payee: str,
               proof: bytes, gas: int) -> bool:
        """The adapter's own ``verify`` by eth_call, with an explicit gas limit (an estimate is
        too low for the pairing precompile, which then answers false, not a revert)."""
        c = self.w3.eth.contract(address=Web3.to_checksum_address(adapter), abi=self._abis["IInferenceVerifier"])
        return bool(c.functions.verify(input_fixed, output_fixed, Web3.to_checksum_address(payee), proof)
                    .call({"gas": gas}))
