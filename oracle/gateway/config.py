"""Gateway settings: flags of ``oracle gateway serve`` / ``oracle run --api``, or the
``[gateway]`` table of the service's TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from oracle.errors import UserError
from oracle.http_limits import HttpLimits

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
    # What one peer can make the server hold (oracle.http_limits): a request head must arrive
    # within header_timeout, a body within body_timeout (408); sockets beyond max_connections
    # are closed at once, and uvicorn answers 503 beyond limit_concurrency.
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=10.0, gt=0)
    keep_alive: int = Field(default=5, ge=1)
    max_connections: int = Field(default=512, ge=1)
    limit_concurrency: int = Field(default=256, ge=1)

    def http_limits(self) -> HttpLimits:
        return HttpLimits(max_body=self.max_body, header_timeout=self.header_timeout,
                          body_timeout=self.body_timeout, keep_alive=self.keep_alive,
                          max_connections=self.max_connections, limit_concurrency=self.limit_concurrency)
