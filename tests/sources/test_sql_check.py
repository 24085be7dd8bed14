"""``complaint-graph check`` sends every kind of statement a SQL source sends while serving
(sources/sql/_check.py): page (by received and by updated time), count, batch, timelines,
referrals, complainants, statistics. Shown by databases that refuse some of them: the
Damrongdhama Center's PostgreSQL database read by a role missing privileges (on every
table, on one table, on a few columns), and the Khon Kaen office's SQLite file taken for
PostgreSQL. Each refusal is named by its statement kind; what is granted passes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.demo import demo_config
from samples import damrongdhama, provincial
from sources import Problem
from sources._settings import SourceSettings
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute, run

PAGES = {"page (RECEIVED_AT)", "page (UPDATED_AT)"}
BATCH_CARRYING = "batch of cases with timelines and referrals"
CARRYING = {"page with timelines and referrals", BATCH_CARRYING}
EVERY_KIND = {
    *PAGES,
    "page with timelines and referrals",  # the centre's pages embed each case's relations
    "batch of cases with timelines and referrals",  # so does a batch of cases by id
    "count",
    "batch of cases",
    "timelines",
    "referrals",
    "complainants",
    "statistics",
}
COMPLAINANT_COLUMNS = (
    "complainant_name",
    "complainant_cid",
    "complainant_phone",
    "complainant_address",
    "anonymous",
    "confidential",
    "complainant_key",
)


def demo_sources(dsn: str, sqlite_path: Path) -> dict[str, SourceSettings]:
    unused = "http://127.0.0.1:9"  # the HTTP agencies are not checked here
    return {s.id: s for s in demo_config(dsn, sqlite_path, unused, unused).sources}


async def check(settings: SourceSettings) -> list[Problem]:
    source = SqlSource(settings)
    try:
        return await source.check()
    finally:
        await source.close()


def refused_kinds(problems: list[Problem]) -> dict[str, str]:
    """Statement kind -> the database's reason, from check's "the X statement was refused"
    (or "failed", for one the driver could not even compile)."""
    found: dict[str, str] = {}
    for problem in problems:
        assert problem.key == "dialect", problem
        match = re.fullmatch(r"the (.+) statement (?:was refused|failed): (.+)", problem.problem)
        assert match is not None, problem
        found[match[1]] = match[2]
    return found


@pytest.fixture
def centre(postgres_admin_dsn: str) -> Iterator[tuple[str, str]]:
    """The centre's database (10 cases) and a login role of its own that may connect and
    read the catalog (reflection) but, until a test grants it, no table."""
    dsn = run(create_database(postgres_admin_dsn, prefix="cg_check"))
    run(damrongdhama.create_and_load(dsn, count=10))
    role = f"cg_check_{uuid.uuid4().hex[:10]}"
    run(execute(postgres_admin_dsn, f"CREATE ROLE {role} LOGIN"))
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    role_dsn = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
    try:
        yield dsn, role_dsn
    finally:
        run(drop_database(postgres_admin_dsn, dsn))
        run(execute(postgres_admin_dsn, f"DROP ROLE IF EXISTS {role}"))


def centre_settings(role_dsn: str, tmp_path: Path) -> SourceSettings:
    settings = demo_sources(role_dsn, tmp_path / "unused.sqlite")["damrongdhama"]
    return settings.model_copy(update={"notify_channel": None})  # check installs nothing


def role_of(role_dsn: str) -> str:
    return urlsplit(role_dsn).netloc.partition("@")[0]


async def test_a_role_that_may_read_nothing_is_refused_every_kind_each_named(
    centre: tuple[str, str], tmp_path: Path
) -> None:
    _, role_dsn = centre
    refused = refused_kinds(await check(centre_settings(role_dsn, tmp_path)))
    assert set(refused) == EVERY_KIND
    assert all("permission denied" in reason for reason in refused.values()), refused
    assert "complaint_status_log" in refused["timelines"]
    assert "complaint_referrals" in refused["referrals"]


async def test_a_role_that_may_read_everything_passes(
    centre: tuple[str, str], tmp_path: Path
) -> None:
    dsn, role_dsn = centre
    await execute(dsn, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role_of(role_dsn)}")
    assert await check(centre_settings(role_dsn, tmp_path)) == []


async def case_columns(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'complaints'"
        )
    finally:
        await connection.close()
    return [row["column_name"] for row in rows]


@pytest.mark.parametrize(
    ("table", "columns_withheld", "kinds"),
    [
        ("complaint_status_log", (), {"timelines", *CARRYING}),
        # the statistics count referred cases
        ("complaint_referrals", (), {"referrals", "statistics", *CARRYING}),
        ("complaints", COMPLAINANT_COLUMNS, {"complainants"}),
        # The updated-time page orders by it, and every statement that selects a case's
        # columns selects it too; the count and the statistics read none of it.
        ("complaints", ("updated_at",), {*PAGES, "batch of cases", BATCH_CARRYING}),
    ],
    ids=["timeline-table", "referrals-table", "complainant-columns", "updated-column"],
)  # fmt: skip
async def test_each_kind_is_named_by_what_it_reads(
    centre: tuple[str, str],
    tmp_path: Path,
    table: str,
    columns_withheld: tuple[str, ...],
    kinds: set[str],
) -> None:
    """Everything granted but one table, or a few of the case table's columns: only the
    kinds that read them are refused, each by name."""
    dsn, role_dsn = centre
    role = role_of(role_dsn)
    await execute(dsn, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    await execute(dsn, f"REVOKE SELECT ON {table} FROM {role}")
    if columns_withheld:
        granted = [c for c in await case_columns(dsn) if c not in columns_withheld]
        await execute(dsn, f"GRANT SELECT ({', '.join(granted)}) ON {table} TO {role}")
    refused = refused_kinds(await check(centre_settings(role_dsn, tmp_path)))
    assert set(refused) == kinds, refused
    assert all("permission denied" in reason for reason in refused.values()), refused


async def test_sqlite_taken_for_postgresql_is_refused_the_functions_it_lacks(
    tmp_path: Path,
) -> None:
    """The Khon Kaen office's SQLite file, declared to speak PostgreSQL's SQL: the statements
    that use PostgreSQL's functions are refused by name, those that use none pass."""
    path = tmp_path / "provincial.sqlite"
    provincial.create_and_load(path, count=10)
    settings = demo_sources("postgresql://unused@127.0.0.1/unused", path)["khonkaen-office"]
    assert await check(settings) == []  # as configured: every kind passes
    refused = refused_kinds(await check(settings.model_copy(update={"dialect": "postgresql"})))
    assert set(refused) == EVERY_KIND - {"referrals"}, refused  # the office records none
    assert "no such function: date_trunc" in refused["statistics"]
    for kind in ("page (RECEIVED_AT)", "count", "batch of cases", "timelines", "complainants"):
        assert "no such function: ANY" in refused[kind], refused  # PostgreSQL's = ANY(:keys)
