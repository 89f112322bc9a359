"""Identities and request authentication, on top of ``bittensor.http_auth`` (used as is).

Authentication (who signed, fresh, not replayed, body bound, addressed to us) is
``http_auth.verify``; authorization (may this hotkey use us) is a ``Policy``: an allow-list in
local mode, a stake threshold from the metagraph in network mode. Authentication failures are
401, authorization failures 403.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

import bittensor as bt
from bittensor import http_auth

from oracle.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_WALLET_PATH = str(Path("~/.bittensor/wallets").expanduser())


def load_or_create_wallet(name: str, path: str | Path | None = None, hotkey: str = "default") -> bt.Wallet:
    """The wallet's hotkey, created without any prompt (no password) when missing. Only the
    hotkey is needed to sign HTTP; the coldkey is never created or touched here."""
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=str(Path(path or DEFAULT_WALLET_PATH).expanduser()))
    if not wallet.hotkey_file.exists_on_device():
        wallet.create_new_hotkey(use_password=False, suppress=True)
        log.info("created hotkey %s for wallet %s under %s", wallet.hotkey.ss58_address, name, wallet.path)
    return wallet


def hotkey_of(wallet: bt.Wallet) -> str:
    addr: str = wallet.hotkey.ss58_address
    return addr


class AuthFailure(UserError):
    """A request's signature or sender is refused (the peer's fault: answered 401/403)."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status    # 401 (not authenticated) or 403 (authenticated, not allowed)
        self.code = code        # unsigned | malformed | bad_signature | stale | replayed | wrong_receiver | not_allowed
        self.reason = reason


# http_auth's exception classes -> our codes. Messages from http_auth never echo secrets.
_CODES: list[tuple[type[http_auth.AuthError], str]] = [
    (http_auth.WrongReceiver, "wrong_receiver"),
    (http_auth.StaleRequest, "stale"),
    (http_auth.ReplayedRequest, "replayed"),
    (http_auth.BadSignature, "bad_signature"),
    (http_auth.MalformedAuth, "malformed"),
]


class Policy(Protocol):
    def check(self, hotkey: str) -> str | None:
        """None when ``hotkey`` may use this miner, else why not."""


class AllowList:
    def __init__(self, hotkeys: Iterable[str]) -> None:
        self.hotkeys = frozenset(h.strip() for h in hotkeys if h.strip())

    def check(self, hotkey: str) -> str | None:
        return None if hotkey in self.hotkeys else "hotkey is not in this miner's allow-list"


class StakeSource(Protocol):
    def stake_of(self, hotkey: str) -> float: ...


class StakeThreshold:
    """Network mode: any validator with at least ``min_stake`` on the subnet."""

    def __init__(self, stakes: StakeSource, min_stake: float) -> None:
        self.stakes = stakes
        self.min_stake = min_stake

    def check(self, hotkey: str) -> str | None:
        stake = self.stakes.stake_of(hotkey)
        if stake < self.min_stake:
            return f"hotkey stake {stake:g} is below this miner's threshold {self.min_stake:g}"
        return None


class RequestVerifier:
    """Checks one signed request: ``http_auth.verify`` then the policy. Raises AuthFailure."""

    def __init__(self, self_hotkey: str, policy: Policy, *, max_age: float = http_auth.DEFAULT_MAX_AGE,
                 allowed_skew: float = http_auth.DEFAULT_ALLOWED_SKEW) -> None:
        self.self_hotkey = self_hotkey
        self.policy = policy
        self.max_age = max_age
        self.allowed_skew = allowed_skew
        # Retention covers the whole freshness window (http_auth refuses a shorter one).
        self.nonces = http_auth.InMemoryNonceStore(retention=max(60.0, 2 * (max_age + allowed_skew)))

    def precheck(self, headers: Mapping[str, str]) -> str:
        """Everything that can be refused from the request head alone, BEFORE the body is read
        (so an unauthenticated peer cannot make us buffer anything): headers present and well
        formed, addressed to this miner, fresh, and the claimed sender allowed by the policy.
        Returns the claimed sender; ``verify`` (signature over the body, replay) stays the
        authority. Raises AuthFailure."""
        h = {k.lower(): v for k, v in headers.items()}
        if http_auth.HEADER_SIGNATURE.lower() not in h and http_auth.HEADER_HOTKEY.lower() not in h:
            raise AuthFailure(401, "unsigned", "request is not signed (btauth/1 headers missing)")
        if h.get(http_auth.HEADER_VERSION.lower()) != http_auth.VERSION:
            raise AuthFailure(401, "malformed", f"missing or unsupported {http_auth.HEADER_VERSION}")
        sender = h.get(http_auth.HEADER_HOTKEY.lower(), "")
        if not sender or not h.get(http_auth.HEADER_SIGNATURE.lower()):
            raise AuthFailure(401, "malformed", "missing hotkey or signature header")
        try:
            nonce = int(h.get(http_auth.HEADER_NONCE.lower(), ""))
        except ValueError:
            raise AuthFailure(401, "malformed", f"{http_auth.HEADER_NONCE} is not a decimal integer") from None
        if h.get(http_auth.HEADER_RECEIVER.lower()) != self.self_hotkey:
            raise AuthFailure(401, "wrong_receiver", "request was not signed for this miner's hotkey")
        now = time.time_ns()
        if now - nonce > self.max_age * 1e9 or nonce - now > self.allowed_skew * 1e9:
            raise AuthFailure(401, "stale", f"nonce outside the {self.max_age:g}s freshness window")
        why = self.policy.check(sender)
        if why is not None:
            raise AuthFailure(403, "not_allowed", why)
        return sender

    def verify(self, headers: Mapping[str, str], body: bytes, *, method: str, path: str) -> http_auth.Caller:
        lowered = {k.lower() for k in headers}
        if http_auth.HEADER_SIGNATURE.lower() not in lowered and http_auth.HEADER_HOTKEY.lower() not in lowered:
            raise AuthFailure(401, "unsigned", "request is not signed (btauth/1 headers missing)")
        try:
            caller = http_auth.verify(
                headers, body, method=method, path=path, self_hotkey_ss58=self.self_hotkey,
                max_age=self.max_age, allowed_skew=self.allowed_skew, nonce_store=self.nonces,
            )
        except http_auth.AuthError as e:
            code = next((c for cls, c in _CODES if isinstance(e, cls)), "unauthorized")
            raise AuthFailure(401, code, str(e)) from None
        why = self.policy.check(caller.hotkey_ss58)
        if why is not None:
            raise AuthFailure(403, "not_allowed", why)
        return caller


class ResponseVerifier:
    """Validator side: a miner's answer must be signed by the miner we asked, for us, fresh."""

    def __init__(self, self_hotkey: str, *, max_age: float = 30.0) -> None:
        self.self_hotkey = self_hotkey
        self.max_age = max_age
        self.nonces = http_auth.InMemoryNonceStore(retention=max(60.0, 2 * (max_age + 2.0)))

    def verify(self, headers: Mapping[str, str], body: bytes, *, path: str, miner_hotkey: str) -> str | None:
        """None when valid, else why not."""
        try:
            caller = http_auth.verify(
                headers, body, method="RESPONSE", path=path, self_hotkey_ss58=self.self_hotkey,
                max_age=self.max_age, nonce_store=self.nonces,
            )
        except http_auth.AuthError as e:
            return f"answer signature rejected: {e}"
        if caller.hotkey_ss58 != miner_hotkey:
            return f"answer signed by {caller.hotkey_ss58}, not by the miner asked ({miner_hotkey})"
        return None
