"""EIP-1559 fees: a cap that survives a few full blocks, and the bump rule for replacements."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

GWEI = 10**9
# A replacement must raise both fees by at least 10% (geth's default price bump); use more.
BUMP_PERCENT = 25


@dataclass(frozen=True)
class Fees:
    max_fee: int
    priority_fee: int

    def bumped(self, floor: Fees | None = None) -> Fees:
        prio = self.priority_fee * (100 + BUMP_PERCENT) // 100 + 1
        cap = self.max_fee * (100 + BUMP_PERCENT) // 100 + 1
        if floor is not None:
            prio = max(prio, floor.priority_fee)
            cap = max(cap, floor.max_fee)
        return Fees(max_fee=max(cap, prio), priority_fee=prio)


def current_fees(w3: Web3, *, min_priority: int = 1 * GWEI // 10) -> Fees:
    """max fee = 2 x base fee + tip: stays valid through ~6 consecutive full blocks."""
    block = w3.eth.get_block("latest")
    base = int(block.get("baseFeePerGas", 0) or 0)
    try:
        prio = int(w3.eth.max_priority_fee)
    except Exception:
        prio = min_priority
    prio = max(prio, min_priority)
    return Fees(max_fee=2 * base + prio, priority_fee=prio)
