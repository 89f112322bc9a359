"""A fake of the two bittensor 11 Subtensor calls the subnet code uses in network mode:
``subnets.metagraph(netuid)`` and ``execute(intent, wallet)``. Neurons are real
``bittensor.MetagraphNeuron`` records, so attribute names stay honest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bittensor as bt


def neuron(uid: int, hotkey: str, *, stake: float = 0.0, axon: str | None = None,
           validator_permit: bool = False) -> bt.MetagraphNeuron:
    zero = bt.tao(0)
    return bt.MetagraphNeuron(
        uid=uid, hotkey=hotkey, coldkey=hotkey, active=True, validator_permit=validator_permit,
        last_update=0, block_at_registration=0, rank=0.0, trust=0.0, consensus=0.0, incentive=0.0,
        dividends=0.0, pruning_score=0.0, emission=zero, alpha_stake=bt.tao(stake), tao_stake=zero,
        total_stake=bt.tao(stake), axon=axon, identity=None, commitment=None,
    )


@dataclass
class _FakeMetagraph:
    netuid: int
    neurons: list[bt.MetagraphNeuron]


class _FakeSubnets:
    def __init__(self, owner: FakeSubtensor) -> None:
        self.owner = owner

    def metagraph(self, netuid: int, block: int | None = None, *, commitments: bool = True) -> _FakeMetagraph | None:
        self.owner.metagraph_calls += 1
        if netuid not in self.owner.subnets_neurons:
            return None
        return _FakeMetagraph(netuid, list(self.owner.subnets_neurons[netuid]))


@dataclass
class FakeSubtensor:
    subnets_neurons: dict[int, list[bt.MetagraphNeuron]] = field(default_factory=dict)
    executed: list[tuple[Any, Any]] = field(default_factory=list)
    metagraph_calls: int = 0

    def __post_init__(self) -> None:
        self.subnets = _FakeSubnets(self)

    def execute(self, intent: Any, wallet: Any) -> None:
        self.executed.append((intent, wallet))
