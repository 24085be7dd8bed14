"""A page read with its referrals (``"referrals"`` among the fields), and a batch of cases loaded
with their relations (``load_cases_carrying``), carry each case's referrals (and timeline) in
their own round trip on PostgreSQL, equal to what ``load_referrals`` (``load_timelines``)
answers; a source without referrals carries none anywhere; whatever cannot be carried, or is
refused, is left to the loaders."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.demo import asyncpg_url
from sources import CaseFilter, CaseOrder, ReferralKind, SourceBadResponse
from sources import sql as sql_module
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute
from tests.sources.test_sql_embedded_timeline import (
    LOG_ROWS,
    THIRD_CASE,
    count_statements,
    dsn_of,
)
from tests.sources.test_sql_mapping import (
    FULL_CASES_TABLE,
    FULL_CASES_TABLE_POSTGRESQL,
    FULL_CONFIG,
)
from tests.sources.test_sql_projection import EVERY_FIELD_ROW, SECOND_CASE, opened

REFERRING_CONFIG = FULL_CONFIG.replace(
    "    vocabulary:\n",
    "    referrals:\n"
    "      {table: hand, case_id: case_id, to_agency: agency, at: at, kind: how, status: state,\n"
    "       their_reference: theirs, secrecy: secret}\n"
    "    vocabulary:\n"
    "      agencies: {ddc: MOI-DDC, city: BMA-TRAFFY}\n"
    "      referral_kinds: {fwd: FORWARD, up: ESCALATE}\n",
)
"""The every-field source, with a table of referrals (no tie breaker)."""

HAND_TABLE = (
    "CREATE TABLE hand (case_id BIGINT, agency TEXT, at TIMESTAMPTZ, how TEXT, state TEXT,"
    " theirs TEXT, secret TEXT);"
)
HAND_ROWS = """
INSERT INTO hand VALUES (7, 'city', '2026-01-05 02:00:00+00', 'up', NULL, 'T-2', 'secret');
INSERT INTO hand VALUES (7, 'ddc', '2026-01-02 02:00:00+00', 'fwd', 'sent', 'D-1', NULL);
INSERT INTO hand VALUES (9, 'ddc', '2025-11-02 02:00:00+00', 'fwd', NULL, NULL, NULL);
"""
"""Case 7: two referrals, written out of order, each with values the other lacks; case 8:
none; case 9: one, with only the required values."""

REFERRALS = frozenset({"title", "referrals"})
BOTH = frozenset({"timeline", "referrals"})
IDS = ("7", "8", "9")


@contextlib.asynccontextmanager
async def postgres_source(
    admin_dsn: str, hand_table: str = HAND_TABLE, config: str = REFERRING_CONFIG
) -> AsyncIterator[SqlSource]:
    dsn = await create_database(admin_dsn)
    try:
        rows = f"INSERT INTO c VALUES {EVERY_FIELD_ROW}, {SECOND_CASE}, {THIRD_CASE};"
        log = "CREATE TABLE log (case_id BIGINT, at TIMESTAMPTZ, state TEXT, note TEXT);"
        await execute(
            dsn, FULL_CASES_TABLE_POSTGRESQL + rows + log + LOG_ROWS + hand_table + HAND_ROWS
        )
        url = asyncpg_url(dsn)
        async with opened(config.replace("sqlite+aiosqlite:///${DB}", url), {}) as source:
            yield source
    finally:
        await drop_database(admin_dsn, dsn)


@pytest.fixture
async def postgres(postgres_admin_dsn: str) -> AsyncIterator[SqlSource]:
    async with postgres_source(postgres_admin_dsn) as source:
        yield source


async def carried(source: SqlSource, fields: frozenset[str] | None) -> dict[str, object]:
    found = await source.search_cases(CaseFilter(), CaseOrder(), None, 10, fields)
    return {record.local_id: record.referrals for record in found}


async def loaded(source: SqlSource) -> dict[str, object]:
    """Each case's referrals as the loader's batch answers them (none: ``()``)."""
    found = await source.load_referrals(list(IDS))
    return {local_id: tuple(found.get(local_id, ())) for local_id in IDS}


async def test_a_page_read_with_its_referrals_carries_what_the_loader_answers(
    postgres: SqlSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_statements(postgres, monkeypatch)
    page = await carried(postgres, REFERRALS)
    assert len(sent) == 1
    assert page == await loaded(postgres)
    seven = page["7"]
    assert isinstance(seven, tuple)
    assert [
        (r.to_agency, r.at.day, r.kind, r.status, r.their_reference, r.secrecy) for r in seven
    ] == [
        ("MOI-DDC", 2, ReferralKind.FORWARD, "sent", "D-1", None),
        ("BMA-TRAFFY", 5, ReferralKind.ESCALATE, None, "T-2", "secret"),
    ]
    assert {r.from_source for r in seven} == {"full"} and {r.from_local_id for r in seven} == {"7"}
    assert page["8"] == ()  # none: carried as none, not "not read"


async def test_records_carry_referrals_only_when_asked(postgres: SqlSource) -> None:
    assert set((await carried(postgres, frozenset({"title"}))).values()) == {None}
    assert set((await carried(postgres, None)).values()) == {None}  # whole records
    found = await postgres.search_cases(CaseFilter(), CaseOrder(), None, 10, REFERRALS)
    # the rest of the record is the projection it was: the referrals are not a field
    assert found[0].projection is not None and "referrals" not in found[0].projection
    assert found[0].title == "the title" and found[0].description is None
    assert found[0].timeline is None


async def test_a_page_carries_timelines_and_referrals_together(postgres: SqlSource) -> None:
    found = await postgres.search_cases(CaseFilter(), CaseOrder(), None, 10, BOTH | {"title"})
    timelines = await postgres.load_timelines(list(IDS))
    assert {r.local_id: r.timeline for r in found} == {i: tuple(timelines.get(i, ())) for i in IDS}
    assert {r.local_id: r.referrals for r in found} == await loaded(postgres)


async def test_referrals_of_the_same_time_come_in_one_order_either_way(
    postgres: SqlSource,
) -> None:
    """Without a tie breaker, referrals of one time are ordered by their other values, in
    the page's referrals and the loader's batch alike."""
    same = "'2025-11-03 00:00:00+00'"
    await execute(
        dsn_of(postgres),
        f"INSERT INTO hand VALUES (9, 'ddc', {same}, 'up', 'b', NULL, NULL);"
        f"INSERT INTO hand VALUES (9, 'city', {same}, 'fwd', 'z', NULL, NULL);"
        f"INSERT INTO hand VALUES (9, 'ddc', {same}, 'fwd', 'a', NULL, NULL);",
    )
    page = await carried(postgres, REFERRALS)
    assert page == await loaded(postgres)
    nine = page["9"]
    assert isinstance(nine, tuple)
    assert [(r.to_agency, r.kind, r.status) for r in nine[1:]] == [
        ("BMA-TRAFFY", ReferralKind.FORWARD, "z"),
        ("MOI-DDC", ReferralKind.FORWARD, "a"),
        ("MOI-DDC", ReferralKind.ESCALATE, "b"),
    ]


async def test_referrals_that_do_not_map_are_left_to_the_loader(postgres: SqlSource) -> None:
    """A referral without a time: case 7's carried referrals do not map, so its record
    carries none, and the loader, asked instead, reports the error naming the source."""
    await execute(dsn_of(postgres), "INSERT INTO hand VALUES (7, 'ddc', NULL, 'fwd');")
    page = await carried(postgres, REFERRALS)
    assert page["7"] is None
    nine = page["9"]
    assert isinstance(nine, tuple) and len(nine) == 1  # the others map as before
    with pytest.raises(SourceBadResponse, match=r"referrals\.at is NoneType"):
        await postgres.load_referrals(["7"])


async def test_a_page_whose_referrals_the_database_refuses_still_arrives(
    postgres: SqlSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The referrals table gone: the page is read again without its carried relations (its
    cases arrive), and the loader, asked for them, fails naming the source. The refusal is
    not sent again with the next pages (nor batches of cases) for a while."""
    assert (await carried(postgres, REFERRALS))["7"]  # carried, before
    await execute(dsn_of(postgres), "DROP TABLE hand;")
    sent = count_statements(postgres, monkeypatch)
    page = await carried(postgres, REFERRALS)
    assert page == {"7": None, "8": None, "9": None}
    assert len(sent) == 2  # refused, then without them
    assert await carried(postgres, REFERRALS) == page
    assert len(sent) == 3  # one statement: no referrals asked meanwhile
    cases = await postgres.load_cases_carrying(list(IDS), BOTH)
    assert len(sent) == 4 and {r.referrals for r in cases.values()} == {None}
    with pytest.raises(SourceBadResponse, match="database refused the query"):
        await postgres.load_referrals(["7"])
    await execute(dsn_of(postgres), HAND_TABLE)
    monkeypatch.setattr(sql_module, "CARRY_TIMELINES_AGAIN_AFTER", 0.0)
    postgres._carry_after = 0.0  # as when the while has passed
    assert (await carried(postgres, REFERRALS))["7"] == ()


async def test_cases_loaded_with_their_relations_carry_what_the_loaders_answer(
    postgres: SqlSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of cases by id, carrying timelines and referrals: one statement, whole records
    equal to ``load_cases``' but for what they carry, which equals the loaders' answers."""
    sent = count_statements(postgres, monkeypatch)
    found = await postgres.load_cases_carrying([*IDS, "404", "x"], BOTH)
    assert len(sent) == 1
    assert sorted(found) == list(IDS)
    plain = await postgres.load_cases(list(IDS))
    timelines = await postgres.load_timelines(list(IDS))
    referrals = await loaded(postgres)
    for local_id, record in found.items():
        assert record.projection is None
        assert record.timeline == tuple(timelines.get(local_id, ()))
        assert record.referrals == referrals[local_id]
        # the rest is the plain record's, field by field
        assert replace(record, timeline=None, referrals=None) == plain[local_id]
    assert found["8"].referrals == () and found["8"].timeline == ()
    only = await postgres.load_cases_carrying(["7"], frozenset({"referrals"}))
    assert only["7"].timeline is None and only["7"].referrals == referrals["7"]


async def test_cases_whose_relations_are_refused_still_arrive(
    postgres: SqlSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await postgres.load_cases_carrying(["7"], BOTH))["7"].timeline  # carried, before
    await execute(dsn_of(postgres), "DROP TABLE log;")
    sent = count_statements(postgres, monkeypatch)
    found = await postgres.load_cases_carrying(list(IDS), BOTH)
    assert len(sent) == 2  # refused, then the plain batch
    assert found == await postgres.load_cases(list(IDS))
    assert {(r.timeline, r.referrals) for r in found.values()} == {(None, None)}
    await postgres.load_cases_carrying(list(IDS), BOTH)
    assert len(sent) == 4  # (the comparison's batch, then) one: not carried meanwhile


async def test_a_source_without_referrals_carries_none_anywhere(
    postgres_admin_dsn: str, tmp_path: Path
) -> None:
    """No referrals mapped: every case's carried referrals are none, what ``load_referrals``
    answers, on PostgreSQL and on SQLite alike, at no cost of a statement of their own."""
    async with postgres_source(postgres_admin_dsn, config=FULL_CONFIG) as source:
        assert set((await carried(source, REFERRALS)).values()) == {()}
        assert await source.load_referrals(list(IDS)) == {}
        found = await source.load_cases_carrying(list(IDS), BOTH)
        assert {r.referrals for r in found.values()} == {()}
        assert found["7"].timeline is not None and len(found["7"].timeline) == 3
    path = tmp_path / "full.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            FULL_CASES_TABLE
            + f"INSERT INTO c VALUES {EVERY_FIELD_ROW.replace('+00', '')};"
            + "CREATE TABLE log (case_id INTEGER, at DATETIME, state TEXT, note TEXT);"
        )
    async with opened(FULL_CONFIG, {"DB": str(path)}) as source:
        assert await carried(source, REFERRALS) == {"7": ()}
        found = await source.load_cases_carrying(["7"], BOTH)
        assert found["7"].referrals == () and found["7"].timeline is None


async def test_other_databases_leave_referrals_to_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            FULL_CASES_TABLE
            + f"INSERT INTO c VALUES {EVERY_FIELD_ROW.replace('+00', '')};"
            + "CREATE TABLE log (case_id INTEGER, at DATETIME, state TEXT, note TEXT);"
            + HAND_TABLE.replace("TIMESTAMPTZ", "DATETIME")
            + HAND_ROWS.replace("+00'", ".000000'")
        )
    async with opened(REFERRING_CONFIG, {"DB": str(path)}) as source:
        assert await carried(source, REFERRALS) == {"7": None}
        found = await source.load_cases_carrying(["7"], BOTH)
        assert found == await source.load_cases(["7"])
        assert len((await source.load_referrals(["7"]))["7"]) == 2


async def test_a_referral_column_of_the_databases_own_type_is_left_to_the_loader(
    postgres_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind of an enum type: asyncpg decodes it in a column of its own, not inside the
    anonymous row a carried referral is, so none are carried and the loader answers."""
    hand = (
        "CREATE TYPE how AS ENUM ('fwd', 'up');"
        "CREATE TABLE hand (case_id BIGINT, agency TEXT, at TIMESTAMPTZ, how how, state TEXT,"
        " theirs TEXT, secret TEXT);"
    )
    async with postgres_source(postgres_admin_dsn, hand) as source:
        sent = count_statements(source, monkeypatch)
        assert set((await carried(source, REFERRALS)).values()) == {None}
        assert len(sent) == 1  # not refused: never asked
        assert [r.kind for r in (await source.load_referrals(["7"]))["7"]] == [
            ReferralKind.FORWARD,
            ReferralKind.ESCALATE,
        ]
