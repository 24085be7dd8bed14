"""Pools sized by demand under one budget: many PostgreSQL sources never hold more connections
open than ``limits.source_connections`` under load, and none once they have been idle for
``limits.source_idle_seconds`` (counted by the server itself, in pg_stat_activity)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.pool import QueuePool

from gateway.auth import AnonymousSettings, AuthSettings
from gateway.config import GatewayConfig
from gateway.demo import demo_config
from resolvers.access import Role
from samples import damrongdhama
from sources import CaseFilter, CaseOrder
from sources._budget import ConnectionBudget
from sources.sql import SqlSource
from tests.conftest import serving
from tests.postgres import create_database, drop_database, sqlalchemy_url
from tests.resolvers.test_coverage import twenty_offices

SOURCES = 30
PAGE = "{ cases(first: 20) { totalCount edges { node { id title timeline { status } } } } }"


@pytest.fixture
async def database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A database of its own, so that only this test's connections are counted in it."""
    dsn = await create_database(postgres_admin_dsn, "cg_pools")
    await damrongdhama.create_and_load(dsn, count=60)
    yield dsn
    await drop_database(postgres_admin_dsn, dsn)


def many_sources(dsn: str, tmp: Any, *, same_url: bool, budget: int | None) -> GatewayConfig:
    """``SOURCES`` copies of the demo's PostgreSQL agency over one database. Apart from
    ``same_url``, each URL differs (a driver option of no effect), as separate databases'
    would: their pools cannot be shared, only bounded."""
    demo = demo_config(dsn, tmp / "unused.sqlite", "http://x", "http://y")
    (agency,) = [s for s in demo.sources if s.id == "damrongdhama"]
    base = sqlalchemy_url(dsn)
    sources = tuple(
        agency.model_copy(
            update={
                "id": f"copy-{index:02d}",
                "url": base if same_url else f"{base}?prepared_statement_cache_size={100 + index}",
                "pool_size": 2,
                "referrals": None,
                "notify_channel": None,
                "complainant": None,
            }
        )
        for index in range(SOURCES)
    )
    limits = demo.limits.model_copy(
        update={"source_connections": budget, "source_idle_seconds": 0.3, "rate_limit": None}
    )
    return replace(
        demo,
        sources=sources,
        limits=limits,
        auth=AuthSettings(
            key_store=f"sqlite+aiosqlite:///{tmp / 'keys.sqlite'}",
            anonymous=AnonymousSettings(role=Role.INSPECTOR),
        ),
    )


class ServerCount:
    """Connections the server has open to the database, sampled while work runs."""

    def __init__(self, admin: asyncpg.Connection, database: str) -> None:
        self.admin = admin
        self.database = database
        self.samples: list[int] = []

    async def now(self) -> int:
        value = await self.admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.database
        )
        return int(value)

    async def during(self, work: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(work)
        while not task.done():
            self.samples.append(await self.now())
        return await task

    async def falls_to(self, target: int, within: float) -> bool:
        ends = time.monotonic() + within
        while time.monotonic() < ends:
            if await self.now() <= target:
                return True
            await asyncio.sleep(0.05)  # polling the server's count, not waiting for an event
        return False


async def load(gateway: Any, rounds: int = 3, callers: int = 4) -> None:
    async def caller() -> None:
        for _ in range(rounds):
            body = await gateway.query(PAGE)
            assert "errors" not in body, body["errors"]
            assert len(body["data"]["cases"]["edges"]) == 20

    await asyncio.gather(*(caller() for _ in range(callers)))


async def count_of(database_dsn: str, admin_dsn: str) -> tuple[asyncpg.Connection, ServerCount]:
    admin = await asyncpg.connect(admin_dsn)  # to another database: not counted itself
    return admin, ServerCount(admin, database_dsn.rsplit("/", 1)[1])


async def test_thirty_pools_stay_within_the_budget_and_close_when_idle(
    database: str, postgres_admin_dsn: str, tmp_path: Any
) -> None:
    """Thirty sources on thirty URLs, two connections each allowed: sixty without a budget.
    Under four callers' pages the server never sees more than the budget of five; once
    idle, every connection is closed."""
    admin, server = await count_of(database, postgres_admin_dsn)
    try:
        config = many_sources(database, tmp_path, same_url=False, budget=5)
        async with serving(config) as running:
            await server.during(load(running))
            assert 0 < max(server.samples) <= 5
            assert running.gateway.connections.peak_open <= 5
            assert await server.falls_to(0, within=10)
    finally:
        await admin.close()


async def test_without_the_budget_the_same_load_opens_more(
    database: str, postgres_admin_dsn: str, tmp_path: Any
) -> None:
    """The bound above is the budget's: without it the pools open more than five."""
    admin, server = await count_of(database, postgres_admin_dsn)
    try:
        config = many_sources(database, tmp_path, same_url=False, budget=None)
        async with serving(config) as running:
            await server.during(load(running, rounds=2))
            assert max(server.samples) > 5
            assert running.gateway.connections.peak_open > 5
            assert await server.falls_to(0, within=10)  # idle pools close without a budget too
    finally:
        await admin.close()


async def test_sources_reading_one_database_share_one_pool(
    database: str, postgres_admin_dsn: str, tmp_path: Any
) -> None:
    """Thirty sources with one URL: one pool of two connections serves them all."""
    admin, server = await count_of(database, postgres_admin_dsn)
    try:
        config = many_sources(database, tmp_path, same_url=True, budget=None)
        async with serving(config) as running:
            await server.during(load(running))
            assert 0 < max(server.samples) <= 2
            assert running.gateway.connections.pools == 1
    finally:
        await admin.close()


async def test_a_full_budget_closes_the_pool_used_longest_ago(tmp_path: Any) -> None:
    """A budget of two, three SQLite offices read one after another: the third read closes
    the first office's idle connection, not the second's, and never holds three."""
    offices = twenty_offices(tmp_path).sources[:3]
    budget = ConnectionBudget(2, idle_seconds=60)
    sources = []
    for office in offices:
        source = SqlSource(office.model_copy(update={"pool_size": 1}))
        source.budget = budget
        sources.append(source)

    def idle(source: SqlSource) -> int:
        pool = source._engine_or_create().sync_engine.pool
        assert isinstance(pool, QueuePool)
        return pool.checkedin()

    try:
        for source in sources:
            assert len(await source.search_cases(CaseFilter(), CaseOrder(), None, 3)) == 3
            assert budget.open_connections() <= 2
        assert [idle(source) for source in sources] == [0, 1, 1]
        await sources[1].search_cases(CaseFilter(), CaseOrder(), None, 1)  # now the newest
        await sources[0].search_cases(CaseFilter(), CaseOrder(), None, 1)
        assert [idle(source) for source in sources] == [1, 1, 0]
        assert budget.peak_open == 2
    finally:
        for source in sources:
            await source.close()
    assert budget.pools == 0


async def test_the_connection_returned_last_is_lent_next(
    database: str, postgres_admin_dsn: str, tmp_path: Any
) -> None:
    """A pool of three opened by three reads at once, then reads one after another: each is
    served by the connection the one before gave back (LIFO), whose prepared statements are
    warm, rather than by each connection in turn."""
    demo = demo_config(database, tmp_path / "unused.sqlite", "http://x", "http://y")
    (agency,) = [s for s in demo.sources if s.id == "damrongdhama"]
    source = SqlSource(agency.model_copy(update={"url": sqlalchemy_url(database), "pool_size": 3}))
    admin = await asyncpg.connect(postgres_admin_dsn)
    name = database.rsplit("/", 1)[1]

    async def started() -> dict[int, Any]:
        rows = await admin.fetch(
            "SELECT pid, query_start FROM pg_stat_activity WHERE datname = $1", name
        )
        return {row["pid"]: row["query_start"] for row in rows}

    try:
        page = (CaseFilter(), CaseOrder(), None, 5)
        await asyncio.gather(*(source.search_cases(*page) for _ in range(3)))
        before = await started()
        assert len(before) >= 2, "three reads at once opened more than one connection"
        for _ in range(6):
            await source.search_cases(*page)
        after = await started()
        used = [pid for pid in after if after[pid] != before.get(pid)]
        assert len(used) == 1, used
    finally:
        await source.close()
        await admin.close()
