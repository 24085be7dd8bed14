"""``cases``: filters, ordering and keyset paging across a PostgreSQL and a SQLite agency."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from sources import CanonicalStatus, CaseFilter, CaseOrder
from sources._guard import Guarded
from sources.sql import SqlSource
from sources.sql._statements import LIMIT
from tests.conftest import PG_SEED, DemoData, RunningGateway, running
from tests.postgres import create_database, drop_database
from tests.resolvers.expected import (
    ALL_SOURCES,
    POSTGRES_SOURCE,
    SQLITE_SOURCE,
    all_cases,
    matching,
)

PAGE = """
query Page($filter: CaseFilterInput, $order: CaseOrderInput, $first: Int, $after: String) {
  cases(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    edges { cursor node { id referenceNumber title description status receivedAt updatedAt
            category { code } location { province { code } district { code } }
            source { id } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""


async def every_page(
    gateway: RunningGateway,
    *,
    first: int,
    order: dict[str, str] | None = None,
    filter: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gateway.query(
            PAGE, {"first": first, "after": after, "order": order, "filter": filter}
        )
        assert "errors" not in body, body["errors"]
        connection = body["data"]["cases"]
        nodes.extend(edge["node"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


def sort_key(node: dict[str, Any], field: str) -> tuple[datetime, str]:
    return datetime.fromisoformat(node[field]), node["source"]["id"]


@pytest.mark.parametrize(
    ("field", "direction"),
    [
        ("RECEIVED_AT", "DESC"),
        ("RECEIVED_AT", "ASC"),
        ("UPDATED_AT", "DESC"),
        ("UPDATED_AT", "ASC"),
    ],
)
async def test_paging_visits_every_case_once_in_order(
    gateway: RunningGateway, field: str, direction: str
) -> None:
    nodes = await every_page(gateway, first=97, order={"field": field, "direction": direction})
    ids = [node["id"] for node in nodes]
    assert len(ids) == len(set(ids)) == len(all_cases())
    attribute = "receivedAt" if field == "RECEIVED_AT" else "updatedAt"
    keys = [sort_key(node, attribute) for node in nodes]
    assert keys == sorted(keys, reverse=direction == "DESC")
    assert {node["source"]["id"] for node in nodes} == set(ALL_SOURCES)


class Sent(NamedTuple):
    """One statement as it left for a database."""

    sql: str
    parameters: tuple[Any, ...]
    in_transaction: bool | None  # once it ran, by asyncpg (from the server's replies); SQLite: None
    via: str  # "sqlalchemy" (its cursor) or "asyncpg" (straight to the driver)


@contextlib.contextmanager
def sent_statements() -> Iterator[list[Sent]]:
    """Every statement sent meanwhile, both ways one leaves: through SQLAlchemy's cursor
    (SQLite; PostgreSQL statements SQLAlchemy runs itself) and straight to asyncpg (the rows
    of pages and batches, sources/sql/_driver.py). The real calls go on underneath."""
    seen: list[Sent] = []

    def cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        state = None
        if conn.dialect.name == "postgresql":
            state = conn.connection.dbapi_connection._connection.is_in_transaction()
        seen.append(Sent(statement, tuple(parameters), state, "sqlalchemy"))

    fetch = asyncpg.Connection.fetch

    async def driver_fetch(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        rows = await fetch(self, query, *args, **kw)
        seen.append(Sent(query, args, self.is_in_transaction(), "asyncpg"))
        return rows

    # after: SQLAlchemy's adapter sends a BEGIN, when it does, within the cursor's execute
    event.listen(Engine, "after_cursor_execute", cursor_execute)
    asyncpg.Connection.fetch = driver_fetch  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        asyncpg.Connection.fetch = fetch  # type: ignore[method-assign]
        event.remove(Engine, "after_cursor_execute", cursor_execute)


async def test_deep_page_is_keyset_not_offset(gateway: RunningGateway) -> None:
    """Page 2 starts where page 1 ended: a keyset WHERE and a LIMIT, never OFFSET. Merged
    over four sources, the PostgreSQL one is asked for its share of first + 1 (ceil(6 / 4) + 2
    = 4 rows), and once more only if its rows are still in contention."""
    first = await gateway.query(PAGE, {"first": 400})
    cursor = first["data"]["cases"]["edges"][-1]["cursor"]
    before = gateway.round_trips(POSTGRES_SOURCE, "search_cases")
    with sent_statements() as statements:
        deep = await gateway.query(PAGE, {"first": 5, "after": cursor})
    asked = gateway.round_trips(POSTGRES_SOURCE, "search_cases") - before
    assert asked in (1, 2)
    assert deep["data"]["cases"]["pageInfo"]["hasPreviousPage"] is True
    earlier = {edge["node"]["id"] for edge in first["data"]["cases"]["edges"]}
    assert not earlier & {edge["node"]["id"] for edge in deep["data"]["cases"]["edges"]}
    searches = [s for s in statements if "FROM complaints" in s.sql and "LIMIT" in s.sql]
    assert len(searches) == asked
    sql, parameters, _, _ = searches[0]
    assert "OFFSET" not in sql.upper()
    assert "LIMIT" in sql and parameters[-1] == 4  # its share of first + 1
    position = decode_position(cursor)
    # the keyset position travels as parameters of the WHERE: the sort value and the id
    assert datetime.fromisoformat(position[3]) in tuple(parameters), parameters
    assert "WHERE (complaints.received_at, complaints.id) < (" in sql  # newest first: before it
    assert "ORDER BY complaints.received_at DESC, complaints.id DESC" in sql


def decode_position(cursor: str) -> list[Any]:
    """The keyset position inside a cursor (opaque to clients; a test may look)."""
    padded = cursor + "=" * (-len(cursor) % 4)
    position: list[Any] = json.loads(base64.urlsafe_b64decode(padded))
    return position


async def test_agencies_and_agency_by_code(gateway: RunningGateway) -> None:
    body = await gateway.query(
        """{ agencies { code nameTh nameEn }
             agency(code: "OPM-1111") { code nameEn }
             unknown: agency(code: "NOPE") { code } }"""
    )
    assert "errors" not in body, body.get("errors")
    configured = {s.agency.code: s.agency for s in gateway.gateway.config.sources}
    assert sorted(a["code"] for a in body["data"]["agencies"]) == sorted(configured)
    for agency in body["data"]["agencies"]:
        assert agency["nameTh"] == configured[agency["code"]].name_th
        assert agency["nameEn"] == configured[agency["code"]].name_en
    assert body["data"]["agency"] == {
        "code": "OPM-1111",
        "nameEn": "Office of the Prime Minister, 1111 Public Service Center",
    }
    assert body["data"]["unknown"] is None


@pytest.fixture
async def twin_agencies(
    demo_data: DemoData, postgres_admin_dsn: str
) -> AsyncIterator[RunningGateway]:
    """Two agencies holding the same synthetic cases: every receivedAt and updatedAt is a tie
    between them, so only the tie-break by source and then id orders the pages."""
    from gateway.demo import asyncpg_url
    from samples import damrongdhama

    dsns = [await create_database(postgres_admin_dsn) for _ in range(2)]
    for dsn in dsns:
        await damrongdhama.create_and_load(dsn, seed=PG_SEED, count=TWIN_CASES)
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    twins = tuple(
        pg.model_copy(update={"id": name, "url": asyncpg_url(dsn)})
        for name, dsn in zip(("twin-a", "twin-b"), dsns, strict=True)
    )
    gateway = await running(replace(demo_data.config, sources=twins))
    yield gateway
    await gateway.client.aclose()
    await gateway.gateway.stop()
    for dsn in dsns:
        await drop_database(postgres_admin_dsn, dsn)


TWIN_CASES = 40


@pytest.mark.parametrize(
    ("field", "direction"),
    [("RECEIVED_AT", "DESC"), ("RECEIVED_AT", "ASC"), ("UPDATED_AT", "DESC")],
)
async def test_ties_on_the_sort_value_are_broken_by_source_then_id(
    twin_agencies: RunningGateway, field: str, direction: str
) -> None:
    nodes = await every_page(twin_agencies, first=7, order={"field": field, "direction": direction})
    ids = [node["id"] for node in nodes]
    assert len(ids) == len(set(ids)) == 2 * TWIN_CASES  # no gaps, no duplicates
    attribute = "receivedAt" if field == "RECEIVED_AT" else "updatedAt"
    keys = [
        (datetime.fromisoformat(n[attribute]), n["source"]["id"], int(n["referenceNumber"][-6:]))
        for n in nodes
    ]
    assert keys == sorted(keys, reverse=direction == "DESC")
    ties = sum(1 for a, b in itertools.pairwise(keys) if a[0] == b[0])
    assert ties == TWIN_CASES  # each case's twin right beside it, across page boundaries too


FILTERS: list[tuple[str, dict[str, Any], Any]] = [
    ("status", {"status": ["RESOLVED", "CLOSED"]}, lambda c: c.status in ("RESOLVED", "CLOSED")),
    ("category", {"category": ["LAND_DISPUTE"]}, lambda c: c.category == "LAND_DISPUTE"),
    ("province", {"provinceCode": ["40"]}, lambda c: c.province_code == "40"),
    ("district", {"districtCode": ["4001"]}, lambda c: c.district_code == "4001"),
    (
        "received range",
        {
            "receivedFrom": "2026-01-01T00:00:00+07:00",
            "receivedBefore": "2026-04-01T00:00:00+07:00",
        },
        lambda c: (
            datetime(2025, 12, 31, 17, tzinfo=UTC)
            <= c.received_at
            < datetime(2026, 3, 31, 17, tzinfo=UTC)
        ),
    ),
    ("thai text", {"text": "ถนน"}, lambda c: "ถนน" in c.title or "ถนน" in c.description),
    (
        "combined",
        {"status": ["IN_PROGRESS"], "provinceCode": ["40"], "text": "น้ำ"},
        lambda c: (
            c.status == "IN_PROGRESS"
            and c.province_code == "40"
            and ("น้ำ" in c.title or "น้ำ" in c.description)
        ),
    ),
]


@pytest.mark.parametrize(("name", "filter", "predicate"), FILTERS, ids=[f[0] for f in FILTERS])
async def test_filters_match_the_agencies_data(
    gateway: RunningGateway, name: str, filter: dict[str, Any], predicate: Any
) -> None:
    expected = matching(predicate)
    assert expected, f"the test data has no case for {name}"
    nodes = await every_page(gateway, first=200, filter=filter)
    body = await gateway.query(PAGE, {"first": 1, "filter": filter})
    assert body["data"]["cases"]["totalCount"] == len(expected)
    assert len(nodes) == len(expected)
    got = sorted((n["source"]["id"], n["title"], n["receivedAt"]) for n in nodes)
    want = sorted(
        (e.source, e.case.title, datetime.fromisoformat(n).isoformat())
        for e, n in ((e, e.case.received_at.isoformat()) for e in expected)
    )
    assert [(s, t, datetime.fromisoformat(r)) for s, t, r in got] == [
        (s, t, datetime.fromisoformat(r)) for s, t, r in want
    ]


async def test_source_and_agency_filters_skip_other_sources(gateway: RunningGateway) -> None:
    before = gateway.round_trips(POSTGRES_SOURCE)
    body = await gateway.query(PAGE, {"first": 3, "filter": {"source": [SQLITE_SOURCE]}})
    assert {e["node"]["source"]["id"] for e in body["data"]["cases"]["edges"]} == {SQLITE_SOURCE}
    assert body["data"]["cases"]["totalCount"] == sqlite_count()
    assert gateway.round_trips(POSTGRES_SOURCE) == before
    agency = await gateway.query("{ source: sources { id agency { code } } }")
    codes = {s["id"]: s["agency"]["code"] for s in agency["data"]["source"]}
    body = await gateway.query(PAGE, {"first": 3, "filter": {"agency": [codes[POSTGRES_SOURCE]]}})
    assert {e["node"]["source"]["id"] for e in body["data"]["cases"]["edges"]} == {POSTGRES_SOURCE}


def sqlite_count() -> int:
    return len([e for e in all_cases() if e.source == SQLITE_SOURCE])


async def test_text_search_is_a_substring_match_inside_thai_words(gateway: RunningGateway) -> None:
    word = "ประปา"  # only ever the tail of "น้ำประปา"
    expected = matching(lambda c: word in c.title or word in c.description)
    assert expected
    body = await gateway.query(PAGE, {"first": 500, "filter": {"text": word}})
    nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
    assert len(nodes) == len(expected)
    assert all(word in n["title"] or word in n["description"] for n in nodes)


async def test_batches_of_keys_bind_one_array_on_postgresql_and_a_list_on_sqlite(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data loader's batch is ``= ANY($1)`` on PostgreSQL: one statement text whatever the
    batch size (prepared once), not an IN list rendered anew per batch; SQLite gets IN."""
    document = """query ($filter: CaseFilterInput, $first: Int) {
      cases(filter: $filter, first: $first) { edges { node { referenceNumber %s } } }
    }"""
    # a batch per source: its referrals on PostgreSQL, whose pages are kept from carrying
    # them (as after a refusal: tests/sources/test_sql_carried_referrals.py), timelines on
    # SQLite (it has no referrals)
    guarded = gateway.gateway.federation.get(POSTGRES_SOURCE)
    assert isinstance(guarded, Guarded) and isinstance(guarded.inner, SqlSource)
    monkeypatch.setattr(guarded.inner, "_carry_after", float("inf"))
    batched = {POSTGRES_SOURCE: "referrals { at }", SQLITE_SOURCE: "timeline { at }"}
    answers = {}
    for source in (POSTGRES_SOURCE, SQLITE_SOURCE):
        for size in (3, 7):
            with sent_statements() as seen:
                body = await gateway.query(
                    document % batched[source], {"filter": {"source": [source]}, "first": size}
                )
            assert "errors" not in body, body
            # the batch: ordered, not limited (the gateway's own outbox, asked for the
            # referrals still PENDING on the page's cases, is not the agency's database)
            (answers[(source, size)],) = [
                s[:2]
                for s in seen
                if "ORDER BY" in s.sql
                and "LIMIT" not in s.sql
                and "complaint_graph_outbox" not in s.sql
            ]
    small, large = answers[(POSTGRES_SOURCE, 3)], answers[(POSTGRES_SOURCE, 7)]
    assert small[0] == large[0]
    assert "= ANY (" in small[0] and " IN (" not in small[0]
    assert [len(p) for p in small[1] if isinstance(p, list)] == [3]
    assert [len(p) for p in large[1] if isinstance(p, list)] == [7]
    sqlite_small, sqlite_large = answers[(SQLITE_SOURCE, 3)], answers[(SQLITE_SOURCE, 7)]
    assert " IN (" in sqlite_small[0] and "ANY" not in sqlite_small[0]
    assert len(tuple(sqlite_large[1])) - len(tuple(sqlite_small[1])) == 4


async def test_postgresql_statements_run_outside_any_transaction(gateway: RunningGateway) -> None:
    """Reads are sent in autocommit: no BEGIN before each statement and no ROLLBACK when the
    connection goes back to the pool (two round trips per source call otherwise)."""
    with sent_statements() as sent:
        body = await gateway.query(PAGE, {"filter": {"source": [POSTGRES_SOURCE]}, "first": 5})
    assert "errors" not in body, body
    states = [s.in_transaction for s in sent if s.in_transaction is not None]
    assert len(states) >= 2 and not any(states), sent  # the page and its count at least


async def test_a_filtered_page_on_postgresql_is_one_statement_sent_to_asyncpg(
    gateway: RunningGateway,
) -> None:
    """A filter's lists of codes are bound as arrays (``= ANY``) on PostgreSQL, like a batch's
    keys: one statement text whatever their length, which goes straight to asyncpg (an
    expanding ``IN`` list would be rendered by SQLAlchemy anew for every call)."""
    document = """query ($filter: CaseFilterInput) {
      cases(filter: $filter, first: 5) { edges { node { status } } }
    }"""
    searches = []
    for statuses in (["RECEIVED"], ["RECEIVED", "IN_PROGRESS", "CLOSED"]):
        where = {"source": [POSTGRES_SOURCE], "status": statuses, "provinceCode": ["10", "40"]}
        with sent_statements() as sent:
            body = await gateway.query(document, {"filter": where})
        assert "errors" not in body, body
        assert {edge["node"]["status"] for edge in body["data"]["cases"]["edges"]} <= set(statuses)
        (search,) = [s for s in sent if "FROM complaints" in s.sql and "LIMIT" in s.sql]
        searches.append(search)
    one, three = searches
    assert one.sql == three.sql and one.via == three.via == "asyncpg"
    assert "= ANY (" in one.sql and " IN (" not in one.sql
    assert [len(p) for p in one.parameters if isinstance(p, list)] == [1, 2]
    assert [len(p) for p in three.parameters if isinstance(p, list)] == [3, 2]


async def test_unfiltered_first_pages_and_batches_reuse_statements_built_once(
    gateway: RunningGateway,
) -> None:
    """The statement of a page without filter conditions or position, and those of batches of
    keys, are built (and given their SQLAlchemy cache key) once per source: pages of any size
    send one SQL text with the limit as a parameter. A filtered page is built for its filter."""
    guarded = gateway.gateway.federation.get(POSTGRES_SOURCE)
    source = getattr(guarded, "inner", None)
    assert isinstance(source, SqlSource)
    statements, _ = await source._ready()
    order = CaseOrder()
    small = statements.search(CaseFilter(), order, None, 4)
    large = statements.search(CaseFilter(), order, None, 8)
    assert small is not None and large is not None
    assert small[0] is large[0]
    assert (small[1], large[1]) == ({LIMIT: 4}, {LIMIT: 8})
    assert statements.timelines is statements.timelines
    assert statements.cases_by_ids is statements.cases_by_ids
    filtered = statements.search(
        CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED})), order, None, 4
    )
    assert filtered is not None and filtered[0] is not small[0]

    document = """query ($filter: CaseFilterInput, $first: Int) {
      cases(filter: $filter, first: $first) { edges { node { referenceNumber referrals { at } } } }
    }"""
    pages = []
    for size in (3, 7):
        with sent_statements() as sent:
            body = await gateway.query(
                document, {"filter": {"source": [POSTGRES_SOURCE]}, "first": size}
            )
        assert len(body["data"]["cases"]["edges"]) == size, body
        (page,) = [s for s in sent if "FROM complaints" in s.sql and "LIMIT" in s.sql]
        pages.append(page)
    three, seven = pages
    assert three.sql == seven.sql and three.via == seven.via == "asyncpg"
    assert (three.parameters, seven.parameters) == ((4,), (8,))  # first + 1
