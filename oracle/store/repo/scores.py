"""Miner scores of the subnet validator (``miner_scores``), kept across restarts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from oracle.store.models import MinerScore


def miner_scores(s: Session) -> list[MinerScore]:
    """Every miner's score row, best first."""
    return list(s.execute(select(MinerScore).order_by(MinerScore.score.desc(), MinerScore.hotkey)).scalars().all())


def miner_score(s: Session, hotkey: str) -> MinerScore:
    """The score row of ``hotkey``, added to the session if the miner has none yet."""
    row = s.get(MinerScore, hotkey)
    if row is None:
        row = MinerScore(hotkey=hotkey)
        s.add(row)
    return row
