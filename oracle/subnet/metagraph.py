"""Who the miners are (and, for miners in network mode, how much stake a validator has).

``LocalMetagraph``: a JSON or TOML file, re-read when it changes::

    {"miners": [{"hotkey": "5F...", "url": "http://127.0.0.1:8091", "stake": 0}],
     "validators": [{"hotkey": "5G...", "stake": 1000}]}          # optional

``ChainMetagraph``: the subnet's metagraph on the Bittensor chain (network mode). The
subtensor is created lazily (it connects on first use), so building one costs nothing and
tests hand in a fake.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.errors import UserError

log = logging.getLogger(__name__)


class MetagraphError(UserError, ValueError):
    """The subnet's metagraph (file or chain) is missing or unusable as configured."""


@dataclass(frozen=True)
class MinerInfo:
    hotkey: str
    url: str                     # base URL, e.g. http://127.0.0.1:8091
    stake: float = 0.0
    uid: int | None = None


class Metagraph(abc.ABC):
    @abc.abstractmethod
    def miners(self) -> list[MinerInfo]:
        """The miners to dispatch to (refreshed as the source changes)."""

    @abc.abstractmethod
    def stake_of(self, hotkey: str) -> float:
        """Stake of any hotkey on the subnet (0 when unknown)."""

    def set_weights(self, weights: dict[str, float]) -> bool:
        """Publishes weights (hotkey -> normalized weight); False when this source has no chain."""
        return False


class LocalMetagraph(Metagraph):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._miners: list[MinerInfo] = []
        self._stakes: dict[str, float] = {}
        self.last_weights: dict[str, float] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError as e:
            raise MetagraphError(f"{self.path}: metagraph file not found") from e
        with self._lock:
            if stamp == self._stamp:
                return
            raw = _parse(self.path)
            miners = []
            for i, m in enumerate(raw.get("miners", [])):
                try:
                    miners.append(MinerInfo(hotkey=str(m["hotkey"]), url=str(m["url"]).rstrip("/"),
                                            stake=float(m.get("stake", 0.0)), uid=m.get("uid", i)))
                except (KeyError, TypeError, ValueError) as e:
                    raise MetagraphError(f"{self.path}: miner #{i} needs hotkey and url ({e})") from e
            stakes = {m.hotkey: m.stake for m in miners}
            for v in raw.get("validators", []):
                stakes[str(v["hotkey"])] = float(v.get("stake", 0.0))
            self._miners, self._stakes, self._stamp = miners, stakes, stamp
            log.info("local metagraph %s: %d miner(s)", self.path, len(miners))

    def miners(self) -> list[MinerInfo]:
        try:
            self._reload()
        except MetagraphError as e:       # a half-written file: keep the last good view
            log.warning("%s; keeping the previous miner list", e)
        with self._lock:
            return list(self._miners)

    def stake_of(self, hotkey: str) -> float:
        with self._lock:
            return self._stakes.get(hotkey, 0.0)

    def set_weights(self, weights: dict[str, float]) -> bool:
        self.last_weights = dict(weights)
        return False


def _parse(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        raw: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise MetagraphError(f"{path}: unreadable metagraph file ({e})") from e
    return raw


def write_local_metagraph(path: Path, miners: list[MinerInfo], validators: dict[str, float] | None = None) -> Path:
    """Writes the file atomically (a reader never sees half of it)."""
    body = {
        "miners": [{"hotkey": m.hotkey, "url": m.url, "stake": m.stake} for m in miners],
        "validators": [{"hotkey": h, "stake": s} for h, s in (validators or {}).items()],
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)
    return path


class ChainMetagraph(Metagraph):
    """The subnet's metagraph on chain, refreshed at most every ``refresh_interval`` seconds.

    Uses only the bittensor 11 surface: ``subtensor.subnets.metagraph(netuid)`` (neurons with
    hotkey, uid, axon "ip:port", total_stake) and ``subtensor.execute(SetWeights(...), wallet)``.
    """

    def __init__(self, netuid: int, *, network: str = "finney", wallet: Any = None,
                 subtensor: Any = None, subtensor_factory: Callable[[str], Any] | None = None,
                 refresh_interval: float = 300.0, scheme: str = "http") -> None:
        self.netuid = netuid
        self.network = network
        self.wallet = wallet
        self._subtensor = subtensor
        self._factory = subtensor_factory
        self.refresh_interval = refresh_interval
        self.scheme = scheme
        self._lock = threading.Lock()
        self._fetched = 0.0
        self._neurons: list[Any] = []

    @property
    def subtensor(self) -> Any:
        if self._subtensor is None:
            if self._factory is not None:
                self._subtensor = self._factory(self.network)
            else:
                import bittensor as bt

                self._subtensor = bt.Subtensor(self.network)
        return self._subtensor

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            if not force and self._neurons and time.monotonic() - self._fetched < self.refresh_interval:
                return
        mg = self.subtensor.subnets.metagraph(self.netuid)
        if mg is None:
            raise MetagraphError(f"subnet {self.netuid} does not exist on {self.network}")
        with self._lock:
            self._neurons = list(mg.neurons)
            self._fetched = time.monotonic()
        log.info("chain metagraph netuid %d: %d neuron(s)", self.netuid, len(self._neurons))

    def _view(self) -> list[Any]:
        try:
            self.refresh()
        except Exception as e:  # chain down: keep dispatching to the last known miners
            if not self._neurons:
                raise
            log.warning("metagraph refresh failed (%s); using the last view", e)
        with self._lock:
            return list(self._neurons)

    def miners(self) -> list[MinerInfo]:
        own = self.wallet.hotkey.ss58_address if self.wallet is not None else None
        return [
            MinerInfo(hotkey=n.hotkey, url=f"{self.scheme}://{n.axon}", stake=_tao(n.total_stake), uid=int(n.uid))
            for n in self._view() if n.axon and n.hotkey != own
        ]

    def stake_of(self, hotkey: str) -> float:
        return next((_tao(n.total_stake) for n in self._view() if n.hotkey == hotkey), 0.0)

    def set_weights(self, weights: dict[str, float]) -> bool:
        import bittensor as bt

        if self.wallet is None:
            raise MetagraphError("setting weights needs the validator's wallet")
        uid_of = {n.hotkey: int(n.uid) for n in self._view()}
        pairs = sorted((uid_of[h], w) for h, w in weights.items() if h in uid_of)
        if not pairs:
            log.info("no registered miner to weight")
            return False
        intent = bt.SetWeights(netuid=self.netuid, uids=[u for u, _ in pairs], weights=[w for _, w in pairs])
        self.subtensor.execute(intent, self.wallet)
        log.info("set weights on netuid %d for %d miner(s)", self.netuid, len(pairs))
        return True


def _tao(balance: Any) -> float:
    return float(getattr(balance, "tao", balance))
