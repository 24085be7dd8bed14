"""totalCount over many sources: a count per source and filter reused for a configured time,
never across callers' access scopes, never when it failed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from sources import AgencyAccess, CanonicalStatus, CaseFilter, Federation
from sources._errors import SourceUnavailable
from tests.sources.test_federation_merge import MemorySource, record


class Counting(MemorySource):
    """Counts its count round trips; its count is whatever ``total`` holds now."""

    def __init__(self, source_id: str) -> None:
        super().__init__(source_id, [record(source_id, "001", 0, 0)])
        self.counts = 0
        self.total = 7
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def count_cases(self, where: CaseFilter) -> int:
        self.counts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise SourceUnavailable(self.id, "down")
        return self.total


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def federation(seconds: Mapping[str, float], clock: Clock, *sources: Counting) -> Federation:
    return Federation(sources, count_cache_seconds=seconds, clock=clock)


def test_a_count_is_reused_for_its_seconds_then_counted_again() -> None:
    clock = Clock()
    cached, plain = Counting("cached"), Counting("plain")
    fed = federation({"cached": 5.0}, clock, cached, plain)

    async def run() -> None:
        where = CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED}))
        assert await fed.count(where) == (14, [])
        cached.total = plain.total = 9  # changes within the window are not seen by `cached`
        clock.now += 4.9
        # a new request's "now" (as_of) does not make a new key
        assert await fed.count(replace_as_of(where)) == (7 + 9, [])
        assert (cached.counts, plain.counts) == (1, 2)  # 0 seconds (the default): never kept
        clock.now += 0.2
        assert await fed.count(where) == (18, [])
        assert cached.counts == 2

    asyncio.run(run())


def replace_as_of(where: CaseFilter) -> CaseFilter:
    return replace(where, as_of=datetime.now(UTC))


def test_another_filter_or_another_callers_scope_is_counted_afresh() -> None:
    """The access scope is part of the key: one agency's count never answers another."""
    clock = Clock()
    source = Counting("s")
    fed = federation({"s": 60.0}, clock, source)

    async def run() -> None:
        mine = CaseFilter(access=AgencyAccess("A"))
        theirs = CaseFilter(access=AgencyAccess("B"))
        referred = CaseFilter(access=AgencyAccess("A", frozenset({("s", "001")})))
        await fed.count(mine)
        source.total = 3
        assert await fed.count(theirs) == (3, [])
        assert await fed.count(referred) == (3, [])
        assert await fed.count(CaseFilter()) == (3, [])
        assert await fed.count(CaseFilter(text="x")) == (3, [])
        assert source.counts == 5
        assert await fed.count(mine) == (7, [])  # still the first answer
        assert source.counts == 5

    asyncio.run(run())


def test_a_failed_count_is_not_kept() -> None:
    clock = Clock()
    source = Counting("s")
    fed = federation({"s": 60.0}, clock, source)

    async def run() -> None:
        source.failing = True
        total, failures = await fed.count(CaseFilter())
        assert total == 0 and [f.source for f in failures] == ["s"]
        source.failing = False
        assert await fed.count(CaseFilter()) == (7, [])
        assert source.counts == 2

    asyncio.run(run())


def test_concurrent_counts_of_one_key_share_one_round_trip() -> None:
    clock = Clock()
    source = Counting("s")
    fed = federation({"s": 60.0}, clock, source)

    async def run() -> None:
        source.gate = asyncio.Event()
        waiting = [asyncio.create_task(fed.count(CaseFilter())) for _ in range(5)]
        await asyncio.sleep(0)
        source.gate.set()
        assert [await task for task in waiting] == [(7, [])] * 5
        assert source.counts == 1

    asyncio.run(run())


def test_a_cancelled_count_leaves_the_others_their_own() -> None:
    """The request that counts is cancelled (its client left): one waiting on it counts."""
    clock = Clock()
    source = Counting("s")
    fed = federation({"s": 60.0}, clock, source)

    async def run() -> None:
        source.gate = asyncio.Event()
        counting = asyncio.create_task(fed.count(CaseFilter()))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(fed.count(CaseFilter()))
        await asyncio.sleep(0)
        counting.cancel()
        await asyncio.sleep(0)
        source.gate.set()
        assert await waiting == (7, [])
        assert counting.cancelled()

    asyncio.run(run())


def test_an_estimate_reuses_a_count_for_its_seconds_while_exact_counts_stay_exact() -> None:
    """No ``count_cache_seconds``: every exact count is a round trip; an estimate answers
    from the last count of the same filter younger than ``count_estimate_seconds``."""
    clock = Clock()
    source = Counting("s")
    fed = Federation([source], clock=clock, count_estimate_seconds={"s": 30.0})

    async def run() -> None:
        where = CaseFilter()
        assert await fed.count(where, estimate=True) == (7, [])  # none yet: counted
        source.total = 8
        clock.now += 29
        assert await fed.count(replace_as_of(where), estimate=True) == (7, [])
        assert source.counts == 1
        assert await fed.count(where) == (8, [])  # exact: counted, whatever is kept
        source.total = 9
        assert await fed.count(where, estimate=True) == (8, [])  # the exact count, kept
        assert await fed.count(CaseFilter(text="x"), estimate=True) == (9, [])  # another filter
        assert source.counts == 3
        clock.now += 30.1
        assert await fed.count(where, estimate=True) == (9, [])  # too old: counted again
        assert source.counts == 4

    asyncio.run(run())


def test_an_estimate_of_zero_seconds_counts_every_time() -> None:
    clock = Clock()
    source = Counting("s")
    fed = Federation([source], clock=clock, count_estimate_seconds={"s": 0.0})

    async def run() -> None:
        for _ in range(3):
            assert await fed.count(CaseFilter(), estimate=True) == (7, [])
        assert source.counts == 3

    asyncio.run(run())
