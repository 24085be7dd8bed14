"""Settings for what the gateway tells its operators: logs, traces.

Read from the ``observability:`` key of the configuration file; every field has a default, so a
file without the key logs JSON at INFO and traces nothing. Environment variables work through the
usual ``${VAR:-default}`` expansion, e.g. ``enabled: ${COMPLAINT_GRAPH_TRACING:-false}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sources import Strict


class TracingSettings(Strict):
    """OpenTelemetry tracing: a span per GraphQL request and one per source round trip."""

    enabled: bool = False
    exporter: Literal["otlp", "console"] = Field(
        default="otlp",
        description="otlp: OTLP over HTTP to `endpoint`; console: spans printed to stdout.",
    )
    endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL; unset = OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318/v1/traces.",
    )
    service_name: str = Field(default="complaint-graph", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class ObservabilitySettings(Strict):
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line; text: for a terminal."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tracing: TracingSettings = Field(default_factory=TracingSettings)
