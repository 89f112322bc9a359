"""``oracle run``: the service, from a TOML file or from flags for one chain."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from oracle.signals import stop_on_signals

log = logging.getLogger(__name__)


def add_run_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("run", help="run the oracle service (listeners, dispatcher, relayer)")
    r.add_argument("--config", type=Path, help="TOML config (chains, database, prover, relayer)")
    r.add_argument("--rpc", help="one chain: RPC URL")
    r.add_argument("--oracle", help="one chain: InferenceOracle address")
    r.add_argument("--models", type=Path, help="folder with one circuit folder per model")
    r.add_argument("--db", default="sqlite:///oracle.db", help="database URL (SQLite file or PostgreSQL)")
    r.add_argument("--confirmations", type=int, default=1)
    r.add_argument("--workers", type=int, default=4, help="dispatch threads (proofs in flight)")
    r.add_argument("--instance", default="oracle-1", help="instance id (stable across restarts)")
    r.add_argument("--api", metavar="HOST:PORT", help="also serve the gateway (HTTP API) here; off by default")
    r.add_argument("--api-public", action="store_true", help="allow a non-loopback --api address")
    from oracle.gateway.cli import add_limit_flags

    add_limit_flags(r, prefix="api-")
    r.set_defaults(func=cmd_run)


def build_config(a: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from oracle.service.config import ChainConfig, ConfigError, ProverConfig, ServiceConfig

    if a.config:
        if a.rpc or a.oracle:
            raise ConfigError("give either --config or --rpc/--oracle/--models, not both")
        return ServiceConfig.load(a.config)
    missing = [f for f in ("rpc", "oracle", "models") if getattr(a, f) is None]
    if missing:
        raise ConfigError("missing " + ", ".join("--" + m for m in missing) + " (or use --config FILE)")
    try:
        return ServiceConfig(
            database_url=a.db,
            instance=a.instance,
            chains=[ChainConfig(rpc_url=a.rpc, oracle=a.oracle, confirmations=a.confirmations)],
            prover=ProverConfig(models_dir=a.models, workers=a.workers),
        )
    except ValidationError as e:     # pydantic's, about the flags: say so as ServiceConfig.load does
        raise ConfigError(f"invalid flags: {e}") from e


def cmd_run(a: argparse.Namespace) -> int:
    from oracle.service.app import OracleService

    cfg = build_config(a)
    listen = None
    if a.api:
        from oracle.gateway.server import parse_listen

        listen = parse_listen(a.api, public=a.api_public)     # refused before anything starts
    service = OracleService(cfg)
    stop = stop_on_signals()
    if listen is None:
        service.run_forever(stop)
        return 0
    service.start()
    gateway = None
    try:
        gateway = start_gateway(a, cfg, service, listen)
        while not stop.wait(0.5):
            pass
    finally:
        if gateway is not None:
            gateway.stop()          # before the service closes the database it reads
        service.stop()
    return 0


def start_gateway(a: argparse.Namespace, cfg: Any, service: Any, listen: tuple[str, int]) -> Any:
    """The gateway in this process (a uvicorn thread) on the service's own database."""
    from oracle.gateway.app import create_app
    from oracle.gateway.cli import settings_from
    from oracle.gateway.context import GatewayContext
    from oracle.gateway.server import GatewayServer

    chains = [{"name": c.name, "rpc_url": c.rpc_url, "oracle": c.oracle} for c in cfg.chains]
    ctx = GatewayContext.open(settings_from(a, cfg.database_url, cfg.prover.models_dir, chains, prefix="api-"),
                              db=service.db)
    server = GatewayServer(create_app(ctx), *listen).start()
    log.info("gateway: %s (API docs at %s/docs)", server.url, server.url)
    return server
