"""``oracle gateway``: ``serve`` (the gateway alone, against the oracle's database) and
``key create|list|revoke`` (API keys; a new key is printed once, only its hash is stored)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from oracle.signals import stop_on_signals

log = logging.getLogger(__name__)


def add_gateway_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("gateway", help="the HTTP API: serve it, manage its API keys").add_subparsers(
        dest="gateway_cmd", required=True)
    s = g.add_parser("serve", help="serve the gateway against the oracle's database (no proving: `oracle run` "
                                   "instances on the same database prove)")
    s.add_argument("--db", default="sqlite:///oracle.db", help="database URL (SQLite file or PostgreSQL)")
    s.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT (loopback unless --public)")
    s.add_argument("--public", action="store_true", help="allow a non-loopback listen address")
    s.add_argument("--models", type=Path, required=True, help="folder with one circuit folder per model")
    s.add_argument("--rpc", action="append", default=[], help="chain RPC URL (repeatable, paired with --oracle)")
    s.add_argument("--oracle", action="append", default=[], help="InferenceOracle address on that chain")
    add_limit_flags(s)
    s.set_defaults(func=cmd_serve)

    k = g.add_parser("key", help="API keys").add_subparsers(dest="key_cmd", required=True)
    c = k.add_parser("create", help="create a key and print it (once)")
    c.add_argument("name")
    c.add_argument("--db", default="sqlite:///oracle.db")
    c.set_defaults(func=cmd_key_create)
    ls = k.add_parser("list", help="list keys (names, dates; never the keys)")
    ls.add_argument("--db", default="sqlite:///oracle.db")
    ls.set_defaults(func=cmd_key_list)
    r = k.add_parser("revoke", help="revoke a key by name")
    r.add_argument("name")
    r.add_argument("--db", default="sqlite:///oracle.db")
    r.set_defaults(func=cmd_key_revoke)


def add_limit_flags(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}rate", type=float, default=1.0, help="per API key: submissions per second")
    p.add_argument(f"--{prefix}burst", type=float, default=10.0, help="per API key: burst size")
    p.add_argument(f"--{prefix}max-pending", type=int, default=1000,
                   help="off-chain requests not final; beyond: 503")
    p.add_argument(f"--{prefix}max-body", type=int, default=64 * 1024, help="request body bytes; beyond: 413")
    p.add_argument(f"--{prefix}header-timeout", type=float, default=10.0,
                   help="seconds for a whole request head; then the connection is closed")
    p.add_argument(f"--{prefix}body-timeout", type=float, default=10.0, help="seconds for a whole request body (408)")
    p.add_argument(f"--{prefix}max-connections", type=int, default=512,
                   help="open sockets; beyond: closed at once")


def settings_from(a: argparse.Namespace, db: str, models: Path, chains: list[Any], prefix: str = "") -> Any:
    from pydantic import ValidationError

    from oracle.gateway.config import ChainEndpoint, GatewayConfigError, GatewaySettings

    p = prefix.replace("-", "_")
    try:
        return GatewaySettings(
            database_url=db, models_dir=models,
            chains=[c if isinstance(c, ChainEndpoint) else ChainEndpoint(**c) for c in chains],
            rate_per_second=getattr(a, f"{p}rate"), burst=getattr(a, f"{p}burst"),
            max_pending=getattr(a, f"{p}max_pending"), max_body=getattr(a, f"{p}max_body"),
            header_timeout=getattr(a, f"{p}header_timeout"), body_timeout=getattr(a, f"{p}body_timeout"),
            max_connections=getattr(a, f"{p}max_connections"),
        )
    except ValidationError as e:
        raise GatewayConfigError(f"invalid gateway flags: {e}") from e


def cmd_serve(a: argparse.Namespace) -> int:
    from oracle.gateway.app import create_app
    from oracle.gateway.config import GatewayConfigError
    from oracle.gateway.context import GatewayContext
    from oracle.gateway.server import GatewayServer, parse_listen

    if len(a.rpc) != len(a.oracle):
        raise GatewayConfigError("give one --oracle per --rpc")
    host, port = parse_listen(a.listen, public=a.public)
    chains = [{"name": f"chain-{i}", "rpc_url": r, "oracle": o} for i, (r, o) in enumerate(zip(a.rpc, a.oracle,
                                                                                               strict=True))]
    ctx = GatewayContext.open(settings_from(a, a.db, a.models, chains))
    stop = stop_on_signals()
    server = GatewayServer(create_app(ctx), host, port).start()
    print(json.dumps({"gateway": server.url}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        ctx.close()
    return 0


def _db(url: str) -> Any:
    from oracle.store.db import Database

    return Database(url)


def cmd_key_create(a: argparse.Namespace) -> int:
    from oracle.gateway.keys import Bucket, create_key

    db = _db(a.db)
    try:
        key = create_key(db, a.name, Bucket(rate=1.0, burst=10.0))
    finally:
        db.dispose()
    print(key)
    log.info("API key %r created: it is shown once (only its sha256 is stored)", a.name)
    return 0


def cmd_key_list(a: argparse.Namespace) -> int:
    from oracle.gateway.keys import list_keys

    db = _db(a.db)
    try:
        rows = list_keys(db)
    finally:
        db.dispose()
    for r in rows:
        print(json.dumps({"name": r.name, "created_at": r.created_at.isoformat(),
                          "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                          "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                          "sha256_prefix": r.key_hash[:12]}))
    return 0


def cmd_key_revoke(a: argparse.Namespace) -> int:
    from oracle.gateway.keys import revoke_key

    db = _db(a.db)
    try:
        row = revoke_key(db, a.name)
    finally:
        db.dispose()
    assert row.revoked_at is not None
    print(json.dumps({"name": row.name, "revoked_at": row.revoked_at.isoformat()}))
    return 0
