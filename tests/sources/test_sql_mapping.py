"""The SQL adapter against a small hand-made agency database in a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.demo import asyncpg_url
from sources import (
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    Channel,
    SourceConfigError,
    Unmapped,
    source_class,
)
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute
from tests.sources.every_field import EVERY_FIELD_ENTRY, every_field_record

CONFIG = """
categories:
  - {code: ROADS, name_th: ถนน, name_en: Roads}
  - {code: WATER, name_th: น้ำ, name_en: Water}
sources:
  - id: town
    kind: sql
    agency: {code: TOWN, name_th: เทศบาลตำบลตัวอย่าง, name_en: Example Town}
    url: sqlite+aiosqlite:///${DB}
    timezone: Asia/Bangkok
    cases:
      table: reports
      id: report_id
      reference_number: ref
      title: title
      description: body
      channel: via
      category: kind
      status: state
      received_at: received
      updated_at: changed
    location: {province_code: province, address: place}
    timeline:
      {table: report_log, case_id: report_id, at: at, status: state, note: note, tie_breaker: seq}
    vocabulary:
      statuses: {รับเรื่อง: RECEIVED, เสร็จสิ้น: RESOLVED}
      categories: {R: ROADS, W: WATER}
      channels: {เว็บ: WEB}
"""


def build_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE reports (report_id INTEGER PRIMARY KEY, ref TEXT, title TEXT, body TEXT,
              via TEXT, kind TEXT, state TEXT, received DATETIME, changed DATETIME,
              province TEXT, place TEXT);
            CREATE TABLE report_log (seq INTEGER PRIMARY KEY, report_id INTEGER, at DATETIME,
              state TEXT, note TEXT);
            """
        )
        db.executemany(
            "INSERT INTO reports VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    1,
                    "A-1",
                    "ถนนชำรุด",
                    "หลุมบ่อ",
                    "เว็บ",
                    "R",
                    "รับเรื่อง",
                    "2026-01-01 07:00:00.000000",
                    None,
                    "40",
                    "หมู่ 1",
                ),
                (
                    2,
                    "A-2",
                    "น้ำไม่ไหล",
                    "ท่อแตก",
                    "เว็บ",
                    "W",
                    "เสร็จสิ้น",
                    "2026-01-02 07:00:00.000000",
                    "2026-01-03 07:00:00.000000",
                    "40",
                    "หมู่ 2",
                ),
                (
                    3,
                    "A-3",
                    "ถนนแตก",
                    "ร้าว",
                    "โทรสาร",
                    "X",
                    "รอพิจารณา",
                    "2026-01-03 07:00:00.000000",
                    None,
                    "10",
                    "หมู่ 3",
                ),
            ],
        )
        db.executemany(
            "INSERT INTO report_log VALUES (?,?,?,?,?)",
            [
                (1, 2, "2026-01-02 07:00:00.000000", "รับเรื่อง", None),
                (2, 2, "2026-01-03 07:00:00.000000", "เสร็จสิ้น", "ซ่อมแล้ว"),
                (3, 2, "2026-01-03 07:00:00.000000", None, "แจ้งผู้ร้อง"),
            ],
        )


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[SqlSource]:
    path = tmp_path / "town.db"
    build_database(path)
    (settings,) = parse_config(CONFIG, {"DB": str(path)}).sources
    source = source_class("sql")(settings)
    assert isinstance(source, SqlSource)
    yield source
    await source.close()


async def test_naive_local_times_become_utc(town: SqlSource) -> None:
    record = (await town.load_cases(["1"]))["1"]
    assert record.received_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


async def test_missing_updated_at_falls_back_to_received_at(town: SqlSource) -> None:
    record = (await town.load_cases(["1"]))["1"]
    assert record.updated_at == record.received_at


async def test_vocabularies_map_and_unmapped_values_are_kept_not_guessed(town: SqlSource) -> None:
    cases = await town.load_cases(["2", "3"])
    assert cases["2"].status is CanonicalStatus.RESOLVED
    assert cases["2"].channel is Channel.WEB
    assert cases["2"].category == "WATER"
    odd = cases["3"]
    assert odd.status == Unmapped("town", "statuses", "รอพิจารณา")
    assert odd.channel == Unmapped("town", "channels", "โทรสาร")
    assert odd.source_status == "รอพิจารณา"


async def test_unknown_and_malformed_ids_are_absent_not_errors(town: SqlSource) -> None:
    assert set(await town.load_cases(["1", "99", "not-a-number"])) == {"1"}


async def test_a_batch_of_ids_becomes_the_keys_each_id_would(town: SqlSource) -> None:
    """``native_ids`` (a batch's keys in one loop) against ``native_id`` one at a time."""
    statements, _ = await town._ready()
    ids = ["7", "007", " 7", "+7", "-7", "1_000", "\u0667", "x", "", "7.0"]
    ids += [str(2**63 - 1), str(2**63), str(-(2**63)), str(-(2**63) - 1)]
    one_by_one = [n for n in (statements.native_id(i) for i in ids) if n is not None]
    assert statements.native_ids(ids) == one_by_one
    assert one_by_one == [7, 7, 7, 7, -7, 1000, 7, 2**63 - 1, -(2**63)]


async def test_filters_are_pushed_down_with_local_time_bounds(town: SqlSource) -> None:
    where = CaseFilter(
        received_from=datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        received_before=datetime(2026, 1, 2, 0, 0, tzinfo=UTC),
    )
    found = await town.search_cases(where, CaseOrder(), None, 10)
    assert [record.local_id for record in found] == ["1"]
    assert await town.count_cases(CaseFilter(text="ถนน")) == 2
    assert await town.count_cases(CaseFilter(statuses=frozenset({CanonicalStatus.RESOLVED}))) == 1
    assert await town.count_cases(CaseFilter(province_codes=frozenset({"40"}))) == 2


async def test_status_nobody_uses_costs_no_statement(town: SqlSource) -> None:
    where = CaseFilter(statuses=frozenset({CanonicalStatus.DUPLICATE}))
    assert await town.search_cases(where, CaseOrder(), None, 10) == []


async def test_text_filter_treats_like_wildcards_literally(town: SqlSource) -> None:
    assert await town.count_cases(CaseFilter(text="%")) == 0
    assert await town.count_cases(CaseFilter(text="_")) == 0


async def test_timeline_is_oldest_first_with_notes(town: SqlSource) -> None:
    entries = (await town.load_timelines(["2", "1"]))["2"]
    assert [e.status for e in entries] == [
        CanonicalStatus.RECEIVED,
        CanonicalStatus.RESOLVED,
        None,
    ]
    assert entries[-1].note == "แจ้งผู้ร้อง"


async def test_check_lists_every_unmapped_value(town: SqlSource) -> None:
    problems = await town.check()
    found = {(p.key, p.problem.split("'")[1]) for p in problems}
    assert found == {
        ("vocabulary.statuses", "รอพิจารณา"),
        ("vocabulary.channels", "โทรสาร"),
        ("vocabulary.categories", "X"),
    }


async def test_check_names_missing_tables_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    build_database(path)
    text = CONFIG.replace("title: title", "title: headline").replace(
        "table: report_log", "table: log"
    )
    (settings,) = parse_config(text, {"DB": str(path)}).sources
    source = source_class("sql")(settings)
    try:
        problems = await source.check()
        keys = {p.key: p for p in problems}
        assert set(keys) == {"cases.title", "timeline.table"}
        assert "headline" in keys["cases.title"].problem
        assert "title" in keys["cases.title"].fix
        assert "report_log" in keys["timeline.table"].fix
        with pytest.raises(SourceConfigError, match=r"cases\.title"):
            await source.load_cases(["1"])
    finally:
        await source.close()


FULL_CONFIG = """
categories:
  - {code: ROADS, name_th: ถนน, name_en: Roads}
sources:
  - id: full
    kind: sql
    agency: {code: FULL, name_th: ครบทุกช่อง, name_en: Every Column}
    url: sqlite+aiosqlite:///${DB}
    timezone: UTC
    cases:
      {table: c, id: id, reference_number: ref, title: title, description: body, channel: via,
       category: kind, status: state, received_at: received, updated_at: changed, due_at: due,
       closed_at: closed, responsible: owner}
    location:
      {province_code: p, district_code: d, subdistrict_code: s, address: place, latitude: lat,
       longitude: lng}
    timeline: {table: log, case_id: case_id, at: at, status: state, note: note}
    vocabulary:
      statuses: {open: RECEIVED, shut: CLOSED}
      categories: {road: ROADS}
      channels: {phone: PHONE}
"""


FULL_CASES_TABLE = """
CREATE TABLE c (id INTEGER PRIMARY KEY, ref TEXT, title TEXT, body TEXT, via TEXT, kind TEXT,
  state TEXT, received DATETIME, changed DATETIME, due DATETIME, closed DATETIME, owner TEXT,
  p TEXT, d TEXT, s TEXT, place TEXT, lat REAL, lng REAL);
"""
"""The cases table of FULL_CONFIG, every field a column of its own."""

FULL_CASES_TABLE_POSTGRESQL = """
CREATE TABLE c (id BIGINT PRIMARY KEY, ref TEXT, title TEXT, body TEXT, via TEXT, kind TEXT,
  state TEXT, received TIMESTAMPTZ, changed TIMESTAMPTZ, due TIMESTAMPTZ, closed TIMESTAMPTZ,
  owner TEXT, p TEXT, d TEXT, s TEXT, place TEXT, lat DOUBLE PRECISION, lng DOUBLE PRECISION);
"""
"""The same on PostgreSQL."""


async def test_every_field_of_a_record_comes_from_its_own_column(tmp_path: Path) -> None:
    """Each column's value lands in its own field (the row mapper builds records with
    positional arguments for speed: a swap of two text fields would show here)."""
    path = tmp_path / "full.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            FULL_CASES_TABLE
            + """
            CREATE TABLE log (case_id INTEGER, at DATETIME, state TEXT, note TEXT);
            INSERT INTO c VALUES (7, 'REF-7', 'the title', 'the body', 'phone', 'road', 'shut',
              '2026-01-01 01:00:00.000000', '2026-01-02 02:00:00.000000',
              '2026-01-03 03:00:00.000000', '2026-01-04 04:00:00.000000', 'the owner',
              '40', '4001', '400101', 'the place', 16.4, 102.8);
            INSERT INTO log VALUES (7, '2026-01-02 02:00:00.000000', 'shut', 'the note');
            """
        )
    (settings,) = parse_config(FULL_CONFIG, {"DB": str(path)}).sources
    source = source_class("sql")(settings)
    try:
        record = (await source.load_cases(["7"]))["7"]
        timeline = (await source.load_timelines(["7"]))["7"]
    finally:
        await source.close()

    assert record == every_field_record("full")
    assert list(timeline) == [EVERY_FIELD_ENTRY]


async def test_a_timeline_of_notes_without_a_status_column(tmp_path: Path) -> None:
    """Timeline rows are read by position: without a status column the note is the third
    column, and no entry has a status."""
    path = tmp_path / "full.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            FULL_CASES_TABLE
            + """
            CREATE TABLE log (case_id INTEGER, at DATETIME, note TEXT);
            INSERT INTO log VALUES (7, '2026-01-02 02:00:00.000000', 'first');
            INSERT INTO log VALUES (7, '2026-01-03 02:00:00.000000', 'second');
            """
        )
    config = FULL_CONFIG.replace(
        "timeline: {table: log, case_id: case_id, at: at, status: state, note: note}",
        "timeline: {table: log, case_id: case_id, at: at, note: note}",
    )
    (settings,) = parse_config(config, {"DB": str(path)}).sources
    source = source_class("sql")(settings)
    try:
        timeline = (await source.load_timelines(["7"]))["7"]
    finally:
        await source.close()
    assert [(entry.note, entry.status, entry.source_status) for entry in timeline] == [
        ("first", None, None),
        ("second", None, None),
    ]
    assert [entry.at.day for entry in timeline] == [2, 3]


async def test_every_field_of_a_record_comes_from_its_own_column_on_postgresql(
    postgres_admin_dsn: str,
) -> None:
    """As above, through asyncpg's records (the driver path PostgreSQL sources read with,
    sources/sql/_driver.py), for a case loaded by id, on a search page and in its timeline."""
    dsn = await create_database(postgres_admin_dsn)
    try:
        await execute(
            dsn,
            FULL_CASES_TABLE_POSTGRESQL
            + """
            CREATE TABLE log (case_id BIGINT, at TIMESTAMPTZ, state TEXT, note TEXT);
            INSERT INTO c VALUES (7, 'REF-7', 'the title', 'the body', 'phone', 'road',
              'shut', '2026-01-01 01:00:00+00', '2026-01-02 02:00:00+00',
              '2026-01-03 03:00:00+00', '2026-01-04 04:00:00+00', 'the owner',
              '40', '4001', '400101', 'the place', 16.4, 102.8);
            INSERT INTO log VALUES (7, '2026-01-02 02:00:00+00', 'shut', 'the note');
            """,
        )
        config = FULL_CONFIG.replace("sqlite+aiosqlite:///${DB}", asyncpg_url(dsn))
        (settings,) = parse_config(config, {}).sources
        source = source_class("sql")(settings)
        try:
            record = (await source.load_cases(["7"]))["7"]
            (found,) = await source.search_cases(CaseFilter(), CaseOrder(), None, 10)
            timeline = (await source.load_timelines(["7"]))["7"]
        finally:
            await source.close()
    finally:
        await drop_database(postgres_admin_dsn, dsn)

    assert record == found == every_field_record("full")
    assert list(timeline) == [EVERY_FIELD_ENTRY]
