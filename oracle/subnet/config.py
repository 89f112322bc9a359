"""The optional ``[subnet]`` section of the service config. Without it the oracle proves
locally (``LocalProver``), exactly as before.

Local mode::

    [subnet]
    metagraph = "miners.json"      # hotkey + url (+ stake) per miner; re-read when it changes
    wallet_name = "validator"      # hotkey created (no password) if missing
    k = 2                          # miners asked at once; first valid proof wins

Network mode: ``netuid = 2`` (and ``network = "finney"``) instead of ``metagraph``; weights
are set on chain every ``weights_interval`` seconds.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator


class SubnetConfig(BaseModel):
    metagraph: Path | None = None
    netuid: int | None = Field(default=None, ge=0)
    network: str = "finney"
    wallet_name: str = "validator"
    wallet_path: Path | None = None            # default ~/.bittensor/wallets
    wallet_hotkey: str = "default"
    k: int = Field(default=2, ge=1)            # miners asked at once
    miner_timeout: float = Field(default=30.0, gt=0)    # give up on one miner after this
    hedge_delay: float = Field(default=5.0, gt=0)       # no answer yet: ask one more miner
    max_attempts: int = Field(default=6, ge=1)          # miners tried per request, at most
    exploration: float = Field(default=0.1, ge=0, le=1)  # chance of one extra probe of an unranked miner
    benchmark_interval: float = Field(default=0.0, ge=0)  # idle synthetic request every N s (0: off)
    idle_after: float = Field(default=10.0, ge=0)         # ... once no real request for this long
    weights_interval: float = Field(default=600.0, ge=0)  # network mode: set weights every N s (0: off)
    flush_interval: float = Field(default=5.0, gt=0)      # write scores to the store every N s
    fallback_local: bool = False               # prove locally when every miner failed
    circuits_host: str = "127.0.0.1"
    circuits_port: int | None = Field(default=None, ge=0, le=65535)  # serve circuits to miners (0: any port)
    auth_max_age: float = Field(default=30.0, gt=0)   # freshness window for miners' signed answers
    # A miner's /prove answer is read up to this many bytes, beyond it the answer is invalid
    # (Groth16 answers are ~2 kB, EZKL ~10-20 kB): a miner cannot exhaust the validator's memory.
    max_answer_bytes: int = Field(default=1 << 20, ge=4096)

    @model_validator(mode="after")
    def _one_source(self) -> SubnetConfig:
        if (self.metagraph is None) == (self.netuid is None):
            raise ValueError("subnet: give exactly one of `metagraph` (local file) or `netuid` (network mode)")
        return self
