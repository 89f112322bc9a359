"""``oracle miner``: the command line of a subnet miner (the HTTP app is ``.app``)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from oracle.errors import UserError
from oracle.http_limits import HttpLimits

if TYPE_CHECKING:
    from oracle.subnet.miner.app import ProofHook

log = logging.getLogger(__name__)


def add_miner_arguments(m: argparse.ArgumentParser) -> None:
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--models", type=Path, required=True, help="folder with one circuit folder per model")
    m.add_argument("--allow", default="", help="comma-separated validator hotkeys (ss58) allowed to call (local mode)")
    m.add_argument("--wallet", default="miner", help="wallet name (its hotkey is created if missing)")
    m.add_argument("--wallet-path", default=None, help="wallets folder (default ~/.bittensor/wallets)")
    m.add_argument("--hotkey", default="default", help="hotkey name inside the wallet")
    m.add_argument("--workers", type=int, default=2, help="proofs in flight at most (beyond: 503)")
    m.add_argument("--validator-url", help="fetch missing circuits from {URL}/circuits/{id}")
    m.add_argument("--max-age", type=float, default=10.0, help="request freshness window, seconds")
    d = HttpLimits()
    lim = m.add_argument_group("HTTP limits (bound what an unauthenticated peer can make the miner hold)")
    lim.add_argument("--max-body", type=int, default=d.max_body, help="request body bytes at most (beyond: 413)")
    lim.add_argument("--header-timeout", type=float, default=d.header_timeout,
                     help="seconds for a whole request head to arrive (beyond: connection closed)")
    lim.add_argument("--body-timeout", type=float, default=d.body_timeout,
                     help="seconds for a whole request body to arrive (beyond: 408)")
    lim.add_argument("--keep-alive", type=int, default=d.keep_alive, help="idle seconds between requests")
    lim.add_argument("--max-connections", type=int, default=d.max_connections,
                     help="open connections at most (beyond: closed at once)")
    lim.add_argument("--limit-concurrency", type=int, default=d.limit_concurrency,
                     help="connections or requests in flight before answering 503")
    net = m.add_argument_group("network mode (instead of --allow)")
    net.add_argument("--netuid", type=int, help="subnet uid: allow validators by stake on the chain metagraph")
    net.add_argument("--network", default="finney")
    net.add_argument("--min-stake", type=float, default=1000.0, help="minimum validator stake (TAO)")


def add_miner_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("miner", help="run a subnet miner (signed HTTP prover with a Bittensor hotkey)")
    add_miner_arguments(m)
    m.set_defaults(func=cmd_miner)


def cmd_miner(a: argparse.Namespace) -> int:
    return run_miner(a)


def run_miner(a: argparse.Namespace, hook: ProofHook | None = None) -> int:
    """Runs a miner from parsed ``add_miner_arguments``; ``hook`` replaces the honest proving
    steps (tests only: the production command never passes one)."""
    from oracle.subnet.auth import AllowList, Policy, StakeThreshold, load_or_create_wallet
    from oracle.subnet.miner.app import MinerSettings, make_state, serve, warm_up

    if a.workers < 1:
        raise UserError("--workers must be at least 1")
    limits = HttpLimits(max_body=a.max_body, header_timeout=a.header_timeout, body_timeout=a.body_timeout,
                        keep_alive=a.keep_alive, max_connections=a.max_connections,
                        limit_concurrency=a.limit_concurrency)
    wallet = load_or_create_wallet(a.wallet, a.wallet_path, a.hotkey)
    policy: Policy
    if a.netuid is not None:
        from oracle.subnet.metagraph import ChainMetagraph

        policy = StakeThreshold(ChainMetagraph(a.netuid, network=a.network), a.min_stake)
        who = f"validators with >= {a.min_stake:g} stake on netuid {a.netuid} ({a.network})"
    else:
        allowed = [h for h in a.allow.split(",") if h.strip()]
        if not allowed:
            raise UserError("give --allow SS58[,SS58...] (local mode) or --netuid (network mode)")
        policy = AllowList(allowed)
        who = f"{len(allowed)} allowed validator hotkey(s)"
    a.models.mkdir(parents=True, exist_ok=True)
    settings = MinerSettings(models_dir=a.models, workers=a.workers, validator_url=a.validator_url,
                             max_age=a.max_age, limits=limits)
    state = make_state(settings, wallet, policy, hook)
    log.info("miner %s on %s:%d: %d circuit(s), %d worker(s), serving %s",
             state.hotkey, a.host, a.port, len(state.circuits), a.workers, who)
    warm_up(state)
    t0 = time.monotonic()
    serve(state, a.host, a.port)
    state.pool.shutdown(wait=False, cancel_futures=True)
    log.info("miner stopped after %.0f s (%d proofs)", time.monotonic() - t0, state.proofs_done)
    return 0
