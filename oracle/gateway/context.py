"""``GatewayContext``: everything a request handler (API or portal page) may use."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from oracle.chain.compiler import compile_project
from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.dispatch.dispatcher import OnChainModel
from oracle.dispatch.offchain import RegistryLookup, circuit_for_model
from oracle.gateway.chains import ChainView
from oracle.gateway.config import GatewaySettings
from oracle.gateway.keys import Bucket
from oracle.gateway.metrics import GatewayMetrics
from oracle.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    settings: GatewaySettings
    db: Database
    catalog: CircuitCatalog
    chains: list[ChainView] = field(default_factory=list)
    metrics: GatewayMetrics | None = None
    owns_db: bool = False          # built by ``open``: closed by ``close``

    @classmethod
    def open(cls, settings: GatewaySettings, db: Database | None = None) -> GatewayContext:
        """Opens the database (migrating it, as every process of the oracle does), scans the
        circuits and prepares read-only views of the chains (connected lazily)."""
        owns = db is None
        db = db or Database(settings.database_url)
        catalog = CircuitCatalog.scan(settings.models_dir)
        chains: list[ChainView] = []
        if settings.chains:
            artifacts = compile_project()
            chains = [ChainView(c, artifacts, settings.chain_timeout) for c in settings.chains]
        return cls(settings=settings, db=db, catalog=catalog, chains=chains, metrics=GatewayMetrics(db),
                   owns_db=owns)

    @property
    def bucket(self) -> Bucket:
        return Bucket(rate=self.settings.rate_per_second, burst=self.settings.burst)

    def registry_lookups(self) -> list[RegistryLookup]:
        def lookup(view: ChainView) -> RegistryLookup:
            def one(model_id: str) -> OnChainModel | None:
                m = view.model(model_id)
                return None if m is None else OnChainModel(circuit_id=m.circuit_id, input_size=m.input_size,
                                                           output_size=m.output_size, input_bits=m.input_bits,
                                                           verify_gas=m.verify_gas)
            return one
        return [lookup(v) for v in self.chains]

    def circuit(self, model_id: str) -> Circuit | None:
        """The circuit ``model_id`` is proven with (as the dispatcher resolves it)."""
        return circuit_for_model(self.catalog, model_id, self.registry_lookups())

    def close(self) -> None:
        if self.owns_db:
            self.db.dispose()
