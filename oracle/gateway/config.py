"""Gateway settings: flags of ``oracle gateway serve`` / ``oracle run --api``, or the
``[gateway]`` table of the service's TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from oracle.errors import UserError

KIB = 1024


class GatewayConfigError(UserError, ValueError):
    """Gateway flags or settings that cannot work."""


class ChainEndpoint(BaseModel):
    """A chain the gateway reads (registry entries, fee quotes, on-chain verification)."""

    name: str = "chain"
    rpc_url: str
    oracle: str

    @field_validator("oracle")
    @classmethod
    def _address(cls, v: str) -> str:
        if not (v.startswith("0x") and len(v) == 42):
            raise ValueError(f"not an address: {v!r}")
        return v


class GatewaySettings(BaseModel):
    database_url: str = "sqlite:///oracle.db"
    models_dir: Path
    chains: list[ChainEndpoint] = Field(default_factory=list)
    # Per API key token bucket (kept in the database: shared by every gateway on it): a key
    # may submit `burst` inferences at once and `rate_per_second` on average after that.
    rate_per_second: float = Field(default=1.0, gt=0)
    burst: float = Field(default=10.0, ge=1)
    max_body: int = Field(default=64 * KIB, ge=1024)        # bytes; refused (413) before parsing
    max_pending: int = Field(default=1_000, ge=1)           # off-chain requests not final; beyond: 503
    offchain_ttl: int = Field(default=600, ge=10)           # seconds an off-chain request may take
    callback_gas_default: int = Field(default=200_000, ge=0, le=2**32 - 1)  # fee quotes without ?callback_gas
    eth_call_gas: int = Field(default=5_000_000, ge=100_000)  # explicit gas of on-chain verify calls
    chain_timeout: float = Field(default=5.0, gt=0)         # seconds per RPC call
