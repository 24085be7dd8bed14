"""A page over twenty SQL sources holds no more database connections at once than the
gateway's ``limits.source_connections``, and answers the same."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from gateway.config import GatewayConfig
from sources import CaseFilter, CaseOrder, SourceSettings
from sources._budget import ConnectionBudget
from sources.sql import SqlSource
from tests.conftest import serving
from tests.resolvers.test_coverage import ask, twenty_offices


def with_budget(config: GatewayConfig, limit: int | None) -> GatewayConfig:
    return replace(config, limits=config.limits.model_copy(update={"source_connections": limit}))


async def test_twenty_sources_share_a_budget_of_three_connections(tmp_path: Path) -> None:
    config = twenty_offices(tmp_path)
    async with serving(with_budget(config, 3)) as bounded, serving(config) as free:
        bounded_answer = await ask(bounded, {"first": 30})
        free_answer = await ask(free, {"first": 30})
        assert bounded_answer["data"] == free_answer["data"]
        assert len(bounded_answer["data"]["cases"]["edges"]) == 30
        assert bounded.gateway.connections.peak == 3
        # without a budget all twenty are in use at once: the bound above is the budget's
        assert free.gateway.connections.peak > 3
        assert bounded.gateway.connections.in_use == free.gateway.connections.in_use == 0


def test_a_budget_serves_one_event_loop_after_another() -> None:
    """Tests (and a restarted gateway) run several event loops in turn: in each, two reads
    contend for one slot (the second waits: the semaphore binds to that loop)."""
    budget = ConnectionBudget(1)

    async def contend() -> None:
        async def hold() -> None:
            async with budget.slot():
                await asyncio.sleep(0)  # let the other read try for the slot meanwhile

        await asyncio.gather(hold(), hold())

    asyncio.run(contend())
    asyncio.run(contend())
    assert (budget.peak, budget.in_use) == (1, 0)


async def opened_and_idle(office: SourceSettings, overflow: int) -> tuple[int, int]:
    """Connections opened by three reads at once, and those left open after."""
    source = SqlSource(office.model_copy(update={"pool_size": 1, "pool_overflow": overflow}))
    await source.open()
    engine = source._engine_or_create()
    connects: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_: connects.append(1))
    await engine.dispose()  # from none open, so every connection is counted
    pages = await asyncio.gather(
        *(source.search_cases(CaseFilter(), CaseOrder(), None, 5) for _ in range(3))
    )
    assert [len(page) for page in pages] == [5, 5, 5]
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    idle = pool.checkedin()
    await source.close()
    return len(connects), idle


async def test_overflow_opens_under_demand_and_keeps_only_pool_size_idle(tmp_path: Path) -> None:
    """``pool_size: 1, pool_overflow: 2``: three reads at once open three connections; once
    answered, one stays open. Without overflow the three share the one."""
    office = twenty_offices(tmp_path).sources[0]
    assert await opened_and_idle(office, 2) == (3, 1)
    assert await opened_and_idle(office, 0) == (1, 1)
