"""Miner scores, in the spirit of Subnet 2's reward: verified work counts, speed and proof size
refine it, invalid work is punished hard.

Per answer, a reward ``r`` in [0, 1]:

* verified proof (valid for the request's own input):
  ``r = 0.5 + 0.4 * speed + 0.1 * compact`` with
  ``speed = m_t / (m_t + latency)`` and ``compact = m_s / (m_s + proof_bytes)``, where ``m_t``
  and ``m_s`` are the medians of the latencies and proof sizes of the last verified answers
  for the same circuit (from every miner). A miner at the median latency gets speed 0.5, an
  instant one 1.0, one 3x slower 0.25. Normalizing per circuit keeps a slow circuit from
  penalizing whoever happens to serve it.
* timeout, connection refused/reset, HTTP error, malformed answer: ``r = 0``.
* busy (503, at capacity): ``r = 0`` at a quarter of the usual rate (honest, just full).
* invalid: proof that does not verify, wrong output, proof for another input, answer not
  signed by the miner asked: the score is **reset to 0** (slash) and ``invalid`` counted.

The score is an EMA: ``score <- (1 - alpha) * score + alpha * r`` (alpha 0.1). A miner never
seen starts at ``PRIOR`` = 0.5, so newcomers get tried. An answer that arrives after another
miner already won is not counted either way (the request was cancelled).

Weights are the scores normalized to sum 1 over the current miners (zero scores get zero
weight); in network mode they are set on chain periodically.

Scores live in memory (every dispatch updates them) and are written to the ``miner_scores``
table by ``flush()`` (periodically and at close), so restarts keep them.
"""

from __future__ import annotations

import copy
import logging
import statistics
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from oracle.store import repo
from oracle.store.db import Database

log = logging.getLogger(__name__)

PRIOR = 0.5
ALPHA = 0.1
BUSY_ALPHA = ALPHA / 4
W_OK, W_SPEED, W_SIZE = 0.5, 0.4, 0.1
WINDOW = 100                       # verified answers per circuit kept for the medians


class Outcome(StrEnum):
    VERIFIED = "verified"
    INVALID = "invalid"            # any answer that is wrong or not the miner's: slashed
    TIMEOUT = "timeout"
    ERROR = "error"                # unreachable, HTTP error, malformed body
    BUSY = "busy"


@dataclass
class MinerStats:
    hotkey: str
    score: float = PRIOR
    successes: int = 0
    failures: int = 0
    invalid: int = 0
    latency_ema: float = 0.0
    proof_size_ema: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False


class Scoreboard:
    def __init__(self, db: Database | None = None, *, alpha: float = ALPHA) -> None:
        self.db = db
        self.alpha = alpha
        self._lock = threading.Lock()
        self._stats: dict[str, MinerStats] = {}
        self._latencies: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW))
        self._sizes: dict[str, deque[int]] = defaultdict(lambda: deque(maxlen=WINDOW))
        if db is not None:
            with db.session() as s:
                for row in repo.miner_scores(s):
                    self._stats[row.hotkey] = MinerStats(
                        hotkey=row.hotkey, score=row.score, successes=row.successes, failures=row.failures,
                        invalid=row.invalid, latency_ema=row.latency_ema, proof_size_ema=row.proof_size_ema,
                        extra=dict(row.extra or {}),
                    )
            if self._stats:
                log.info("loaded scores of %d miner(s)", len(self._stats))

    # ------------------------------------------------------------------ updates

    def _get(self, hotkey: str) -> MinerStats:
        st = self._stats.get(hotkey)
        if st is None:
            st = self._stats[hotkey] = MinerStats(hotkey=hotkey)
        return st

    def record(self, hotkey: str, outcome: Outcome, *, circuit_id: str = "", latency: float = 0.0,
               proof_bytes: int = 0, reason: str = "") -> float:
        """Applies one answer's reward; returns the new score."""
        with self._lock:
            st = self._get(hotkey)
            counts = st.extra.setdefault("counts", {})
            counts[outcome.value] = int(counts.get(outcome.value, 0)) + 1
            if outcome == Outcome.VERIFIED:
                lat, size = self._latencies[circuit_id], self._sizes[circuit_id]
                lat.append(latency)
                size.append(proof_bytes)
                m_t = max(statistics.median(lat), 1e-3)
                m_s = max(statistics.median(size), 1)
                r = W_OK + W_SPEED * m_t / (m_t + latency) + W_SIZE * m_s / (m_s + proof_bytes)
                st.score = (1 - self.alpha) * st.score + self.alpha * r
                st.successes += 1
                a = 0.2 if st.successes > 1 else 1.0        # first sample initializes the EMAs
                st.latency_ema = (1 - a) * st.latency_ema + a * latency
                st.proof_size_ema = (1 - a) * st.proof_size_ema + a * proof_bytes
            elif outcome == Outcome.INVALID:
                st.score = 0.0
                st.invalid += 1
                st.failures += 1
                st.extra["last_invalid"] = {"at": time.time(), "reason": reason[:300]}
            elif outcome == Outcome.BUSY:
                st.score = (1 - BUSY_ALPHA) * st.score
            else:
                st.score = (1 - self.alpha) * st.score
                st.failures += 1
            if reason:
                st.extra["last_reason"] = reason[:300]
            st.dirty = True
            return st.score

    # ------------------------------------------------------------------ reads

    def score(self, hotkey: str) -> float:
        with self._lock:
            st = self._stats.get(hotkey)
            return PRIOR if st is None else st.score

    def snapshot(self) -> dict[str, MinerStats]:
        with self._lock:
            return {h: MinerStats(**{**vars(s), "extra": copy.deepcopy(s.extra)}) for h, s in self._stats.items()}

    def weights(self, hotkeys: list[str]) -> dict[str, float]:
        """Scores of ``hotkeys`` normalized to sum 1 (empty when every score is 0)."""
        scores = {h: max(0.0, self.score(h)) for h in hotkeys}
        total = sum(scores.values())
        if total <= 0:
            return {}
        return {h: s / total for h, s in scores.items()}

    # ------------------------------------------------------------------ persistence

    def flush(self) -> int:
        if self.db is None:
            return 0
        with self._lock:
            dirty = [MinerStats(**{**vars(m), "extra": copy.deepcopy(m.extra)})
                     for m in self._stats.values() if m.dirty]
            for m in self._stats.values():
                m.dirty = False
        if not dirty:
            return 0
        try:
            with self.db.session() as s:
                for st in dirty:
                    row = repo.miner_score(s, st.hotkey)
                    row.score, row.successes = st.score, st.successes
                    row.failures, row.invalid = st.failures, st.invalid
                    row.latency_ema, row.proof_size_ema, row.extra = st.latency_ema, st.proof_size_ema, st.extra
        except Exception:
            with self._lock:           # try again at the next flush
                for st in dirty:
                    if st.hotkey in self._stats:
                        self._stats[st.hotkey].dirty = True
            raise
        return len(dirty)
