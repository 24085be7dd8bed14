"""Prometheus metrics, one registry per app so that two gateways in one process never mix."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.source_requests = Counter(
            "complaint_graph_source_requests",
            "Round trips to a source, by operation.",
            ["source", "operation"],
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
            "Keys per batched round trip (loads by id).",
            ["source", "operation"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_round_trip(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None:
        self.source_requests.labels(source, operation).inc()
        self.source_latency.labels(source, operation).observe(seconds)
        if operation.startswith("load_"):
            self.source_batch_size.labels(source, operation).observe(batch_size)
        if not ok:
            self.source_errors.labels(source, operation).inc()

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
