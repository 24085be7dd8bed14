"""An SQL source reads a page for some record fields only (``search_cases(fields=...)``), on
a real SQLite file and on PostgreSQL through asyncpg: each field alone is the whole record's
value, and the fields not read are None, not made up."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.demo import asyncpg_url
from sources import CanonicalStatus, CaseFilter, CaseOrder, CaseRecord, Position, source_class
from sources._model import CASE_RECORD_FIELDS
from sources._query import SortField
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute
from tests.sources.every_field import every_field_record
from tests.sources.test_sql_mapping import (
    FULL_CASES_TABLE,
    FULL_CASES_TABLE_POSTGRESQL,
    FULL_CONFIG,
)

CONFIG = FULL_CONFIG.replace(
    "    timeline: {table: log, case_id: case_id, at: at, status: state, note: note}\n", ""
).replace("sources:\n", "sla: {categories: {ROADS: 3}}\nsources:\n")
"""The every-field source, without its timeline (no table for it here), and with days for
its category other than the default: a due time without the category read would differ."""
RECORD_FIELDS = sorted(CASE_RECORD_FIELDS)  # not the timeline a page may carry (its own test)
ALWAYS_HELD = {"source", "local_id"}

SECOND_CASE = (
    "(8, 'REF-8', 'older', 'older body', 'phone', 'road', 'open', '2025-12-01 01:00:00+00',"
    " '2025-12-02 02:00:00+00', NULL, NULL, NULL, '40', NULL, NULL, NULL, NULL, NULL)"
)
"""A case received before the every-field case (7), for a page after a position."""

EVERY_FIELD_ROW = (
    "(7, 'REF-7', 'the title', 'the body', 'phone', 'road', 'shut', '2026-01-01 01:00:00+00',"
    " '2026-01-02 02:00:00+00', '2026-01-03 03:00:00+00', '2026-01-04 04:00:00+00',"
    " 'the owner', '40', '4001', '400101', 'the place', 16.4, 102.8)"
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def full(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_dsn: str
) -> AsyncIterator[SqlSource]:
    """The every-field source of tests/sources/test_sql_mapping.py, with a second case."""
    if request.param == "sqlite":
        path = tmp_path / "full.db"
        rows = f"{EVERY_FIELD_ROW}, {SECOND_CASE}".replace("+00'", ".000000'")
        with sqlite3.connect(path) as db:
            db.executescript(FULL_CASES_TABLE + f"INSERT INTO c VALUES {rows};")
        async with opened(CONFIG, {"DB": str(path)}) as source:
            yield source
        return
    dsn = await create_database(postgres_admin_dsn)
    try:
        rows = f"INSERT INTO c VALUES {EVERY_FIELD_ROW}, {SECOND_CASE};"
        await execute(dsn, FULL_CASES_TABLE_POSTGRESQL + rows)
        config = CONFIG.replace("sqlite+aiosqlite:///${DB}", asyncpg_url(dsn))
        async with opened(config, {}) as source:
            yield source
    finally:
        await drop_database(postgres_admin_dsn, dsn)


@contextlib.asynccontextmanager
async def opened(config: str, environ: dict[str, str]) -> AsyncIterator[SqlSource]:
    (settings,) = parse_config(config, environ).sources
    source = source_class("sql")(settings)
    assert isinstance(source, SqlSource)
    try:
        yield source
    finally:
        await source.close()


async def page(
    source: SqlSource,
    fields: frozenset[str] | None,
    order: CaseOrder | None = None,
    where: CaseFilter | None = None,
    after: Position | None = None,
) -> list[CaseRecord]:
    return await source.search_cases(where or CaseFilter(), order or CaseOrder(), after, 10, fields)


@pytest.mark.parametrize("field", RECORD_FIELDS)
async def test_each_field_read_alone_is_the_whole_records_value(
    full: SqlSource, field: str
) -> None:
    """For both cases: the every-field one, and one whose due time comes from the SLA rule
    (received time and category) and whose optional columns are NULL."""
    whole = await page(full, None)
    assert whole[0] == every_field_record("full")
    assert whole[1].due_at == whole[1].received_at + timedelta(days=3)
    found = await page(full, frozenset({field}))
    assert [record.local_id for record in found] == ["7", "8"]
    for record, expected in zip(found, whole, strict=True):
        assert getattr(record, field) == getattr(expected, field)
        assert record.projection is not None
        assert {field, "received_at"} | ALWAYS_HELD <= record.projection  # + the order's field
        for other in RECORD_FIELDS:
            if other in record.projection:
                assert getattr(record, other) == getattr(expected, other), other
            else:
                assert getattr(record, other) is None, other  # not read: None, not ""


async def test_a_page_for_a_few_fields_reads_no_other_column(full: SqlSource) -> None:
    (found, _) = await page(full, frozenset({"title", "status"}))
    assert found.projection == {
        "source",
        "local_id",
        "title",
        "status",
        "source_status",
        "received_at",
        "media_urls",  # an SQL source maps none: () either way
        "status_notes",
    }
    assert (found.title, found.status, found.source_status) == (
        "the title",
        CanonicalStatus.CLOSED,
        "shut",
    )
    assert found.description is None and found.updated_at is None and found.location is None
    assert found.due_at is None and found.reference_number is None


async def test_the_orders_field_is_always_read(full: SqlSource) -> None:
    order = CaseOrder(field=SortField.UPDATED_AT)
    (found, older) = await page(full, frozenset({"title"}), order)
    assert found.projection is not None and "updated_at" in found.projection
    assert found.updated_at == every_field_record("full").updated_at
    assert older.local_id == "8"


async def test_every_field_or_none_named_reads_whole_records(full: SqlSource) -> None:
    whole = await page(full, None)
    assert [record.projection for record in whole] == [None, None]
    assert whole[0] == every_field_record("full")
    assert await page(full, frozenset(RECORD_FIELDS)) == whole


async def test_a_field_the_source_does_not_know_reads_whole_records(full: SqlSource) -> None:
    found = await page(full, frozenset({"title", "a_field_added_later"}))
    assert found == await page(full, None)


async def test_filtered_pages_and_pages_after_a_position_are_projected_too(
    full: SqlSource,
) -> None:
    """Only a first page without filter has a statement kept per columns; the others are built
    per call, with the same columns."""
    where = CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED}))
    (filtered,) = await page(full, frozenset({"title"}), where=where)
    assert (filtered.local_id, filtered.title, filtered.description) == ("8", "older", None)
    after = Position(datetime(2026, 1, 1, 1, tzinfo=UTC), "full", "7")
    (later,) = await page(full, frozenset({"reference_number"}), after=after)
    assert (later.local_id, later.reference_number, later.title) == ("8", "REF-8", None)
