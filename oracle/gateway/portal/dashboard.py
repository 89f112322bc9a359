"""The operator dashboard's data: one snapshot of the store (requests by state, latency and
proving-time series, fulfilment gas, why requests were given up, relayer accounts, miners),
streamed to the page as server-sent events whenever it changes.

Every figure comes from named read-only functions in ``oracle.store.repo`` (``stats``,
``reports``, ``scores``); relayer balances and chain nonces are read from the chains (cached a
few seconds, so many open dashboards cost the nodes nothing more), and the store is read once
per half interval for all of them (``SharedSnapshot``)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from oracle.store import repo
from oracle.store.db import Database
from oracle.store.repo import stats

log = logging.getLogger(__name__)

WINDOW_SECONDS = 3600.0      # the plots' time window
SERIES_LIMIT = 500           # points per plot
HEARTBEAT_SECONDS = 15.0     # an SSE comment keeps proxies from closing an idle stream
STOP_CHECK_SECONDS = 0.2     # how soon an open stream notices the server stopping


@dataclass(frozen=True)
class AccountState:
    balance_wei: int | None
    chain_nonce: int | None
    error: str | None = None


class ChainReader(Protocol):
    """Reads a relayer account on a configured chain (the gateway's read-only chain views)."""

    def account_state(self, chain_id: int, account: str) -> AccountState: ...


class CachedChainReader:
    """Wraps a reader: one chain read per account every ``ttl`` seconds at most."""

    def __init__(self, reader: ChainReader, ttl: float = 2.0) -> None:
        self._reader, self._ttl = reader, ttl
        self._cache: dict[tuple[int, str], tuple[float, AccountState]] = {}

    def account_state(self, chain_id: int, account: str) -> AccountState:
        key = (chain_id, account.lower())
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            st = self._reader.account_state(chain_id, account)
        except Exception as e:  # a chain outage must not stop the dashboard; shown per row
            st = AccountState(None, None, f"chain unreachable ({_short(e)})")
        self._cache[key] = (now, st)
        return st


class ChainViewsReader:
    """Relayer accounts read through the gateway's chain views (``GatewayContext.chains``)."""

    def __init__(self, views: Sequence[Any]) -> None:
        self._views = list(views)

    def account_state(self, chain_id: int, account: str) -> AccountState:
        down: list[str] = []
        for v in self._views:
            try:
                if v.chain_id != chain_id:
                    continue
            except Exception as e:  # that chain's RPC is down: it may be the one asked for
                down.append(f"{v.name}: {_short(e)}")
                continue
            addr = v.w3.to_checksum_address(account)
            return AccountState(int(v.w3.eth.get_balance(addr)), int(v.w3.eth.get_transaction_count(addr)))
        if down:
            return AccountState(None, None, f"chain unreachable ({'; '.join(down)})")
        return AccountState(None, None, f"chain {chain_id} is not configured in this gateway")


def _short(e: Exception, limit: int = 160) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= limit else text[:limit] + "…"


def reader_of(ctx: Any) -> ChainReader | None:
    """A cached reader over the context's chains, None when it reads no chain."""
    views = getattr(ctx, "chains", None) or []
    return CachedChainReader(ChainViewsReader(views)) if views else None


def snapshot(db: Database, chains: ChainReader | None = None,
             relayers: Sequence[tuple[int, str]] = (), now: float | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-able data. ``relayers``: (chain id, account) of
    the configured relayer accounts, shown even before their first transaction."""
    now = time.time() if now is None else now
    since = now - WINDOW_SECONDS
    with db.session() as s:
        counts = repo.count_by_state(s)
        timings = stats.request_timings(s, since, SERIES_LIMIT)
        proofs = stats.proof_timings(s, since, SERIES_LIMIT)
        gas = stats.fulfilment_gas(s, since, SERIES_LIMIT)
        reasons = stats.give_up_reasons(s)
        accounts = stats.relayer_accounts(s)
        miners = repo.miner_scores(s)
        by_prover = repo.proofs_by_prover(s)
    states: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for origin, state, n in counts:
        states.setdefault(origin, {})[state] = n
        totals[state] = totals.get(state, 0) + n
    known = {(a.chain_id, a.account.lower()): a for a in accounts}
    for chain_id, account in relayers:
        known.setdefault((chain_id, account.lower()), stats.RelayerAccount(chain_id, account, -1, 0))
    relayer_rows = []
    for (chain_id, _), a in sorted(known.items()):
        st = chains.account_state(chain_id, a.account) if chains is not None else AccountState(None, None, None)
        relayer_rows.append({
            "chain_id": chain_id, "account": a.account,
            "next_nonce": a.next_nonce if a.next_nonce >= 0 else None, "open_txs": a.open_txs,
            "balance_wei": None if st.balance_wei is None else str(st.balance_wei),
            "chain_nonce": st.chain_nonce, "error": st.error,
        })
    return {
        "at": now,
        "states": states,
        "totals": totals,
        "latency": {
            "t": [t.created_at for t in timings],
            "proven": [None if t.proven_at is None else round(t.proven_at - t.created_at, 3) for t in timings],
            "fulfilled": [None if t.fulfilled_at is None else round(t.fulfilled_at - t.created_at, 3) for t in timings],
        },
        "proving": {"t": [p.at for p in proofs], "seconds": [round(p.seconds, 4) for p in proofs],
                    "prover": [p.prover for p in proofs]},
        "gas": {"t": [g.at for g in gas], "gas": [g.gas_per_request for g in gas], "chain": [g.chain_id for g in gas]},
        "failures": [{"state": r.state, "reason": r.reason, "count": r.count, "last_at": r.last_at} for r in reasons],
        "relayers": relayer_rows,
        "miners": [{"hotkey": m.hotkey, "score": m.score, "successes": m.successes, "failures": m.failures,
                    "invalid": m.invalid, "latency": m.latency_ema, "proofs": by_prover.get(m.hotkey, 0)}
                   for m in miners],
    }


class SharedSnapshot:
    """One store read per ``max_age`` seconds however many dashboards are open: every stream
    takes the latest snapshot; when it is stale, one caller reads the store while the others
    wait for that read instead of starting their own. A failed read is not kept."""

    def __init__(self, read: Callable[[], dict[str, Any]], max_age: float) -> None:
        self._read = read
        self._max_age = max_age
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._taken_at = 0.0

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            if self._value is None or time.monotonic() - self._taken_at >= self._max_age:
                self._value = None               # a failed read leaves nothing to serve
                self._value = self._read()
                self._taken_at = time.monotonic()
            return self._value


def _fingerprint(snap: dict[str, Any]) -> str:
    """The snapshot without its timestamp: an event is sent only when something changed."""
    return json.dumps({k: v for k, v in snap.items() if k != "at"}, sort_keys=True)


async def events(take: Callable[[], dict[str, Any]], is_disconnected: Callable[[], Awaitable[bool]],
                 interval: float, stopping: threading.Event | None = None) -> AsyncIterator[str]:
    """Server-sent events: a ``snapshot`` event at once and after every change (the store is read
    every ``interval`` seconds, in a worker thread), a comment line as heartbeat. Ends when the
    client goes away or ``stopping`` is set (the server shutting down: an open dashboard must not
    hold the shutdown until its grace period runs out; the browser reconnects elsewhere)."""
    last, last_sent = "", time.monotonic()
    while not await is_disconnected() and not (stopping is not None and stopping.is_set()):
        try:
            snap = await run_in_threadpool(take)
        except Exception as e:  # a failed read (DB restarting) is reported, the stream goes on
            log.warning("dashboard snapshot failed: %s", e)
            yield f"event: problem\ndata: {json.dumps({'error': str(e)})}\n\n"
        else:
            fp = _fingerprint(snap)
            if fp != last:
                last, last_sent = fp, time.monotonic()
                yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
            elif time.monotonic() - last_sent > HEARTBEAT_SECONDS:
                last_sent = time.monotonic()
                yield ": heartbeat\n\n"
        end = time.monotonic() + interval
        while time.monotonic() < end and not (stopping is not None and stopping.is_set()):
            await asyncio.sleep(min(STOP_CHECK_SECONDS, interval))
