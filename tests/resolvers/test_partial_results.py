"""A failing source costs only its own data and gives exactly one error that names it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from gateway.config import GatewayConfig
from gateway.demo import asyncpg_url
from samples import damrongdhama
from samples.serving import ThreadedServer
from sources.rest import RestSettings
from tests.conftest import PG_SEED, DemoData, serving
from tests.postgres import create_database, drop_database, execute
from tests.resolvers.expected import ALL_SOURCES, POSTGRES_SOURCE, REST_SOURCE, SQLITE_SOURCE

QUERY = """
{ cases(first: 30) { totalCount edges { node { source { id } title status } } } }
"""


def extensions(error: dict[str, Any]) -> dict[str, Any]:
    """An error's extensions without the per-request id the HTTP layer adds."""
    return {k: v for k, v in error["extensions"].items() if k != "requestId"}


def sources_in(body: dict[str, Any]) -> set[str]:
    return {edge["node"]["source"]["id"] for edge in body["data"]["cases"]["edges"]}


def with_source(config: GatewayConfig, source_id: str, **changes: Any) -> GatewayConfig:
    """``config`` with one source's settings changed."""
    sources = tuple(
        s.model_copy(update=changes) if s.id == source_id else s for s in config.sources
    )
    return replace(config, sources=sources)


async def answer(demo_data: DemoData, source_id: str, **changes: Any) -> dict[str, Any]:
    """QUERY against the demo agencies with one source's settings changed."""
    async with serving(with_source(demo_data.config, source_id, **changes)) as gateway:
        return await gateway.query(QUERY)


async def test_an_unreachable_source_gives_exactly_one_error(demo_data: DemoData) -> None:
    """Its page and its count both fail; the response still names it once."""
    body = await answer(
        demo_data, POSTGRES_SOURCE, url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    )
    assert sources_in(body) == set(ALL_SOURCES) - {POSTGRES_SOURCE}
    assert body["data"]["cases"]["totalCount"] > 0
    (error,) = body["errors"]
    assert extensions(error) == {"code": "SOURCE_UNAVAILABLE", "source": POSTGRES_SOURCE}
    assert error["path"] == ["cases"]


async def test_a_column_missing_at_run_time_is_source_misconfigured(
    demo_data: DemoData, tmp_path: Path
) -> None:
    """The agency renamed a mapped column: the source says which key no longer fits, once."""
    copy = tmp_path / "provincial.sqlite"
    copy.write_bytes(demo_data.sqlite_path.read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("ALTER TABLE petition RENAME COLUMN heading TO subject")
    body = await answer(demo_data, SQLITE_SOURCE, url=f"sqlite+aiosqlite:///{copy}")
    assert sources_in(body) == set(ALL_SOURCES) - {SQLITE_SOURCE}
    (error,) = body["errors"]
    assert extensions(error) == {"code": "SOURCE_MISCONFIGURED", "source": SQLITE_SOURCE}
    assert "cases.title" in error["message"]
    assert "heading" in error["message"]


async def test_postgresql_refusing_a_statement_is_a_failed_query_naming_the_reason(
    demo_data: DemoData, postgres_admin_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The agency renames a mapped column while the gateway runs: its page's statement, sent
    straight to asyncpg (sources/sql/_driver.py), is refused there. One error names the source
    and the database's reason, not the SQL; the other agencies' cases arrive; the connection
    is still good once the column is back."""
    dsn = await create_database(postgres_admin_dsn)
    try:
        await damrongdhama.create_and_load(dsn, seed=PG_SEED, count=40)
        config = with_source(demo_data.config, POSTGRES_SOURCE, url=asyncpg_url(dsn))
        async with serving(config) as gateway:
            assert "errors" not in await gateway.query(QUERY)
            await execute(dsn, "ALTER TABLE complaints RENAME COLUMN subject TO heading")
            body = await gateway.query(QUERY)
            assert sources_in(body) == set(ALL_SOURCES) - {POSTGRES_SOURCE}
            (error,) = body["errors"]
            assert extensions(error) == {"code": "SOURCE_QUERY_FAILED", "source": POSTGRES_SOURCE}
            assert "database refused the query (UndefinedColumnError)" in error["message"]
            assert "subject" not in error["message"] and "SELECT" not in error["message"]
            logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert f"source {POSTGRES_SOURCE}: UndefinedColumnError" in logged  # for operators
            await execute(dsn, "ALTER TABLE complaints RENAME COLUMN heading TO subject")
            again = await gateway.query(QUERY)
            assert "errors" not in again, again
            assert POSTGRES_SOURCE in sources_in(again)
    finally:
        await drop_database(postgres_admin_dsn, dsn)


class UnknownStatus:
    """An agency API that answers every call with one well-formed case of status 99."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        case = {
            "complaint_code": "PMOC-999999",
            "topic": "หัวเรื่อง",
            "detail": "รายละเอียด",
            "status_id": 99,
            "channel_name": "สายด่วน 1111",
            "category": {"id": 101},
            "received_date": "2030-01-01T09:00:00+07:00",
        }
        body = json.dumps({"result": {"items": [case], "total": 1}}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def unknown_status() -> Iterator[ThreadedServer]:
    server = ThreadedServer(UnknownStatus())
    server.start()
    yield server
    server.stop()


async def test_an_unknown_status_from_an_api_is_an_unmapped_value_on_that_field(
    demo_data: DemoData, unknown_status: ThreadedServer
) -> None:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(rest, RestSettings)
    body = await answer(demo_data, REST_SOURCE, base_url=unknown_status.url)
    assert sources_in(body) == set(ALL_SOURCES)  # the case itself still arrives
    (odd,) = [e for e in body["data"]["cases"]["edges"] if e["node"]["source"]["id"] == REST_SOURCE]
    assert odd["node"]["title"] == "หัวเรื่อง"
    assert odd["node"]["status"] is None
    (error,) = body["errors"]
    assert extensions(error) == {
        "code": "SOURCE_BAD_RESPONSE",
        "reason": "UNMAPPED_VALUE",
        "source": REST_SOURCE,
        "key": "vocabulary.statuses",
        "value": "99",
    }
