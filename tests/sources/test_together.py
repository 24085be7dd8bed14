"""Sources on one PostgreSQL database are asked in one statement (sources/sql/_together.py): the
same pages, has_next and counts as asking each source and merging, on random data with ties
within and across sources, every order, filters, access rules and every page boundary; one
statement for a page and one for its count; and each member's failure still its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.demo import asyncpg_url
from samples import damrongdhama
from sources import CaseFilter, CaseOrder, Federation, Position, SortField, Source
from sources._deadline import deadline_scope
from sources._errors import CircuitOpen, SourceError
from sources._federation import sort_value
from sources._guard import Guarded
from sources._query import AgencyAccess
from sources._settings import Resilience
from sources._stats import Dimension
from sources.sql import SqlSource
from tests import mysql
from tests.conftest import serving
from tests.postgres import create_database, drop_database, execute
from tests.sources.test_connection_pools import PAGE, many_sources

IDS = ("z9", "ab", "a_b", "a-b")
"""Python orders them ``a-b, a_b, ab, z9``; a database collation may not (punctuation)."""

BASE = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = frozenset({"title", "status", "timeline"})


def config(url: str, together: bool, ids: Sequence[str] = IDS) -> str:
    sources = "".join(
        f"""
  - id: {source_id}
    kind: sql
    agency: {{code: A{index}, name_th: a, name_en: a}}
    url: {url}
    ask_together: {str(together).lower()}
    cases: {{table: c{index}, id: id, reference_number: ref, title: title,
             category: kind, status: state, received_at: received, updated_at: changed}}
    location: {{province_code: p}}
    timeline: {{table: log{index}, case_id: case_id, at: at, status: state, note: note}}
    referrals: {{table: ref{index}, case_id: case_id, to_agency: to_agency, at: at}}
    vocabulary:
      statuses: {{open: RECEIVED, shut: CLOSED}}
      categories: {{road: ROADS}}
      agencies: {{other: OTHER}}
"""
        for index, source_id in enumerate(ids)
    )
    return f"categories:\n  - {{code: ROADS, name_th: ถนน, name_en: Roads}}\nsources:{sources}"


def tables(count: int = len(IDS)) -> str:
    return "".join(
        f"""
CREATE TABLE c{i} (id BIGINT PRIMARY KEY, ref TEXT, title TEXT, kind TEXT, state TEXT,
  received TIMESTAMPTZ NOT NULL, changed TIMESTAMPTZ, p TEXT);
CREATE TABLE log{i} (case_id BIGINT, at TIMESTAMPTZ, state TEXT, note TEXT);
CREATE TABLE ref{i} (case_id BIGINT, to_agency TEXT, at TIMESTAMPTZ);
"""
        for i in range(count)
    )


def made(text: str) -> list[SqlSource]:
    found = []
    for settings_ in parse_config(text, {}).sources:
        source = SqlSource(settings_)
        found.append(source)
    return found


@pytest.fixture
async def database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    dsn = await create_database(postgres_admin_dsn, "cg_together")
    await execute(dsn, tables())
    yield dsn
    await drop_database(postgres_admin_dsn, dsn)


@contextlib.asynccontextmanager
async def opened(dsn: str, together: bool) -> AsyncIterator[list[SqlSource]]:
    url = dsn if dsn.startswith("mysql") else asyncpg_url(dsn)
    sources = made(config(url, together))
    budget = sources[0].budget
    for source in sources:
        source.budget = budget  # one shared pool, as the gateway gives them
    try:
        for source in sources:
            await source.open()
        yield sources
    finally:
        for source in sources:
            await source.close()


Row = tuple[int, int, int, bool, bool, int]
"""(received minute, updated minute or -1 for NULL, log entries, shut, in province 11,
referred to OTHER)."""

rows = st.tuples(
    st.integers(0, 6),
    st.integers(-1, 6),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
    st.integers(0, 1),
)
data = st.lists(st.lists(rows, max_size=9), min_size=len(IDS), max_size=len(IDS))


def table_rows(
    per_source: Sequence[Sequence[Row]], naive: bool = False
) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (times naive in UTC for MariaDB's DATETIME)."""

    def moment(minutes: float) -> datetime:
        at = BASE + timedelta(minutes=minutes)
        return at.replace(tzinfo=None) if naive else at

    found: dict[str, list[tuple[Any, ...]]] = {}
    for index, cases in enumerate(per_source):
        c, log, ref = (found.setdefault(f"{t}{index}", []) for t in ("c", "log", "ref"))
        for key, (received, updated, entries, shut, eleven, referred) in enumerate(cases):
            at = moment(received)
            changed = None if updated < 0 else moment(updated)
            state = "shut" if shut else "open"
            c.append((key + 1, f"R{key}", f"t{index}-{key}", "road", state, at, changed))
            c[-1] += ("11" if eleven else "10",)
            for entry in range(entries):  # entries with equal times too
                log.append((key + 1, moment(received + entry % 2 / 60), "open", f"n{entry}"))
            if referred:
                ref.append((key + 1, "other", at))
    return found


async def fill(dsn: str, per_source: Sequence[Sequence[Row]]) -> None:
    if dsn.startswith("mysql"):
        statements = [f"DELETE FROM {t}{i}" for i in range(len(IDS)) for t in ("c", "log", "ref")]
        await mysql.execute(dsn, statements, table_rows(per_source, naive=True), "+00:00")
        return
    connection = await asyncpg.connect(dsn)
    try:
        for table, values in table_rows(per_source).items():
            await connection.execute(f"TRUNCATE {table}")
            if values:
                await connection.copy_records_to_table(table, records=values)
    finally:
        await connection.close()


ORDERS = [CaseOrder(field, descending) for field in SortField for descending in (False, True)]
FILTERS = [
    CaseFilter(),
    CaseFilter(statuses=frozenset({"RECEIVED"})),
    CaseFilter(province_codes=frozenset({"11"})),
    CaseFilter(access=AgencyAccess("OTHER", frozenset({("ab", "2"), ("z9", "1")}))),
]


async def pages(
    federation: Federation, where: CaseFilter, order: CaseOrder, first: int
) -> list[tuple[list[Any], bool]]:
    """Every page in turn, each cut after the last row of the one before."""
    found: list[tuple[list[Any], bool]] = []
    after: Position | None = None
    while True:
        page = await federation.page(where, order, after, first, FIELDS)
        assert not page.failures, page.failures
        found.append((page.records, page.has_next))
        if not page.has_next or len(found) > 40:
            return found
        last = page.records[-1]
        after = Position(sort_value(last, order), last.source, last.local_id)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(per_source=data, first=st.integers(1, 5))
async def test_pages_and_counts_asked_together_equal_asking_each(
    database: str, per_source: list[list[Row]], first: int
) -> None:
    await same_pages_and_counts(database, per_source, first, embedded=True)


async def same_pages_and_counts(
    database: str, per_source: list[list[Row]], first: int, embedded: bool
) -> None:
    await fill(database, per_source)
    async with opened(database, True) as grouped, opened(database, False) as alone:
        together, each = Federation(grouped), Federation(alone)
        assert [s.id for s in together.groups(grouped)[0]] == sorted(IDS)
        assert each.groups(alone) == []
        for where in FILTERS:
            assert await together.count(where) == await each.count(where)
            for order in ORDERS:
                expected = await pages(each, where, order, first)
                assert await pages(together, where, order, first) == expected
                if embedded:
                    carried = [r.timeline for page, _ in expected for r in page]
                    assert all(timeline is not None for timeline in carried)


class Statements:
    """Statements the server has seen, by pg_stat_statements' absence: counted by the guard's
    round-trip observer instead, which is what /metrics reads."""

    def __init__(self) -> None:
        self.trips: list[tuple[str, str, int, bool]] = []

    def __call__(self, source: str, operation: str, seconds: float, size: int, ok: bool) -> None:
        self.trips.append((source, operation, size, ok))


def guarded(
    sources: Sequence[SqlSource], observe: Statements, timeout: float = 10.0
) -> list[Source]:
    resilience = Resilience(retries=0, circuit_failure_threshold=1)
    return [Guarded(source, timeout, resilience, observe) for source in sources]


async def test_a_page_and_its_count_are_one_statement_each(database: str) -> None:
    await fill(database, [[(i, i, 1, False, False, 0) for i in range(5)]] * len(IDS))
    async with opened(database, True) as sources:
        observed = Statements()
        federation = Federation(guarded(sources, observed))
        page = await federation.page(CaseFilter(), CaseOrder(), None, 6, FIELDS)
        total, failures = await federation.count(CaseFilter())
    assert (total, failures, page.failures, page.reads) == (20, [], [], 1)
    assert [r.timeline is not None for r in page.records] == [True] * 6
    database_name = database.rsplit("/", 1)[1]
    assert observed.trips == [
        (f"together:postgresql://127.0.0.1:5432/{database_name}", "search_cases", 4, True),
        (f"together:postgresql://127.0.0.1:5432/{database_name}", "count_cases", 4, True),
    ]
    assert all(source.health().status == "UP" for source in federation.sources.values())


async def test_a_missing_table_fails_only_its_source(database: str) -> None:
    """The group statement is refused; each member is then asked alone: three answer, the
    fourth's error names it, and only its circuit counts the failure."""
    await fill(database, [[(i, i, 0, False, False, 0)] for i in range(len(IDS))])
    async with opened(database, True) as sources:
        observed = Statements()
        federation = Federation(guarded(sources, observed))
        await execute(database, "ALTER TABLE c2 RENAME TO c2_gone")
        page = await federation.page(CaseFilter(), CaseOrder(), None, 10, FIELDS)
        total, failures = await federation.count(CaseFilter())
        await execute(database, "ALTER TABLE c2_gone RENAME TO c2")
    assert {r.source for r in page.records} == set(IDS) - {"a_b"}
    assert [f.source for f in page.failures] == ["a_b"]
    assert (total, [f.source for f in failures]) == (3, ["a_b"])
    assert page.reads == 1 + len(IDS)
    together = [trip for trip in observed.trips if trip[0].startswith("together:")]
    assert [trip[1:] for trip in together] == [
        ("search_cases", 4, False),
        ("count_cases", 4, False),
    ]
    health = {source.id: source.health().status for source in federation.sources.values()}
    # refused, not unavailable: no circuit opens; the error is its source's alone
    assert health == {"z9": "UP", "ab": "UP", "a_b": "UNKNOWN", "a-b": "UP"}
    errors = {source.id: source.health().last_error for source in federation.sources.values()}
    assert [source for source, error in errors.items() if error is not None] == ["a_b"]


async def test_a_member_with_an_open_circuit_is_not_asked(database: str) -> None:
    await fill(database, [[(i, i, 0, False, False, 0)] for i in range(len(IDS))])
    async with opened(database, True) as sources:
        observed = Statements()
        members = guarded(sources, observed)
        federation = Federation(members)
        broken = federation.sources["ab"]
        assert isinstance(broken, Guarded)
        broken._verdict(SourceError("ab", "down"))  # not availability: stays closed
        from sources._errors import SourceUnavailable

        broken._verdict(SourceUnavailable("ab", "down"))  # threshold 1: open
        assert broken.health().circuit == "OPEN"
        assert [m.id for m in federation.groups(members)[0]] == ["a-b", "a_b", "z9"]
        page = await federation.page(CaseFilter(), CaseOrder(), None, 10, FIELDS)
    assert {r.source for r in page.records} == {"z9", "a_b", "a-b"}
    assert [type(f) for f in page.failures] == [CircuitOpen]
    together = [trip for trip in observed.trips if trip[0].startswith("together:")]
    assert [trip[1:] for trip in together] == [("search_cases", 3, True)]


async def test_a_slow_group_times_out_within_the_deadline_and_each_is_asked(
    database: str,
) -> None:
    """A lock held on one member's table stalls the union; within half the request's time
    it is given up, and the members are asked alone: the three free ones answer."""
    await fill(database, [[(i, i, 0, False, False, 0)] for i in range(len(IDS))])
    async with opened(database, True) as sources:
        observed = Statements()
        federation = Federation(guarded(sources, observed, timeout=5.0))
        holder = await asyncpg.connect(database)
        try:
            await holder.execute("BEGIN; LOCK TABLE c3 IN ACCESS EXCLUSIVE MODE")
            loop = asyncio.get_running_loop()
            started = loop.time()
            with deadline_scope(2.0):
                page = await federation.page(CaseFilter(), CaseOrder(), None, 10, FIELDS)
            spent = loop.time() - started
        finally:
            await holder.execute("ROLLBACK")
            await holder.close()
    assert spent < 2.0
    assert {r.source for r in page.records} == {"z9", "ab", "a_b"}
    assert [f.source for f in page.failures] == ["a-b"]
    together = [trip for trip in observed.trips if trip[0].startswith("together:")]
    assert [trip[1:] for trip in together] == [("search_cases", 4, False)]


@pytest.fixture
async def mariadb() -> AsyncIterator[str]:
    admin = mysql.server_url()
    assert admin is not None, f"no MariaDB/MySQL server: set {mysql.URL_VARIABLE}"
    url = await mysql.create_database(admin, "cg_together")
    schema = tables().replace("TIMESTAMPTZ", "DATETIME(6)").replace("TEXT", "VARCHAR(40)")
    await mysql.execute(url, [s for s in schema.split(";") if s.strip()], None, "+00:00")
    yield url
    await mysql.drop_database(admin, url)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(per_source=data, first=st.integers(1, 5))
async def test_mariadb_pages_and_counts_asked_together_equal_asking_each(
    mariadb: str, per_source: list[list[Row]], first: int
) -> None:
    """MariaDB's union of parenthesised parts; its DATETIME columns are read in UTC."""
    await same_pages_and_counts(mariadb, per_source, first, embedded=False)


async def test_statistics_asked_together_equal_asking_each_in_one_statement(
    database: str,
) -> None:
    cases = [(i, i % 3, 1, i % 2 == 0, i % 3 == 0, i % 2) for i in range(7)]
    await fill(database, [cases, cases[:3], [], cases[2:]])
    dimensions = [Dimension.SOURCE, Dimension.STATUS, Dimension.RECEIVED_DAY]
    now = BASE + timedelta(days=3)
    async with opened(database, True) as grouped, opened(database, False) as alone:
        observed = Statements()
        together = Federation(guarded(grouped, observed))
        for where in FILTERS:
            expected, failures = await Federation(alone).stats(where, dimensions, now)
            assert failures == []
            assert await together.stats(where, dimensions, now) == (expected, [])
    assert {trip[1:] for trip in observed.trips} == {("case_stats", 4, True)}
    assert len(observed.trips) == len(FILTERS)


def test_sqlite_sources_are_never_grouped(tmp_path: Any) -> None:
    text = config(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", True, ("a", "b"))

    async def check() -> None:
        import sqlite3

        with contextlib.closing(sqlite3.connect(tmp_path / "one.db")) as db:
            db.executescript(
                tables(2).replace("TIMESTAMPTZ", "DATETIME").replace("BIGINT", "INTEGER")
            )
        sources = made(text)
        try:
            for source in sources:
                await source.open()
            assert [source.together_key() for source in sources] == [None, None]
        finally:
            for source in sources:
                await source.close()

    asyncio.run(check())


async def test_metrics_show_a_page_of_thirty_sources_as_two_statements(
    postgres_admin_dsn: str, tmp_path: Any
) -> None:
    """Through the whole gateway: /metrics counts the statements sent (one for the page, one
    for its totalCount, under ``together:<database>``) and none of the thirty sources alone;
    the answer is the one thirty sources asked alone give."""
    dsn = await create_database(postgres_admin_dsn, "cg_together")
    try:
        await damrongdhama.create_and_load(dsn, count=60)
        grouped = many_sources(dsn, tmp_path, same_url=True, budget=None)
        alone = replace(
            grouped,
            sources=tuple(s.model_copy(update={"ask_together": False}) for s in grouped.sources),
        )
        async with serving(alone) as gateway:
            expected = await gateway.query(PAGE)
        async with serving(grouped) as gateway:
            label = f"together:postgresql://127.0.0.1:5432/{dsn.rsplit('/', 1)[1]}"
            sources = [s.id for s in grouped.sources]
            before = {s: gateway.round_trips(s) for s in [*sources, label]}
            answer = await gateway.query(PAGE)
            after = {s: gateway.round_trips(s) for s in [*sources, label]}
    finally:
        await drop_database(postgres_admin_dsn, dsn)
    assert answer == expected
    assert "errors" not in answer
    sent = {s: after[s] - before[s] for s in after if after[s] != before[s]}
    assert sent == {label: 2.0}
