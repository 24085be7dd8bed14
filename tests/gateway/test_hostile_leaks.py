"""Internal failures reach clients as codes and source names, never as SQL, traces or hosts."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from samples.serving import ThreadedServer
from tests.conftest import DemoData, RunningGateway, serving
from tests.gateway.hostile import assert_clean, leaks
from tests.gateway.test_limits import HangingAgency
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

INTERNAL_PAGE = """<!doctype html><html><head><title>500 Internal Server Error</title></head>
<body><h1>Internal Server Error</h1><pre>
Traceback (most recent call last):
  File "/srv/pmoc/app/views.py", line 88, in complaints
    rows = db.execute("SELECT * FROM complaint WHERE status_id = %s", args)
psycopg2.OperationalError: could not connect to server db01.intranet.pmoc.go.th:5432
</pre><a href="http://admin.intranet.pmoc.go.th:8443/console">console</a></body></html>"""

CASES = "{ cases(first: 3) { totalCount edges { node { title timeline { at note } } } } }"


async def ask(gateway: RunningGateway, demo_data: DemoData, document: str, **variables: Any) -> Any:
    response = await gateway.client.post(
        "/graphql", json={"query": document, "variables": variables or None}
    )
    return assert_clean(response, demo_data)


async def test_dropped_tables_mid_request_stream_leak_no_sql_or_names(
    demo_data: DemoData, agency_dsn: str
) -> None:
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    own = pg.model_copy(
        update={"url": agency_dsn.replace("postgresql://", "postgresql+asyncpg://")}
    )
    config = replace(demo_data.config, sources=(own,))
    async with serving(config) as gateway:
        before = await ask(gateway, demo_data, CASES)
        connection = await asyncpg.connect(agency_dsn)
        try:
            await connection.execute("DROP TABLE complaint_status_log")
            timeline_gone = await ask(gateway, demo_data, CASES)
            await connection.execute("DROP TABLE complaints CASCADE")
            cases_gone = await ask(gateway, demo_data, CASES)
        finally:
            await connection.close()
        alive = await ask(gateway, demo_data, "{ agencies { code } }")
    assert before["data"]["cases"]["edges"] and "errors" not in before
    for body in (timeline_gone, cases_gone):
        assert body["errors"], body
        for error in body["errors"]:
            assert error["extensions"]["code"] == "SOURCE_QUERY_FAILED", error
            assert error["extensions"]["source"] == POSTGRES_SOURCE
            for internal in ("complaint_status_log", "complaints", "relation", "does not exist"):
                assert internal not in error["message"], error
    assert timeline_gone["errors"][0]["path"][-1] == "timeline"
    assert alive["data"]["agencies"]


def broken_agency(status: int) -> Starlette:
    """The 1111 API's paths, answering its framework's HTML error page with internal hosts."""

    async def page(request: Request) -> Response:
        return HTMLResponse(INTERNAL_PAGE, status_code=status)

    return Starlette(routes=[Route("/{path:path}", page)])


def garbage_agency() -> Starlette:
    """JSON in the right place, with an internal URL where a date should be."""

    async def complaints(request: Request) -> Response:
        item = {
            "complaint_code": "PMOC-000001",
            "topic": "x",
            "detail": "x",
            "channel_name": "1111",
            "category": {"id": "101"},
            "status_id": "1",
            "received_date": "http://db01.intranet.pmoc.go.th:5432/complaints?debug=1",
            "updated_date": "2026-01-01T00:00:00+07:00",
        }
        return JSONResponse({"result": {"items": [item], "total": 1}})

    return Starlette(routes=[Route("/{path:path}", complaints)])


async def test_agency_html_error_pages_leak_no_hosts_or_traces(demo_data: DemoData) -> None:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    servers = [ThreadedServer(broken_agency(200)), ThreadedServer(broken_agency(500))]
    for server in servers:
        server.start()
    case_id = base64.b64encode(f"Case:{REST_SOURCE}:PMOC-000001".encode()).decode()
    try:
        for server in servers:
            broken = rest.model_copy(
                update={
                    "base_url": server.url,
                    "resilience": rest.resilience.model_copy(update={"retries": 0}),
                }
            )
            async with serving(replace(demo_data.config, sources=(broken,))) as gateway:
                listing = await ask(gateway, demo_data, CASES)
                by_id = await ask(
                    gateway, demo_data, "query($id: ID!) { case(id: $id) { title } }", id=case_id
                )
            for body in (listing, by_id):
                text = str(body)
                assert not leaks(text) and server.url not in text and str(server.port) not in text
                assert {e["extensions"]["source"] for e in body["errors"]} == {REST_SOURCE}
                assert {e["extensions"]["code"] for e in body["errors"]} <= {
                    "SOURCE_BAD_RESPONSE",
                    "SOURCE_UNAVAILABLE",
                }
    finally:
        for server in servers:
            server.stop()


async def test_agency_garbage_values_are_not_echoed(demo_data: DemoData) -> None:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    server = ThreadedServer(garbage_agency())
    server.start()
    try:
        broken = rest.model_copy(update={"base_url": server.url})
        async with serving(replace(demo_data.config, sources=(broken,))) as gateway:
            body = await ask(gateway, demo_data, CASES)
    finally:
        server.stop()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "SOURCE_BAD_RESPONSE"
    assert "received_at" in error["message"]  # names the field, as docs/frontend.md promises
    assert "intranet" not in error["message"]


async def test_slow_agency_times_out_without_naming_its_host(demo_data: DemoData) -> None:
    """A source past its own timeout is SOURCE_TIMEOUT, naming the source only."""
    agency = HangingAgency()
    server = ThreadedServer(agency)
    server.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    slow = rest.model_copy(
        update={
            "base_url": server.url,
            "timeout_seconds": 0.3,
            "resilience": rest.resilience.model_copy(update={"retries": 0}),
        }
    )
    try:
        async with serving(replace(demo_data.config, sources=(slow,))) as gateway:
            body = await ask(gateway, demo_data, CASES)
    finally:
        server.stop()
    assert {e["extensions"]["code"] for e in body["errors"]} == {"SOURCE_TIMEOUT"}
    assert str(server.port) not in str(body)
