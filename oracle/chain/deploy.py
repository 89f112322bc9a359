"""Deploy the protocol: registry, oracle, the demo LRT token and the LRTVault."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from oracle.chain.client import Chain

DEFAULT_GAS_PRICE_WEI = 1_000_000_000  # priced into fee quotes: 1 gwei per gas


@dataclass(frozen=True)
class Deployment:
    registry: str
    oracle: str
    token: str
    vault: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def deploy_all(
    chain: Chain, *, gas_price_wei: int = DEFAULT_GAS_PRICE_WEI, risk_model_id: bytes = bytes(32)
) -> Deployment:
    """Deploys everything with ``chain.account`` as owner. The vault's risk model can be set
    later with ``setRiskModel`` once the model is registered."""
    assert chain.account is not None
    owner = chain.account.address
    registry = chain.deploy("ModelRegistry", owner)
    oracle = chain.deploy("InferenceOracle", registry, owner, gas_price_wei)
    token = chain.deploy("LRTToken", "Restaked Ether", "rstETH", owner)
    vault = chain.deploy("LRTVault", token, oracle, risk_model_id, owner)
    return Deployment(registry=registry, oracle=oracle, token=token, vault=vault)


@dataclass(frozen=True)
class CrossChainDeployment:
    inbox: str            # CrossChainInbox: delivers results of requests made on other chains
    proven_results: str   # ProvenResults: public record of verified (model, input) -> output

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def deploy_cross_chain(chain: Chain, registry: str) -> CrossChainDeployment:
    """Deploys the cross-chain contracts in front of ``registry`` (no owner: nothing to configure).
    A source oracle must still be told about this chain with ``setDestination``."""
    inbox = chain.deploy("CrossChainInbox", registry)
    results = chain.deploy("ProvenResults", registry)
    return CrossChainDeployment(inbox=inbox, proven_results=results)
