"""Prometheus metrics, one registry per app so that two gateways in one process never mix.

GraphQL requests are counted by operation type, operation name and HTTP status, timed by
operation name, and their errors counted by ``extensions.code``; every source round trip is
counted and timed by source and operation; circuit states, open subscriptions and how many
resolutions subscribers shared (resolvers/subscription_groups.py) are read at scrape time.
Operation names come from clients, so only the first ``MAX_OPERATION_NAMES`` distinct
well-formed names get a label of their own; later ones are counted as ``other``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from typing import NamedTuple, Protocol, runtime_checkable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from sources import Source

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
_CIRCUIT_STATES = ("CLOSED", "OPEN", "HALF_OPEN")
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
MAX_OPERATION_NAMES = 200


class Subscribers(Protocol):
    @property
    def subscriber_count(self) -> int: ...


@runtime_checkable
class SubscriptionSharing(Protocol):
    """What resolvers/subscription_groups.py counts: resolutions shared by groups of
    subscribers, and those of subscribers that run alone."""

    resolutions: int
    alone_resolutions: int
    deliveries: int
    cut_off: int

    @property
    def group_count(self) -> int: ...


TOGETHER = "together:"
"""How the round trips of statements asked of several sources at once are named: their source
label is ``together:<database>`` (sources._guard.Guarded.search_together), one round trip per
statement, so the sum over sources is what was sent; the batch size is the sources in it."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process's CPU, memory and garbage collections (python_gc_*), next to ours.
        GCCollector(registry=self.registry)
        ProcessCollector(registry=self.registry)
        self.source_requests = Counter(
            "complaint_graph_source_requests",
            "Round trips to a source, by operation.",
            ["source", "operation"],
            registry=self.registry,
        )
        self.source_http_requests = Counter(
            "complaint_graph_source_http_requests",
            "HTTP requests sent to an API source: one round trip may be several (pages, chunks).",
            ["source"],
            registry=self.registry,
        )
        self.source_errors = Counter(
            "complaint_graph_source_errors",
            "Round trips to a source that failed, by operation.",
            ["source", "operation"],
            registry=self.registry,
        )
        self.source_latency = Histogram(
            "complaint_graph_source_request_duration_seconds",
            "Time for one round trip to a source.",
            ["source", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.source_batch_size = Histogram(
            "complaint_graph_source_batch_size",
            "Keys per batched round trip (loads by id); for a statement asked of several "
            'sources on one database (source="together:<database>"), the sources in it.',
            ["source", "operation"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.federation_sources = Counter(
            "complaint_graph_federation_sources",
            "Sources asked and skipped (a filter or their declared coverage rules them out) "
            "by federated operation (page, count, stats).",
            ["operation", "decision"],
            registry=self.registry,
        )
        self.requests = Counter(
            "complaint_graph_graphql_requests",
            "GraphQL requests over HTTP, by operation type and name and HTTP status.",
            ["operation_type", "operation", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "complaint_graph_graphql_errors",
            "GraphQL errors in responses, by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "complaint_graph_graphql_request_duration_seconds",
            "Time to answer a GraphQL request over HTTP, by operation name.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._operation_names: set[str] = set()
        self._names_lock = threading.Lock()
        self._round_trip_series: dict[tuple[str, str], _RoundTripSeries] = {}
        self._request_series: dict[tuple[str | None, str, int], _RequestSeries] = {}

    def watch(self, sources: Iterable[Source], subscribers: Subscribers | None) -> None:
        """Report each source's circuit state and the open subscriptions at every scrape."""
        self.registry.register(_LiveState(list(sources), subscribers))

    def observe_request(
        self,
        operation_type: str | None,
        operation_name: str | None,
        status: int,
        seconds: float,
        error_codes: Iterable[str],
    ) -> None:
        name = self._operation_label(operation_name)
        key = (operation_type, name, status)
        series = self._request_series.get(key)
        if series is None:  # bounded: a few types and statuses, MAX_OPERATION_NAMES names
            series = self._request_series[key] = _RequestSeries(
                self.requests.labels(operation_type or "none", name, str(status)),
                self.latency.labels(name),
            )
        series.requests.inc()
        series.latency.observe(seconds)
        for code in error_codes:
            self.errors.labels(code).inc()

    def _operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.fullmatch(name):
            return "invalid"
        with self._names_lock:
            if name in self._operation_names:
                return name
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return "other"
            self._operation_names.add(name)
            return name

    def observe_round_trip(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None:
        series = self._round_trip_series.get((source, operation))
        if series is None:  # sources and operations are few: each pair's series looked up once
            is_load = operation.startswith("load_") or source.startswith(TOGETHER)
            series = self._round_trip_series[(source, operation)] = _RoundTripSeries(
                self.source_requests.labels(source, operation),
                self.source_latency.labels(source, operation),
                self.source_batch_size.labels(source, operation) if is_load else None,
            )
        series.requests.inc()
        series.latency.observe(seconds)
        if series.batch_size is not None:
            series.batch_size.observe(batch_size)
        if not ok:  # rare: looked up when it happens, so no series exists before an error
            self.source_errors.labels(source, operation).inc()

    def observe_plan(self, operation: str, asked: int, skipped: int) -> None:
        """One federated operation: how many sources it asked and how many it left out."""
        self.federation_sources.labels(operation, "asked").inc(asked)
        if skipped:
            self.federation_sources.labels(operation, "skipped").inc(skipped)

    def federation_sources_total(self, operation: str, decision: str) -> float:
        """Sources asked or skipped so far by ``operation``: what tests compare."""
        return sum(
            sample.value
            for metric in self.federation_sources.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
            and sample.labels == {"operation": operation, "decision": decision}
        )

    def observe_http_request(self, source: str) -> None:
        self.source_http_requests.labels(source).inc()

    def http_requests(self, source: str) -> float:
        """HTTP requests sent so far to an API source (0 for database sources)."""
        return sum(
            sample.value
            for metric in self.source_http_requests.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels["source"] == source
        )

    def round_trips(self, source: str, operation: str | None = None) -> float:
        """Round trips so far to ``source`` (for one operation, or all): what tests compare."""
        total = 0.0
        for metric in self.source_requests.collect():
            for sample in metric.samples:
                if not sample.name.endswith("_total"):
                    continue
                if sample.labels["source"] != source:
                    continue
                if operation is None or sample.labels["operation"] == operation:
                    total += sample.value
        return total

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _RoundTripSeries(NamedTuple):
    """One (source, operation) pair's series: prometheus_client's ``labels()`` checks the
    values and takes a lock on every call, and a page makes a round trip per source."""

    requests: Counter
    latency: Histogram
    batch_size: Histogram | None
    """Only for loads by id (``load_*``), as before the series were kept."""


class _RequestSeries(NamedTuple):
    """One (operation type, operation label, status) triple's series, looked up once."""

    requests: Counter
    latency: Histogram


class _LiveState(Collector):
    """Gauges read from the running gateway when Prometheus scrapes, never stale."""

    def __init__(self, sources: list[Source], subscribers: Subscribers | None) -> None:
        self.sources = sources
        self.subscribers = subscribers

    def collect(self) -> Iterator[Metric]:
        circuit = GaugeMetricFamily(
            "complaint_graph_source_circuit_state",
            "1 for the state each source's circuit breaker is in (CLOSED, OPEN, HALF_OPEN).",
            labels=["source", "state"],
        )
        for source in self.sources:
            health = source.health()
            current = None if health is None else health.circuit
            for state in _CIRCUIT_STATES:
                circuit.add_metric([source.id, state], 1.0 if state == current else 0.0)
        yield circuit
        yield GaugeMetricFamily(
            "complaint_graph_active_subscriptions",
            "GraphQL subscriptions open on this gateway process.",
            value=0 if self.subscribers is None else self.subscribers.subscriber_count,
        )
        sharing = getattr(self.subscribers, "subscription_groups", None)
        if isinstance(sharing, SubscriptionSharing):
            yield from _sharing_metrics(sharing)


def _sharing_metrics(sharing: SubscriptionSharing) -> Iterator[Metric]:
    resolutions = CounterMetricFamily(
        "complaint_graph_subscription_resolutions",
        "Subscription results resolved: once per event per group of subscribers sharing "
        "document, variables and access (sharing=group), once per event per subscriber that "
        "runs alone, such as a resume with after (sharing=alone).",
        labels=["sharing"],
    )
    resolutions.add_metric(["group"], sharing.resolutions)
    resolutions.add_metric(["alone"], sharing.alone_resolutions)
    yield resolutions
    yield CounterMetricFamily(
        "complaint_graph_subscription_deliveries",
        "Results of shared resolutions handed to a group's subscribers.",
        value=sharing.deliveries,
    )
    yield CounterMetricFamily(
        "complaint_graph_subscription_cut_off",
        "Subscribers of a group cut off for falling too far behind (SUBSCRIBER_TOO_SLOW).",
        value=sharing.cut_off,
    )
    yield GaugeMetricFamily(
        "complaint_graph_subscription_groups",
        "Groups of subscribers sharing one resolution per event, on this gateway process.",
        value=sharing.group_count,
    )
