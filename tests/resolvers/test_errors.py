"""Bad input gets a clear error and loses nothing; a failing source costs only its own data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.config import GatewayConfig
from tests.conftest import DemoData, RunningGateway, running
from tests.resolvers.expected import POSTGRES_SOURCE, SQLITE_SOURCE


async def test_bad_cursor_is_bad_user_input(gateway: RunningGateway) -> None:
    body = await gateway.query('{ cases(after: "bm9wZQ") { edges { cursor } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


async def test_cursor_from_another_order_is_refused(gateway: RunningGateway) -> None:
    page = await gateway.query("{ cases(first: 1) { pageInfo { endCursor } } }")
    cursor = page["data"]["cases"]["pageInfo"]["endCursor"]
    body = await gateway.query(
        "query($after: String) {"
        " cases(after: $after, orderBy: {field: UPDATED_AT}) { edges { cursor } } }",
        {"after": cursor},
    )
    assert "orderBy" in body["errors"][0]["message"]


async def test_page_size_limit_names_the_limit(gateway: RunningGateway) -> None:
    body = await gateway.query("{ cases(first: 100000) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "500" in body["errors"][0]["message"]


async def test_naive_date_filter_asks_for_an_offset(gateway: RunningGateway) -> None:
    body = await gateway.query(
        '{ cases(filter: {receivedFrom: "2026-01-01T00:00:00"}) { edges { cursor } } }'
    )
    assert "+07:00" in body["errors"][0]["message"]


async def test_unmapped_status_is_a_field_error_naming_source_key_and_value(
    demo_data: DemoData, tmp_path: Path
) -> None:
    """One row with a status the vocabulary lacks: that field errors, everything else arrives."""
    copy = tmp_path / "provincial.sqlite"
    copy.write_bytes(demo_data.sqlite_path.read_bytes())
    with sqlite3.connect(copy) as db:
        (petition,) = db.execute(
            "SELECT petition_no FROM petition ORDER BY filed_on DESC LIMIT 1"
        ).fetchone()
        db.execute("UPDATE petition SET state = 'รอพิจารณา' WHERE petition_no = ?", (petition,))
    (sqlite_source,) = [s for s in demo_data.config.sources if s.id == SQLITE_SOURCE]
    config = GatewayConfig(
        demo_data.config.categories,
        (sqlite_source.model_copy(update={"url": f"sqlite+aiosqlite:///{copy}"}),),
        demo_data.config.limits,
        auth=demo_data.config.auth,
    )
    gateway = await running(config)
    try:
        body = await gateway.query(
            "{ cases(first: 3) { edges { node { title status sourceStatus } } } }"
        )
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    edges = body["data"]["cases"]["edges"]
    assert len(edges) == 3
    assert edges[0]["node"]["status"] is None
    assert edges[0]["node"]["sourceStatus"] == "รอพิจารณา"
    assert all(edge["node"]["status"] for edge in edges[1:])
    (error,) = body["errors"]
    assert error["path"] == ["cases", "edges", 0, "node", "status"]
    assert error["extensions"] | {"requestId": None} == {
        "requestId": None,  # each response's own id, added by the HTTP layer
        "code": "SOURCE_BAD_RESPONSE",
        "reason": "UNMAPPED_VALUE",
        "source": SQLITE_SOURCE,
        "key": "vocabulary.statuses",
        "value": "รอพิจารณา",
    }
    assert "vocabulary.statuses" in error["message"]


async def test_unreachable_source_gives_partial_data_and_a_named_error(
    demo_data: DemoData, tmp_path: Path
) -> None:
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    dead = pg.model_copy(update={"url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    others = tuple(s for s in demo_data.config.sources if s.id != POSTGRES_SOURCE)
    config = GatewayConfig(
        demo_data.config.categories,
        (dead, *others),
        demo_data.config.limits,
        auth=demo_data.config.auth,
    )
    gateway = await running(config)
    try:
        body = await gateway.query(
            "{ cases(first: 5) { totalCount edges { node { source { id } timeline { at } } } } }"
        )
        health = await gateway.client.get("/healthz")
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    assert health.status_code == 200
    edges = body["data"]["cases"]["edges"]
    assert len(edges) == 5
    assert POSTGRES_SOURCE not in {edge["node"]["source"]["id"] for edge in edges}
    assert body["data"]["cases"]["totalCount"] > 0
    codes = {(e["extensions"]["code"], e["extensions"]["source"]) for e in body["errors"]}
    assert codes == {("SOURCE_UNAVAILABLE", POSTGRES_SOURCE)}
    assert all(
        "127.0.0.1" not in e["message"] and "nowhere" not in e["message"] for e in body["errors"]
    )
