"""Batching is the point of the design: round trips grow with depth and sources, not page size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from gateway.config import GatewayConfig
from resolvers.loaders import Loaders
from sources import CaseFilter, CaseOrder
from tests.conftest import DemoData, RunningGateway, running
from tests.postgres import create_database, drop_database
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
)

# Sources whose page carries its cases' timelines (CaseRecord.timeline): PostgreSQL in the page's
# statement, the 1111 API and the Open311 platform in their list's items.
CARRYING = (POSTGRES_SOURCE, REST_SOURCE, OPEN311_SOURCE)

NESTED = """
query Nested($first: Int) {
  cases(first: $first) {
    edges { node {
      id title status channel isOverdue
      category { code nameTh }
      location { province { nameTh } district { nameEn } subdistrict { nameTh } }
      owningAgency { code }
      source { id }
      timeline { at status sourceStatus note }
    } }
  }
}
"""


async def round_trips_for(
    gateway: RunningGateway, first: int, operation: str | None = None
) -> dict[str, float]:
    before = {s: gateway.round_trips(s, operation) for s in ALL_SOURCES}
    body = await gateway.query(NESTED, {"first": first})
    assert "errors" not in body
    assert len(body["data"]["cases"]["edges"]) == first
    assert all(edge["node"]["timeline"] for edge in body["data"]["cases"]["edges"])
    return {s: gateway.round_trips(s, operation) - before[s] for s in before}


@pytest.mark.parametrize("first", [10, 500])
async def test_round_trips_do_not_grow_with_page_size(gateway: RunningGateway, first: int) -> None:
    """Per source, at most two searches (a merged page tops up a source whose rows are still
    in contention: sources/_federation.py) and one timeline batch, whatever the page size;
    a source whose pages carry their cases' timelines (CaseRecord.timeline) needs no timeline
    batch."""
    searches = await round_trips_for(gateway, first, "search_cases")
    timelines = await round_trips_for(gateway, first, "load_timelines")
    assert all(1 <= n <= 2 for n in searches.values()), searches
    assert timelines == dict.fromkeys(CARRYING, 0) | {SQLITE_SOURCE: 1}


def _timeline_batch_sizes(gateway: RunningGateway) -> dict[str, float]:
    histogram = gateway.gateway.metrics.source_batch_size
    return {
        sample.labels["source"]: sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if sample.name.endswith("_sum") and sample.labels["operation"] == "load_timelines"
    }


async def test_timeline_batch_carries_every_case_of_the_page(gateway: RunningGateway) -> None:
    """Each case's timeline comes in one batch of its source, or with its page."""
    before = _timeline_batch_sizes(gateway)
    body = await gateway.query(NESTED, {"first": 100})
    edges = body["data"]["cases"]["edges"]
    carried = sum(1 for edge in edges if _source_of(edge) in CARRYING)
    after = _timeline_batch_sizes(gateway)
    batched = {s: after.get(s, 0) - before.get(s, 0) for s in after}
    assert all(batched.get(source, 0) == 0 for source in CARRYING) and carried > 0
    assert batched.get(SQLITE_SOURCE, 0) > 0
    assert sum(batched.values()) + carried == 100


def _source_of(edge: dict[str, Any]) -> str:
    return str(edge["node"]["source"]["id"])


async def test_nodes_by_id_are_batched_per_source(gateway: RunningGateway) -> None:
    page = await gateway.query("{ cases(first: 60) { edges { node { id } } } }")
    ids = [edge["node"]["id"] for edge in page["data"]["cases"]["edges"]]
    config = gateway.gateway.config
    # 60 aliased lookups: more than the default alias limit allows one document
    fresh = await running(
        replace(config, limits=config.limits.model_copy(update={"max_aliases": 100}))
    )
    try:
        before = {s: fresh.round_trips(s, "load_cases") for s in ALL_SOURCES}
        aliases = " ".join(
            f'c{i}: case(id: "{node_id}") {{ id title }}' for i, node_id in enumerate(ids)
        )
        body = await fresh.query("{ " + aliases + " }")
        assert [body["data"][f"c{i}"]["id"] for i in range(len(ids))] == ids
        after = {s: fresh.round_trips(s, "load_cases") for s in before}
        assert {s: after[s] - before[s] for s in before} == dict.fromkeys(ALL_SOURCES, 1)
    finally:
        await fresh.client.aclose()
        await fresh.gateway.stop()


@pytest.fixture
async def two_postgres_agencies(
    demo_data: DemoData, postgres_admin_dsn: str
) -> AsyncIterator[tuple[GatewayConfig, list[str]]]:
    """The demo's PostgreSQL agency plus a second copy of it in another database."""
    from gateway.demo import asyncpg_url
    from samples import damrongdhama

    second = await create_database(postgres_admin_dsn)
    await damrongdhama.create_and_load(second, count=50)
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    copy = pg.model_copy(update={"id": "damrongdhama-copy", "url": asyncpg_url(second)})
    config = GatewayConfig(
        demo_data.config.categories, (pg, copy), demo_data.config.limits, auth=demo_data.config.auth
    )
    yield config, [demo_data.postgres_dsn, second]
    await drop_database(postgres_admin_dsn, second)


async def test_sources_are_queried_concurrently_not_in_turn(
    two_postgres_agencies: tuple[GatewayConfig, list[str]], postgres_admin_dsn: str
) -> None:
    """Both agencies' tables are locked; only concurrent queries can both be waiting at once."""
    config, dsns = two_postgres_agencies
    gateway = await running(config)
    lockers = [await asyncpg.connect(dsn) for dsn in dsns]
    try:
        for locker in lockers:
            await locker.execute("BEGIN; LOCK TABLE complaints IN ACCESS EXCLUSIVE MODE")
        query = asyncio.create_task(gateway.query("{ cases(first: 5) { edges { node { id } } } }"))
        monitor = await asyncpg.connect(postgres_admin_dsn)
        try:
            async with asyncio.timeout(20):
                while (
                    await monitor.fetchval(
                        "SELECT count(DISTINCT datname) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query LIKE '%complaints%' "
                        "AND datname = ANY($1::text[])",
                        [dsn.partition("?")[0].rsplit("/", 1)[1] for dsn in dsns],
                    )
                    < 2
                ):
                    assert not query.done(), "the query finished while both tables were locked"
                    await asyncio.sleep(0.02)  # polling a condition, with a deadline above
        finally:
            await monitor.close()
        for locker in lockers:
            await locker.execute("ROLLBACK")
        body = await query
        assert "errors" not in body
        assert len(body["data"]["cases"]["edges"]) == 5
    finally:
        for locker in lockers:
            await locker.close()
        await gateway.client.aclose()
        await gateway.gateway.stop()


async def test_cases_a_page_brought_are_looked_up_without_a_round_trip(
    gateway: RunningGateway,
) -> None:
    """``prime_cases`` keeps a page's records; a lookup of one of them asks no source, a
    lookup of any other goes through the source's loader."""
    federation = gateway.gateway.federation
    source = federation.get(POSTGRES_SOURCE)
    assert source is not None
    records = await source.search_cases(CaseFilter(), CaseOrder(), None, 6)
    page, elsewhere = records[:5], records[5]
    loaders = Loaders(federation)
    loaders.prime_cases(page)
    before = gateway.round_trips(POSTGRES_SOURCE, "load_cases")
    assert [await loaders.case(POSTGRES_SOURCE, r.local_id) for r in page] == page
    assert gateway.round_trips(POSTGRES_SOURCE, "load_cases") == before
    assert await loaders.case(POSTGRES_SOURCE, elsewhere.local_id) == elsewhere
    assert gateway.round_trips(POSTGRES_SOURCE, "load_cases") == before + 1
