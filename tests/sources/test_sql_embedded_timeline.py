"""A page read with its timelines (``"timeline"`` among the fields) carries each case's timeline
in its own round trip on PostgreSQL, equal to what ``load_timelines`` answers; elsewhere, and
whenever a carried timeline does not map, the records carry none and the loader answers."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.demo import asyncpg_url
from sources import CanonicalStatus, CaseFilter, CaseOrder, Position, SourceBadResponse
from sources import sql as sql_module
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute
from tests.sources.test_sql_mapping import (
    FULL_CASES_TABLE,
    FULL_CASES_TABLE_POSTGRESQL,
    FULL_CONFIG,
)
from tests.sources.test_sql_projection import EVERY_FIELD_ROW, SECOND_CASE, opened

THIRD_CASE = (
    "(9, 'REF-9', 'third', 'third body', 'web', 'road', 'open', '2025-11-01 01:00:00+00',"
    " '2025-11-02 02:00:00+00', NULL, NULL, NULL, '40', NULL, NULL, NULL, NULL, NULL)"
)
LOG_ROWS = """
INSERT INTO log VALUES (7, '2026-01-03 02:00:00+00', 'shut', 'the last');
INSERT INTO log VALUES (7, '2026-01-02 02:00:00+00', 'open', NULL);
INSERT INTO log VALUES (7, '2026-01-02 03:00:00+00', NULL, 'a note');
INSERT INTO log VALUES (9, '2025-11-01 05:00:00+00', 'open', 'received');
"""
"""Case 7: three entries, written out of order, one without a status, one without a note;
case 8: none; case 9: one."""

TIMELINE_FIELDS = frozenset({"title", "timeline"})


@contextlib.asynccontextmanager
async def postgres_source(admin_dsn: str, log_table: str) -> AsyncIterator[SqlSource]:
    dsn = await create_database(admin_dsn)
    try:
        rows = f"INSERT INTO c VALUES {EVERY_FIELD_ROW}, {SECOND_CASE}, {THIRD_CASE};"
        await execute(dsn, FULL_CASES_TABLE_POSTGRESQL + rows + log_table + LOG_ROWS)
        async with opened(
            FULL_CONFIG.replace("sqlite+aiosqlite:///${DB}", asyncpg_url(dsn)), {}
        ) as source:
            yield source
    finally:
        await drop_database(admin_dsn, dsn)


@pytest.fixture
async def postgres(postgres_admin_dsn: str) -> AsyncIterator[SqlSource]:
    log = "CREATE TABLE log (case_id BIGINT, at TIMESTAMPTZ, state TEXT, note TEXT);"
    async with postgres_source(postgres_admin_dsn, log) as source:
        yield source


def dsn_of(source: SqlSource) -> str:
    """The libpq address of the source's database, to change it behind the source's back."""
    return source.settings.url.replace("postgresql+asyncpg", "postgresql")


async def page(
    source: SqlSource,
    fields: frozenset[str] | None,
    where: CaseFilter | None = None,
    after: Position | None = None,
) -> dict[str, tuple[object, ...] | None]:
    found = await source.search_cases(where or CaseFilter(), CaseOrder(), after, 10, fields)
    return {record.local_id: record.timeline for record in found}


async def test_a_page_read_with_its_timelines_carries_what_the_loader_answers(
    postgres: SqlSource,
) -> None:
    carried = await page(postgres, TIMELINE_FIELDS)
    loaded = await postgres.load_timelines(["7", "8", "9"])
    assert carried == {local_id: tuple(loaded.get(local_id, ())) for local_id in ("7", "8", "9")}
    seven = carried["7"]
    assert seven is not None
    assert [(e.at.day, e.at.hour, e.status, e.source_status, e.note) for e in seven] == [
        (2, 2, CanonicalStatus.RECEIVED, "open", None),
        (2, 3, None, None, "a note"),
        (3, 2, CanonicalStatus.CLOSED, "shut", "the last"),
    ]
    assert carried["8"] == ()  # no entries: an empty timeline, not "not read"


async def test_records_carry_timelines_only_when_asked(postgres: SqlSource) -> None:
    assert set((await page(postgres, frozenset({"title"}))).values()) == {None}
    assert set((await page(postgres, None)).values()) == {None}  # whole records
    found = await postgres.search_cases(CaseFilter(), CaseOrder(), None, 10, TIMELINE_FIELDS)
    # the rest of the record is the projection it was before: the timeline is not a field
    assert found[0].projection is not None and "timeline" not in found[0].projection
    assert found[0].title == "the title" and found[0].description is None
    whole = await postgres.search_cases(CaseFilter(), CaseOrder(), None, 10, None)
    every = frozenset(f for f in type(whole[0]).__dataclass_fields__ if f != "projection")
    with_timelines = await postgres.search_cases(CaseFilter(), CaseOrder(), None, 10, every)
    assert [r.projection for r in with_timelines] == [None, None, None]
    assert [r.timeline is not None for r in with_timelines] == [True, True, True]
    for carried, plain in zip(with_timelines, whole, strict=True):
        assert carried.reference_number == plain.reference_number and carried.due_at == plain.due_at


async def test_filtered_pages_and_pages_after_a_position_carry_them_too(
    postgres: SqlSource,
) -> None:
    where = CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED}))
    assert await page(postgres, TIMELINE_FIELDS, where) == {
        "8": (),
        "9": tuple((await postgres.load_timelines(["9"]))["9"]),
    }
    after = Position(datetime(2026, 1, 1, 1, tzinfo=UTC), "full", "7")
    assert list(await page(postgres, TIMELINE_FIELDS, after=after)) == ["8", "9"]


async def test_a_timeline_that_does_not_map_is_left_to_the_loader(
    postgres: SqlSource,
) -> None:
    """An entry without a time: case 7's carried timeline does not map, so its record
    carries none, and the loader, asked instead, reports the error naming the source."""
    dsn = dsn_of(postgres)
    await execute(dsn, "INSERT INTO log VALUES (7, NULL, 'open', 'no time');")
    carried = await page(postgres, TIMELINE_FIELDS)
    assert carried["7"] is None
    assert carried["9"] is not None and len(carried["9"]) == 1  # the others map as before
    with pytest.raises(SourceBadResponse, match=r"timeline\.at is NoneType"):
        await postgres.load_timelines(["7"])


async def test_other_databases_leave_timelines_to_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    rows = f"{EVERY_FIELD_ROW}, {SECOND_CASE}".replace("+00'", ".000000'")
    with sqlite3.connect(path) as db:
        db.executescript(
            FULL_CASES_TABLE
            + f"INSERT INTO c VALUES {rows};"
            + "CREATE TABLE log (case_id INTEGER, at DATETIME, state TEXT, note TEXT);"
            + LOG_ROWS.replace("+00'", ".000000'")
        )
    async with opened(FULL_CONFIG, {"DB": str(path)}) as source:
        carried = await page(source, TIMELINE_FIELDS)
        assert carried == {"7": None, "8": None}
        assert len((await source.load_timelines(["7"]))["7"]) == 3


async def test_a_page_whose_timelines_the_database_refuses_still_arrives(
    postgres: SqlSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline table gone: the page is read again without timelines (its cases arrive),
    and the loader, asked for them, fails naming the source. The refusal is not sent again
    with the next pages, until CARRY_TIMELINES_AGAIN_AFTER has passed."""
    dsn = dsn_of(postgres)
    assert (await page(postgres, TIMELINE_FIELDS))["7"]  # carried, before
    await execute(dsn, "DROP TABLE log;")
    sent = count_statements(postgres, monkeypatch)
    carried = await page(postgres, TIMELINE_FIELDS)
    assert carried == {"7": None, "8": None, "9": None}
    assert len(sent) == 2  # refused, then without timelines
    assert (await page(postgres, TIMELINE_FIELDS)) == carried
    assert len(sent) == 3  # one statement: no timelines asked meanwhile
    with pytest.raises(SourceBadResponse, match="database refused the query"):
        await postgres.load_timelines(["7"])
    await execute(dsn, "CREATE TABLE log (case_id BIGINT, at TIMESTAMPTZ, state TEXT, note TEXT);")
    monkeypatch.setattr(sql_module, "CARRY_TIMELINES_AGAIN_AFTER", 0.0)
    postgres._carry_after = 0.0  # as when the while has passed
    assert (await page(postgres, TIMELINE_FIELDS))["7"] == ()


def count_statements(source: SqlSource, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The statements ``source`` sends from now on, as a list that grows."""
    sent: list[object] = []
    fetch = source._fetch_values

    async def counted(statement: Any, parameters: Any = None) -> Any:
        sent.append(statement)
        return await fetch(statement, parameters)

    monkeypatch.setattr(source, "_fetch_values", counted)
    return sent


async def test_an_entry_column_of_the_databases_own_type_is_left_to_the_loader(
    postgres_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status of an enum type (or a domain): asyncpg decodes it in a column of its own but
    not inside the anonymous row a carried timeline is, so pages carry none and the loader
    answers, in its own statement."""
    log = (
        "CREATE TYPE state AS ENUM ('open', 'shut');"
        "CREATE DOMAIN remark AS TEXT;"
        "CREATE TABLE log (case_id BIGINT, at TIMESTAMPTZ, state state, note remark);"
    )
    async with postgres_source(postgres_admin_dsn, log) as source:
        sent = count_statements(source, monkeypatch)
        carried = await page(source, TIMELINE_FIELDS)
        assert carried == {"7": None, "8": None, "9": None}
        assert len(sent) == 1  # not refused: never asked
        loaded = await source.load_timelines(["7"])
        assert [(e.source_status, e.note) for e in loaded["7"]] == [
            ("open", None),
            (None, "a note"),
            ("shut", "the last"),
        ]


async def test_entries_of_the_same_time_come_in_one_order_either_way(
    postgres: SqlSource,
) -> None:
    """Without a configured tie breaker, entries of one time are ordered by status, then note,
    in the page's timelines and in the loader's batch alike."""
    dsn = dsn_of(postgres)
    same = "'2025-11-02 00:00:00+00'"
    await execute(
        dsn,
        f"INSERT INTO log VALUES (9, {same}, 'shut', 'b');"
        f"INSERT INTO log VALUES (9, {same}, 'open', 'z');"
        f"INSERT INTO log VALUES (9, {same}, 'shut', 'a');",
    )
    carried = (await page(postgres, TIMELINE_FIELDS))["9"]
    loaded = tuple((await postgres.load_timelines(["9"]))["9"])
    assert carried == loaded
    assert [(e.source_status, e.note) for e in loaded] == [
        ("open", "received"),
        ("open", "z"),
        ("shut", "a"),
        ("shut", "b"),
    ]
