"""``oracle miner``: the HTTP app (``app``: handlers, state, the ``ProofHook`` seam) and its
command line (``cli``), kept apart as ``oracle.service`` and ``oracle.audit`` are."""

from oracle.subnet.miner.cli import add_miner_command

__all__ = ["add_miner_command"]
