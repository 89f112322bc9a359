"""Service configuration: a TOML file (``oracle run --config``) or flags for one chain."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from oracle.errors import UserError
from oracle.subnet.config import SubnetConfig


class ConfigError(UserError, ValueError):
    """The service configuration (file or flags) is invalid."""


class ChainConfig(BaseModel):
    name: str = "chain"
    rpc_url: str
    oracle: str
    confirmations: int = Field(default=1, ge=1)
    start_block: int = Field(default=0, ge=0)
    poll_interval: float = Field(default=0.5, gt=0)
    max_log_range: int = Field(default=2_000, ge=1)
    # CrossChainInbox on this chain: when set, results of requests made on the other
    # configured chains with this chain as destination are delivered here.
    inbox: str | None = None

    @field_validator("oracle", "inbox")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("0x") and len(v) == 42):
            raise ValueError(f"not an address: {v!r}")
        return v


class ProverConfig(BaseModel):
    models_dir: Path
    workers: int = Field(default=4, ge=1)   # dispatch threads; the prover pool sizes itself to the cores
    timeout: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)


class RelayerSettings(BaseModel):
    keystore: Path | None = None        # else ORACLE_PRIVATE_KEY (or the anvil dev key locally)
    max_batch: int = Field(default=16, ge=1)
    stuck_after: float = Field(default=30.0, gt=0)
    # Fee recipient named in proofs (default: the relayer account). Instances that share a
    # database should share it, so any of them can relay a proof another one made.
    payee: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")


class ServiceConfig(BaseModel):
    database_url: str = "sqlite:///oracle.db"
    instance: str = "oracle-1"          # lease owner id: stable across restarts of one instance
    chains: list[ChainConfig]
    prover: ProverConfig
    relayer: RelayerSettings = RelayerSettings()
    subnet: SubnetConfig | None = None    # miners over signed HTTP; None: prove locally

    @classmethod
    def load(cls, path: Path) -> ServiceConfig:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: config file not found") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML ({e})") from e
        db = raw.pop("database", {})
        if isinstance(db, dict) and "url" in db:
            raw["database_url"] = db["url"]
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(f"{path}: {e}") from e
