"""What operators see: Prometheus metrics, request ids in logs and errors, OpenTelemetry spans."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.config import EventSettings, GatewayConfig
from gateway.logs import log_handler
from gateway.metrics import MAX_OPERATION_NAMES, Metrics
from gateway.observability import ObservabilitySettings, TracingSettings
from samples.serving import ThreadedServer, free_port
from sources import Resilience
from tests.conftest import DemoData, RunningGateway, running, serving
from tests.gateway.test_subscriptions import transport_ws, wait_for, watched_config
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE, SQLITE_SOURCE

RESPONSE_JSON = "application/graphql-response+json"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly these labels in a Prometheus scrape."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels} in the scrape")


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_requests_errors_and_latency_are_counted_by_operation_and_code(
    gateway: RunningGateway,
) -> None:
    client = gateway.client
    ok = await client.post("/graphql", json={"query": "query Agencies { agencies { code } }"})
    assert ok.status_code == 200
    broken = await client.post(
        "/graphql", json={"query": "query Broken { nope }"}, headers={"accept": RESPONSE_JSON}
    )
    assert broken.status_code == 400
    bad_cursor = await client.post(
        "/graphql", json={"query": 'query Page { cases(after: "garbage") { totalCount } }'}
    )
    assert bad_cursor.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    text = await scrape(client)
    requests = "complaint_graph_graphql_requests_total"
    assert metric(text, requests, operation_type="query", operation="Agencies", status="200") == 1
    assert metric(text, requests, operation_type="query", operation="Broken", status="400") == 1
    assert metric(text, requests, operation_type="query", operation="Page", status="200") == 1
    errors = "complaint_graph_graphql_errors_total"
    assert metric(text, errors, code="GRAPHQL_VALIDATION_FAILED") == 1
    assert metric(text, errors, code="BAD_USER_INPUT") == 1
    latency = "complaint_graph_graphql_request_duration_seconds"
    assert metric(text, f"{latency}_count", operation="Agencies") == 1
    assert metric(text, f"{latency}_sum", operation="Agencies") > 0

    await client.post("/graphql", json={"query": "query Agencies { agencies { code } }"})
    again = await scrape(client)
    assert metric(again, requests, operation_type="query", operation="Agencies", status="200") == 2


def down_rest_config(demo_data: DemoData) -> GatewayConfig:
    """The 1111 source pointed at a loopback port nobody listens on; its circuit opens at once."""
    sources = tuple(
        source.model_copy(
            update={
                "base_url": f"http://127.0.0.1:{free_port()}",
                "resilience": Resilience(retries=0, circuit_failure_threshold=1),
            }
        )
        if source.id == REST_SOURCE
        else source
        for source in demo_data.config.sources
    )
    return replace(demo_data.config, sources=sources, events=EventSettings(enabled=False))


@pytest.fixture
async def down_rest(demo_data: DemoData) -> AsyncIterator[RunningGateway]:
    async with serving(down_rest_config(demo_data)) as started:
        yield started


async def test_circuit_state_per_source_is_a_gauge(down_rest: RunningGateway) -> None:
    state = "complaint_graph_source_circuit_state"
    before = await scrape(down_rest.client)
    assert metric(before, state, source=POSTGRES_SOURCE, state="CLOSED") == 1
    await down_rest.query(f'{{ cases(filter: {{source: ["{REST_SOURCE}"]}}) {{ totalCount }} }}')
    await down_rest.query(f'{{ cases(filter: {{source: ["{REST_SOURCE}"]}}) {{ totalCount }} }}')
    after = await scrape(down_rest.client)
    assert metric(after, state, source=REST_SOURCE, state="OPEN") == 1
    assert metric(after, state, source=REST_SOURCE, state="CLOSED") == 0
    assert metric(after, state, source=POSTGRES_SOURCE, state="CLOSED") == 1


async def test_a_failed_source_error_leaks_no_host_port_or_trace_and_carries_the_request_id(
    down_rest: RunningGateway,
) -> None:
    response = await down_rest.client.post(
        "/graphql",
        json={"query": f'{{ cases(filter: {{source: ["{REST_SOURCE}"]}}) {{ totalCount }} }}'},
        headers={"x-request-id": "leak-check-1"},
    )
    errors = response.json()["errors"]
    assert errors
    for error in errors:
        assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert error["extensions"]["source"] == REST_SOURCE
        assert error["extensions"]["requestId"] == "leak-check-1"
    text = json.dumps(errors)
    for leak in ("127.0.0.1", "localhost", "Traceback", "http://", 'File "'):
        assert leak not in text


@pytest.fixture
def subscribed_server(demo_data: DemoData, agency_dsn: str) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(watched_config(demo_data, agency_dsn)), lifespan=True)
    server.start()
    yield server
    server.stop()


async def test_active_subscriptions_is_a_gauge(subscribed_server: ThreadedServer) -> None:
    gauge = "complaint_graph_active_subscriptions"
    async with httpx.AsyncClient(base_url=subscribed_server.url) as client:
        assert metric(await scrape(client), gauge) == 0
        async with transport_ws(subscribed_server):
            assert metric(await scrape(client), gauge) == 1
        await wait_for(subscribed_server, lambda events: events["subscribers"] == 0)
        assert metric(await scrape(client), gauge) == 0


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The gateway's log lines as ``complaint-graph serve`` writes them, captured."""
    stream = io.StringIO()
    handler = log_handler(stream, "json")
    logger = logging.getLogger("complaint_graph")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_request_id_from_the_header_is_in_the_response_the_errors_and_the_log(
    gateway: RunningGateway, json_log: io.StringIO
) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": 'query Page { cases(after: "garbage") { totalCount } }'},
        headers={"x-request-id": "desk-1567-0042"},
    )
    assert response.headers["x-request-id"] == "desk-1567-0042"
    (error,) = response.json()["errors"]
    assert error["extensions"]["requestId"] == "desk-1567-0042"

    lines = [line for line in log_lines(json_log) if line["request_id"] == "desk-1567-0042"]
    (access,) = [line for line in lines if line["logger"] == "complaint_graph.access"]
    assert access["level"] == "INFO"
    assert access["operation"] == "Page"
    assert access["operation_type"] == "query"
    assert access["status"] == 200
    assert access["duration_ms"] > 0
    assert access["message"] == "POST /graphql 200"
    assert access["time"].endswith("+00:00")
    assert any(line["logger"] == "complaint_graph.errors" for line in lines), (
        "the error's own log line carries the request id too"
    )


@pytest.mark.parametrize("sent", [None, b"", b"has space", b"x" * 200, b"<script>", "ไทย".encode()])
async def test_request_id_is_generated_when_missing_or_not_sane(
    gateway: RunningGateway, sent: bytes | None
) -> None:
    headers = {} if sent is None else {"x-request-id": sent}
    response = await gateway.client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    assert response.json()["errors"][0]["extensions"]["requestId"] == request_id


async def test_every_response_has_its_own_request_id(gateway: RunningGateway) -> None:
    ids = {
        (await gateway.client.get(path)).headers["x-request-id"]
        for path in ("/healthz", "/healthz", "/readyz", "/metrics")
    }
    assert len(ids) == 4


async def test_healthz_and_readyz(gateway: RunningGateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] in ("ready", "degraded")


def round_trip_spans(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


async def test_tracing_gives_a_span_per_request_and_one_per_source_round_trip(
    demo_data: DemoData,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = replace(demo_data.config, events=EventSettings(enabled=False))
    app = create_app(config, tracer_provider=provider)
    gateway = app.state.gateway
    await gateway.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    try:
        exporter.clear()  # opening the sources at start-up is not part of the request
        before = {s: gateway.metrics.round_trips(s) for s in (POSTGRES_SOURCE, SQLITE_SOURCE)}
        response = await client.post(
            "/graphql",
            json={
                "query": f"""query TwoSources {{
                  cases(first: 5, filter: {{source: ["{POSTGRES_SOURCE}", "{SQLITE_SOURCE}"]}}) {{
                    totalCount edges {{ node {{ id timeline {{ at }} }} }}
                  }}
                }}"""
            },
        )
        assert response.status_code == 200
        assert "errors" not in response.json(), response.json()
    finally:
        await client.aclose()
        await gateway.stop()

    spans = exporter.get_finished_spans()
    (request,) = [span for span in spans if span.name == "query TwoSources"]
    assert request.attributes is not None
    assert request.attributes["graphql.operation.name"] == "TwoSources"
    trips = round_trip_spans(spans, request)
    for source in (POSTGRES_SOURCE, SQLITE_SOURCE):
        of_source = [s for s in trips if s.attributes and s.attributes["source.id"] == source]
        expected = gateway.metrics.round_trips(source) - before[source]
        assert len(of_source) == expected
        # the page, the count, the timelines (a PostgreSQL page carries its timelines)
        operations = {"search_cases", "count_cases"}
        if source == SQLITE_SOURCE:
            operations.add("load_timelines")
        assert expected >= len(operations)
        assert {s.attributes["source.operation"] for s in of_source if s.attributes} >= operations
    assert {s.attributes["source.id"] for s in trips if s.attributes} == {
        POSTGRES_SOURCE,
        SQLITE_SOURCE,
    }
    assert len(trips) == len([s for s in spans if s.name.startswith("source ")])


async def test_websocket_errors_carry_the_connections_request_id(
    subscribed_server: ThreadedServer,
) -> None:
    url = subscribed_server.url.replace("http", "ws") + "/graphql"
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"x-request-id": "ws-desk-7"},
    ) as ws:
        assert ws.response is not None
        assert ws.response.headers["x-request-id"] == "ws-desk-7"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {"query": "subscription { caseEvents { nope } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        message = json.loads(await ws.recv())
    assert message["type"] == "error"
    (error,) = message["payload"]
    assert "nope" in error["message"]
    assert error["extensions"]["requestId"] == "ws-desk-7"


def test_operation_names_beyond_the_cap_share_one_label() -> None:
    metrics = Metrics()
    for i in range(MAX_OPERATION_NAMES + 5):
        metrics.observe_request("query", f"Op{i}", 200, 0.01, [])
    metrics.observe_request("query", "not a name!", 200, 0.01, [])
    metrics.observe_request("query", None, 200, 0.01, [])
    text = generate_latest(metrics.registry).decode()
    requests = "complaint_graph_graphql_requests_total"
    assert metric(text, requests, operation_type="query", operation="Op0", status="200") == 1
    assert metric(text, requests, operation_type="query", operation="other", status="200") == 5
    assert metric(text, requests, operation_type="query", operation="invalid", status="200") == 1
    assert metric(text, requests, operation_type="query", operation="anonymous", status="200") == 1


class Collector:
    """An OTLP/HTTP trace collector on loopback: keeps what the gateway exports."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    async def receive(self, request: Request) -> Response:
        self.requests.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[str, dict[str, str]]]:
        return [
            (span.name, {a.key: a.value.string_value for a in span.attributes})
            for export in self.requests
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


async def test_configured_tracing_exports_spans_over_otlp(demo_data: DemoData) -> None:
    collector = Collector()
    server = ThreadedServer(
        Starlette(routes=[Route("/v1/traces", collector.receive, methods=["POST"])])
    )
    server.start()
    try:
        tracing = TracingSettings(enabled=True, endpoint=f"{server.url}/v1/traces")
        config = replace(
            demo_data.config,
            events=EventSettings(enabled=False),
            observability=ObservabilitySettings(tracing=tracing),
        )
        gateway = await running(config)
        try:
            body = await gateway.query(
                f'query One {{ cases(first: 1, filter: {{source: ["{SQLITE_SOURCE}"]}}) '
                "{ totalCount } }"
            )
            assert "errors" not in body
        finally:
            await gateway.client.aclose()
            await gateway.gateway.stop()  # flushes the batch of spans
    finally:
        server.stop()
    spans = collector.spans()
    assert "query One" in [name for name, _ in spans]
    assert ("source search_cases", SQLITE_SOURCE) in [
        (name, attributes.get("source.id")) for name, attributes in spans
    ]


def test_round_trip_series_appear_as_they_are_used() -> None:
    """A source's error series appears with its first error, and batch sizes only for loads
    by id: ``absent()`` alerts and averages see what happened, not zeroes made in advance."""
    metrics = Metrics()
    metrics.observe_round_trip("agency", "search_cases", 0.01, 1, True)
    metrics.observe_round_trip("agency", "search_cases", 0.01, 1, True)
    text = generate_latest(metrics.registry).decode()
    assert (
        'complaint_graph_source_requests_total{operation="search_cases",source="agency"} 2.0'
        in text
    )
    assert "complaint_graph_source_errors_total{" not in text
    assert "complaint_graph_source_batch_size_count{" not in text
    metrics.observe_round_trip("agency", "load_timelines", 0.01, 40, False)
    text = generate_latest(metrics.registry).decode()
    assert (
        'complaint_graph_source_errors_total{operation="load_timelines",source="agency"} 1.0'
        in text
    )
    assert (
        'complaint_graph_source_batch_size_sum{operation="load_timelines",source="agency"} 40.0'
        in text
    )
    assert 'complaint_graph_source_batch_size_count{operation="search_cases"' not in text
