"""An agency down, slow or wrong: partial data, named errors, recovery without restart."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import GatewayConfig
from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer
from sources import Resilience
from sources.rest import RestSettings
from tests.conftest import (
    OPEN311_CASES,
    OPEN311_SEED,
    PG_SEED,
    REST_CASES,
    REST_SEED,
    DemoData,
    RunningGateway,
    running,
    serving,
)
from tests.postgres import create_database, drop_database
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
    matching,
)

WELL_FORMED = {
    "complaint_code": "X-1",
    "topic": "หัวเรื่อง",
    "detail": "รายละเอียด",
    "status_id": 1,
    "channel_name": "สายด่วน 1111",
    "category": {"id": 101},
}


class Misbehaving:
    """Wraps the 1111 sample so a test can make it answer HTML, bad data, 503s, or nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode = "normal"
        self.failures_left = 0
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mode == "html":
            await _send(send, 200, b"<html><body>Service maintenance</body></html>", b"text/html")
        elif self.mode == "no-title":
            await _send(
                send, 200, b'{"result": {"items": [{"complaint_code": "X-1"}], "total": 1}}'
            )
        elif self.mode == "wrong-types":
            body = {"result": {"items": [{**WELL_FORMED, "received_date": 20260101}], "total": 1}}
            await _send(send, 200, json.dumps(body).encode())
        elif self.mode == "hang":
            await asyncio.to_thread(self.release.wait)
            await _send(send, 503, b"{}")
        elif self.failures_left > 0:
            self.failures_left -= 1
            await _send(send, 503, b'{"error": "busy"}')
        else:
            await self.app(scope, receive, send)


async def _send(send: Send, status: int, body: bytes, kind: bytes = b"application/json") -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def agency() -> Iterator[tuple[ThreadedServer, Misbehaving]]:
    app = Misbehaving(pmoc_1111.create_app(seed=REST_SEED, count=REST_CASES, api_key=DEMO_PMOC_KEY))
    server = ThreadedServer(app)
    server.start()
    yield server, app
    app.release.set()
    server.stop()


def config_with(demo_data: DemoData, url: str, **changes: Any) -> GatewayConfig:
    sources = []
    for source in demo_data.config.sources:
        if source.id == REST_SOURCE:
            assert isinstance(source, RestSettings)
            update: dict[str, Any] = {
                "base_url": url,
                "timeout_seconds": 1.0,
                "resilience": Resilience(
                    retries=1,
                    retry_initial_seconds=0.01,
                    retry_max_seconds=0.05,
                    circuit_failure_threshold=3,
                    circuit_recovery_seconds=3.0,
                ),
            }
            source = source.model_copy(update=update | changes)
        sources.append(source)
    return GatewayConfig(
        demo_data.config.categories,
        tuple(sources),
        demo_data.config.limits,
        auth=demo_data.config.auth,
    )


@pytest.fixture
async def guarded(
    demo_data: DemoData, agency: tuple[ThreadedServer, Misbehaving]
) -> AsyncIterator[RunningGateway]:
    gateway = await running(config_with(demo_data, agency[0].url))
    yield gateway
    await gateway.client.aclose()
    await gateway.gateway.stop()


QUERY = """
{
  cases(first: 60, orderBy: {field: RECEIVED_AT, direction: ASC}) {
    totalCount
    edges { node { source { id } timeline { status } } }
  }
}
"""


# Health is read in its own request: root fields resolve concurrently within one.
HEALTH = """{ sources { id health {
  status circuit lastError lastErrorAt lastSuccessAt lastLatencyMs } } }"""


def sources_in(body: dict[str, Any]) -> set[str]:
    return {edge["node"]["source"]["id"] for edge in body["data"]["cases"]["edges"]}


def health_of(body: dict[str, Any], source: str) -> dict[str, Any]:
    (found,) = [s["health"] for s in body["data"]["sources"] if s["id"] == source]
    return dict(found)


def error_codes(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["extensions"]["code"], e["extensions"]["source"]) for e in body.get("errors", [])}


async def test_agency_stopped_and_restarted_mid_run(
    guarded: RunningGateway, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    server, _ = agency
    healthy = await guarded.query(QUERY)
    assert "errors" not in healthy
    assert sources_in(healthy) == set(ALL_SOURCES)
    up = health_of(await guarded.query(HEALTH), REST_SOURCE)
    assert (up["status"], up["circuit"], up["lastError"]) == ("UP", "CLOSED", None)
    assert up["lastLatencyMs"] > 0 and up["lastSuccessAt"] is not None

    server.stop()
    down = await guarded.query(QUERY)
    assert sources_in(down) == set(ALL_SOURCES) - {REST_SOURCE}
    assert error_codes(down) == {("SOURCE_UNAVAILABLE", REST_SOURCE)}
    assert len(down["errors"]) == 1  # one error for the failed source, not one per field
    seen = health_of(await guarded.query(HEALTH), REST_SOURCE)
    assert seen["status"] == "DOWN"
    assert seen["lastError"] == "HTTP request failed (ConnectError)"
    assert seen["lastLatencyMs"] >= 0
    assert datetime.fromisoformat(seen["lastErrorAt"]) > datetime.fromisoformat(
        seen["lastSuccessAt"]
    )
    ready = await guarded.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    readiness = ready.json()["sources"]
    assert {s for s, h in readiness.items() if h["status"] == "DOWN"} == {REST_SOURCE}
    assert readiness[REST_SOURCE] == {
        "status": "DOWN",
        "circuit": "CLOSED",
        "last_error": "HTTP request failed (ConnectError)",
        "last_error_at": seen["lastErrorAt"],
        "last_success_at": seen["lastSuccessAt"],
        "last_latency_ms": seen["lastLatencyMs"],
    }

    # Failures in a row open the circuit: then calls are refused without touching the agency.
    for _ in range(3):
        await guarded.query(QUERY)
    assert health_of(await guarded.query(HEALTH), REST_SOURCE)["circuit"] == "OPEN"
    before = guarded.round_trips(REST_SOURCE)
    refused = await guarded.query(QUERY)
    assert guarded.round_trips(REST_SOURCE) == before
    assert any("circuit open" in e["message"] for e in refused["errors"])

    server.start()
    async with asyncio.timeout(15):
        while True:  # the circuit lets a trial through after its recovery time
            recovered = await guarded.query(QUERY)
            if "errors" not in recovered:
                break
            await asyncio.sleep(0.05)
    assert sources_in(recovered) == set(ALL_SOURCES)
    back = health_of(await guarded.query(HEALTH), REST_SOURCE)
    assert (back["status"], back["circuit"]) == ("UP", "CLOSED")
    assert back["lastError"] == "HTTP request failed (ConnectError)"  # the last one, kept
    assert datetime.fromisoformat(back["lastSuccessAt"]) > datetime.fromisoformat(
        back["lastErrorAt"]
    )
    assert (await guarded.client.get("/readyz")).json()["status"] == "ready"


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("html", "text/html, not JSON"),
        # the page is read for no case field: the first field it must have is the time
        ("no-title", "fields.received_at: missing at 'received_date'"),
        ("wrong-types", "fields.received_at: expected ISO 8601 text at 'received_date', got int"),
    ],
)
async def test_garbage_is_a_bad_response_naming_the_problem(
    guarded: RunningGateway, agency: tuple[ThreadedServer, Misbehaving], mode: str, says: str
) -> None:
    agency[1].mode = mode
    body = await guarded.query(QUERY)
    assert sources_in(body) == set(ALL_SOURCES) - {REST_SOURCE}
    errors = [e for e in body["errors"] if e["extensions"]["source"] == REST_SOURCE]
    assert {e["extensions"]["code"] for e in errors} == {"SOURCE_BAD_RESPONSE"}
    assert any(says in e["message"] for e in errors), errors
    assert (await guarded.client.get("/healthz")).status_code == 200


async def test_a_failed_read_is_retried(
    guarded: RunningGateway, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    await guarded.query("{ sources { id } }")
    agency[1].failures_left = 1
    before = guarded.round_trips(REST_SOURCE, "search_cases")
    body = await guarded.query(
        '{ cases(first: 5, filter: {source: ["pmoc-1111"]}) { edges { cursor } } }'
    )
    assert "errors" not in body
    assert len(body["data"]["cases"]["edges"]) == 5
    assert guarded.round_trips(REST_SOURCE, "search_cases") == before + 2


async def test_retries_make_every_attempt_with_the_backoff_between_them(
    demo_data: DemoData, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    """The first attempt is made outside tenacity, which takes over after a failure: the
    attempts are still retries + 1, the first retry also waits its backoff, and when every
    attempt fails the client is told the source is unavailable."""
    resilience = Resilience(
        retries=2,
        retry_initial_seconds=0.2,
        retry_max_seconds=5.0,
        circuit_failure_threshold=10,
    )
    async with serving(config_with(demo_data, agency[0].url, resilience=resilience)) as gateway:
        await gateway.query("{ sources { id } }")
        query = '{ cases(first: 5, filter: {source: ["pmoc-1111"]}) { edges { cursor } } }'
        agency[1].failures_left = 2  # the third attempt answers
        before = gateway.round_trips(REST_SOURCE, "search_cases")
        started = time.monotonic()
        body = await gateway.query(query)
        waited = time.monotonic() - started
        assert "errors" not in body, body
        assert gateway.round_trips(REST_SOURCE, "search_cases") == before + 3
        assert waited >= 0.2 + 0.4  # backoff before the second attempt, then doubled

        agency[1].failures_left = 10  # more than the attempts: the client is told
        before = gateway.round_trips(REST_SOURCE, "search_cases")
        body = await gateway.query(query)
        assert gateway.round_trips(REST_SOURCE, "search_cases") == before + 3
        assert body["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert REST_SOURCE in body["errors"][0]["message"]
        agency[1].failures_left = 0


async def test_a_hanging_agency_times_out_and_the_rest_arrives(
    guarded: RunningGateway, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    agency[1].mode = "hang"
    body = await guarded.query(QUERY)
    assert sources_in(body) == set(ALL_SOURCES) - {REST_SOURCE}
    assert ("SOURCE_TIMEOUT", REST_SOURCE) in error_codes(body)


async def test_wrong_api_key_is_named_not_hidden(
    demo_data: DemoData, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(rest, RestSettings) and rest.auth is not None
    wrong = rest.auth.model_copy(update={"value": "not-the-key"})
    gateway = await running(config_with(demo_data, agency[0].url, auth=wrong))
    try:
        body = await gateway.query(QUERY)
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    errors = [e for e in body["errors"] if e["extensions"]["source"] == REST_SOURCE]
    assert errors and all("HTTP 401" in e["message"] and "auth" in e["message"] for e in errors)


async def test_filters_the_api_lacks_are_applied_in_the_gateway(
    demo_data: DemoData, agency: tuple[ThreadedServer, Misbehaving]
) -> None:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(rest, RestSettings)
    bare = rest.list.model_copy(update={"filters": type(rest.list.filters)()})
    gateway = await running(config_with(demo_data, agency[0].url, list=bare))
    try:
        body = await gateway.query(
            """{ cases(first: 500, filter: {source: ["pmoc-1111"], text: "ถนน",
                 status: [RESOLVED, CLOSED]}) { totalCount edges { node { title } } }
               sources { id pushedDownFilters } }"""
        )
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    expected = [
        e
        for e in matching(
            lambda c: "ถนน" in c.title + c.description and c.status in ("RESOLVED", "CLOSED")
        )
        if e.source == REST_SOURCE
    ]
    assert expected
    assert body["data"]["cases"]["totalCount"] == len(expected)
    assert len(body["data"]["cases"]["edges"]) == len(expected)
    pushed = {s["id"]: s["pushedDownFilters"] for s in body["data"]["sources"]}
    assert pushed[REST_SOURCE] == []


class Gate:
    """An agency API that holds every request until released, counting how many wait at once."""

    def __init__(self) -> None:
        self.waiting = 0
        self.most = 0
        self.release = threading.Event()
        self.two_waiting = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        if self.waiting >= 2:
            self.two_waiting.set()
        await asyncio.to_thread(self.release.wait)
        self.waiting -= 1
        await _send(send, 200, b'{"result": {"items": []}}')


async def test_round_trips_in_flight_are_bounded_per_source(demo_data: DemoData) -> None:
    gate = Gate()
    server = ThreadedServer(gate)
    server.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    bounded = rest.model_copy(
        update={
            "base_url": server.url,
            "resilience": Resilience(max_concurrency=2, retries=0),
            "fetch": rest.fetch.model_copy(update={"max_batch": 1}),
        }
    )
    config = GatewayConfig(
        demo_data.config.categories, (bounded,), demo_data.config.limits, auth=demo_data.config.auth
    )
    gateway = await running(config)
    source = gateway.gateway.federation.sources[REST_SOURCE]
    try:
        loads = [asyncio.create_task(source.load_cases([f"PMOC-{n:06d}"])) for n in range(6)]
        assert await asyncio.to_thread(gate.two_waiting.wait, 10)
        assert not any(load.done() for load in loads)
        gate.release.set()
        await asyncio.gather(*loads)
    finally:
        gate.release.set()
        await gateway.client.aclose()
        await gateway.gateway.stop()
        server.stop()
    assert gate.most == 2


FAST_RECOVERY = Resilience(
    retries=1,
    retry_initial_seconds=0.01,
    retry_max_seconds=0.05,
    circuit_failure_threshold=3,
    circuit_recovery_seconds=1.0,
)


async def until_whole(gateway: RunningGateway) -> dict[str, Any]:
    """QUERY again until no source fails (an open circuit lets a trial through in 1 s)."""
    async with asyncio.timeout(20):
        while True:
            body = await gateway.query(QUERY)
            if "errors" not in body:
                return body
            await asyncio.sleep(0.05)  # polling the gateway, with a deadline


async def test_city_platform_stopped_and_restarted_mid_run(demo_data: DemoData) -> None:
    """The Open311 agency, a real server on loopback, goes away and comes back."""
    server = ThreadedServer(traffy.create_app(seed=OPEN311_SEED, count=OPEN311_CASES))
    server.start()
    sources = tuple(
        s.model_copy(update={"base_url": f"{server.url}/open311/v2", "resilience": FAST_RECOVERY})
        if s.id == OPEN311_SOURCE
        else s
        for s in demo_data.config.sources
    )
    gateway = await running(replace(demo_data.config, sources=sources))
    try:
        assert sources_in(await until_whole(gateway)) == set(ALL_SOURCES)
        server.stop()
        down = await gateway.query(QUERY)
        assert sources_in(down) == set(ALL_SOURCES) - {OPEN311_SOURCE}
        assert error_codes(down) == {("SOURCE_UNAVAILABLE", OPEN311_SOURCE)}
        assert health_of(await gateway.query(HEALTH), OPEN311_SOURCE)["status"] == "DOWN"
        server.start()
        assert sources_in(await until_whole(gateway)) == set(ALL_SOURCES)
        assert health_of(await gateway.query(HEALTH), OPEN311_SOURCE)["status"] == "UP"
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
        server.stop()


async def test_postgres_agency_cut_off_and_back_mid_run(
    demo_data: DemoData, postgres_admin_dsn: str
) -> None:
    """The agency's database refuses connections and its sessions are killed, then it is back:
    the gateway keeps answering from the others and picks it up again without a restart."""
    from gateway.demo import asyncpg_url
    from samples import damrongdhama

    dsn = await create_database(postgres_admin_dsn)
    name = dsn.partition("?")[0].rsplit("/", 1)[1]
    await damrongdhama.create_and_load(dsn, seed=PG_SEED, count=60)
    sources = tuple(
        s.model_copy(update={"url": asyncpg_url(dsn), "resilience": FAST_RECOVERY})
        if s.id == POSTGRES_SOURCE
        else s
        for s in demo_data.config.sources
    )
    gateway = await running(replace(demo_data.config, sources=sources))
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        assert sources_in(await until_whole(gateway)) == set(ALL_SOURCES)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        down = await gateway.query(QUERY)
        assert sources_in(down) == set(ALL_SOURCES) - {POSTGRES_SOURCE}
        assert error_codes(down) == {("SOURCE_UNAVAILABLE", POSTGRES_SOURCE)}
        assert health_of(await gateway.query(HEALTH), POSTGRES_SOURCE)["status"] == "DOWN"
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert sources_in(await until_whole(gateway)) == set(ALL_SOURCES)
        assert health_of(await gateway.query(HEALTH), POSTGRES_SOURCE)["status"] == "UP"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await gateway.client.aclose()
        await gateway.gateway.stop()
        await drop_database(postgres_admin_dsn, dsn)


def _sqlite_workers() -> set[threading.Thread]:
    """aiosqlite's worker threads alive now, one per connection."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


async def test_readyz_is_503_when_every_source_is_down(demo_data: DemoData) -> None:
    dead = {
        POSTGRES_SOURCE: {"url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"},
        SQLITE_SOURCE: {
            "url": "sqlite+aiosqlite:///file:/nonexistent/dir/x.sqlite?mode=ro&uri=true"
        },
        REST_SOURCE: {"base_url": "http://127.0.0.1:1"},
        OPEN311_SOURCE: {"base_url": "http://127.0.0.1:1/open311/v2"},
    }
    sources = tuple(
        s.model_copy(update=dead[s.id] | {"resilience": Resilience(retries=0)})
        for s in demo_data.config.sources
    )
    workers_before = _sqlite_workers()
    gateway = await running(replace(demo_data.config, sources=sources))
    try:
        body = await gateway.query(QUERY)
        ready = await gateway.client.get("/readyz")
        alive = await gateway.client.get("/healthz")
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
        # aiosqlite stops the worker thread of a connection that failed to open without
        # waiting for it; the thread then hands its last result to this test's event loop,
        # which must still be open ("Event loop is closed" in that thread otherwise, reported
        # by pytest against whichever test runs next).
        for worker in _sqlite_workers() - workers_before:
            await asyncio.to_thread(worker.join, 30)
    assert body["data"]["cases"]["edges"] == []
    assert {source for _, source in error_codes(body)} == set(ALL_SOURCES)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert {h["status"] for h in ready.json()["sources"].values()} == {"DOWN"}
    assert alive.status_code == 200  # the process itself is fine
