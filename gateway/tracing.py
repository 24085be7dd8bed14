"""Optional OpenTelemetry tracing: a span per GraphQL request and one per source round trip.

Off unless ``observability.tracing.enabled``; then spans go to an OTLP/HTTP collector or the
console. A round-trip span is made from what the source guard reports when the round trip ends
(its duration), parented to the request span through the context the request's tasks inherit,
with the source id as ``source.id``. An incoming W3C ``traceparent`` header is continued.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway.observability import TracingSettings

_INSTRUMENTATION = "complaint_graph"


class Tracing:
    """Makes spans when it has a tracer; every method is a cheap no-op when it has none."""

    def __init__(
        self, provider: trace.TracerProvider | None, *, owns_provider: bool = False
    ) -> None:
        self.provider = provider
        self.tracer = None if provider is None else provider.get_tracer(_INSTRUMENTATION)
        self._owns_provider = owns_provider

    @classmethod
    def from_settings(
        cls, settings: TracingSettings, provider: trace.TracerProvider | None = None
    ) -> Tracing:
        """``provider`` (tests pass one with an in-memory exporter) wins over the settings."""
        if provider is not None:
            return cls(provider)
        if not settings.enabled:
            return cls(None)
        sdk_provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        sdk_provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
        return cls(sdk_provider, owns_provider=True)

    @contextlib.contextmanager
    def request_span(self, headers: Mapping[str, str], request_id: str | None) -> Iterator[Span]:
        """The span of one GraphQL request, current while the request is answered."""
        if self.tracer is None:
            yield trace.INVALID_SPAN
            return
        with self.tracer.start_as_current_span(
            "graphql",
            context=propagate.extract(dict(headers)),
            kind=SpanKind.SERVER,
            attributes={"complaint_graph.request_id": request_id or ""},
        ) as span:
            yield span

    def observe_round_trip(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None:
        """A finished round trip as a span under whatever span is current (the request's)."""
        if self.tracer is None:
            return
        end = time.time_ns()
        span = self.tracer.start_span(
            f"source {operation}",
            kind=SpanKind.CLIENT,
            start_time=end - int(seconds * 1e9),
            attributes={
                "source.id": source,
                "source.operation": operation,
                "source.batch_size": batch_size,
            },
        )
        if not ok:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    def shutdown(self) -> None:
        """Flush spans still queued; only for a provider this object made."""
        if self._owns_provider and isinstance(self.provider, TracerProvider):
            self.provider.shutdown()


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Without an endpoint the exporter reads the standard OTEL_EXPORTER_OTLP_* variables.
    return OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint else OTLPSpanExporter()
