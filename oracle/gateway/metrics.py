"""Prometheus metrics (``GET /metrics``).

Two kinds, on the gateway's own registry:

* the pipeline's figures are read from the store at each scrape (``StoreCollector``): requests
  by origin and state, submit-to-proven latency, proving time, fulfilment gas, requests given
  up by reason. The store is the pipeline's one meeting point, so every gateway in front of one
  database reports the same figures, whichever process did the work (``oracle run`` instances,
  miners through the validator). Each scrape reads every request row: fine for thousands of
  requests; beyond that, scrape less often or move these to incremental counters.
* the gateway's own HTTP traffic, observed in-process: latency per route template and status,
  and API refusals by code (these are per gateway process, as Prometheus expects).
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from oracle.store import repo
from oracle.store.db import Database

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 70.0, 120.0, 300.0)   # 60 + 10 s: the anchor
PROVE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
GAS_BUCKETS = (100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 750_000, 1_000_000, 2_000_000)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def reason_class(reason: str) -> str:
    """A bounded label for a free-text reason: its head (before the first colon or
    parenthesis), numbers and hex replaced, at most 60 characters."""
    head = re.split(r"[:(]", reason, maxsplit=1)[0].strip().lower()
    head = re.sub(r"0x[0-9a-f]+", "0x…", head)
    head = re.sub(r"\d+", "N", head)
    return head[:60] or "unspecified"


def _histogram(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float],
               series: dict[tuple[str, ...], repo.Histogram]) -> HistogramMetricFamily:
    """One family from histograms the database bucketed (``repo.*_histogram``)."""
    fam = HistogramMetricFamily(name, doc, labels=list(labels))
    for key, h in sorted(series.items()):
        counts = [(_le(b), float(n)) for b, n in zip(buckets, h.cumulative, strict=True)]
        counts.append(("+Inf", float(h.count)))
        fam.add_metric(list(key), buckets=counts, sum_value=h.total)
    return fam


def _le(b: float) -> str:
    return str(int(b)) if float(b).is_integer() and b >= 1000 else repr(float(b))


class StoreCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterable[Metric]:
        return []      # collected on demand: no registration-time DB read

    def collect(self) -> Iterator[Metric]:
        try:
            with self.db.session() as s:
                by_state = repo.count_by_state(s)
                latency = repo.submit_to_proven_histograms(s, LATENCY_BUCKETS)
                proving = repo.prove_seconds_histogram(s, PROVE_BUCKETS)
                gas = repo.fulfil_gas_histogram(s, GAS_BUCKETS)
                given_up = repo.given_up_counts(s)
        except Exception as e:     # a scrape must answer (and say so) even when the DB does not
            log.warning("metrics: the store cannot be read: %s", e)
            up = GaugeMetricFamily("oracle_store_up", "1 when the store answered this scrape")
            up.add_metric([], 0.0)
            yield up
            return
        up = GaugeMetricFamily("oracle_store_up", "1 when the store answered this scrape")
        up.add_metric([], 1.0)
        yield up
        g = GaugeMetricFamily("oracle_requests", "requests by origin (chain|offchain) and state",
                              labels=["origin", "state"])
        for origin, state, n in by_state:
            g.add_metric([origin, state], float(n))
        yield g
        yield _histogram("oracle_request_submit_to_proven_seconds",
                         "from the request's arrival in the store (log read, or off-chain submission) to its "
                         "first proof", ["origin"], LATENCY_BUCKETS, {(o,): h for o, h in latency.items()})
        yield _histogram("oracle_proof_prove_seconds", "proving time of stored proofs (as the prover reported it)",
                         [], PROVE_BUCKETS, {(): proving} if proving else {})
        yield _histogram("oracle_fulfilment_gas", "gas per fulfilled request of this oracle's relayer "
                         "(a batch's gas shared by its requests)", [], GAS_BUCKETS, {(): gas} if gas else {})
        gu: dict[tuple[str, str, str], int] = defaultdict(int)
        for origin, state, reason, n in given_up:
            gu[(origin, state, reason_class(reason))] += n
        r = GaugeMetricFamily("oracle_requests_given_up", "rejected, failed and expired requests by reason",
                              labels=["origin", "state", "reason"])
        for (origin, state, reason), n in sorted(gu.items()):
            r.add_metric([origin, state, reason], float(n))
        yield r


class GatewayMetrics:
    """The registry ``/metrics`` serves, with the gateway's in-process instruments."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(db))
        self.http_seconds = Histogram(
            "oracle_gateway_http_request_duration_seconds", "gateway HTTP latency by route template and status",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        self.refusals = Counter("oracle_gateway_api_refusals", "API answers 4xx/5xx by code",
                                ["code"], registry=self.registry)
        self.submissions = Counter("oracle_gateway_offchain_submissions", "off-chain inferences accepted",
                                   ["model_id"], registry=self.registry)
        self.started = time.time()
