"""A merged page reads a share of each source and tops up only where rows are in contention:
differentially the same pages as asking every source for the whole page, on random data."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sources import (
    AgencyInfo,
    Capabilities,
    CaseFilter,
    CaseOrder,
    CaseRecord,
    Federation,
    Position,
    Problem,
    SortField,
    Source,
)
from sources._errors import SourceUnavailable
from sources._federation import sort_value
from sources._model import CanonicalStatus, Channel, TimelineEntry

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def record(source: str, local_id: str, minutes: int, updated: int) -> CaseRecord:
    return CaseRecord(
        source=source,
        local_id=local_id,
        reference_number=local_id,
        title="t",
        description="d",
        channel=Channel.WEB,
        category="X",
        source_category="X",
        status=CanonicalStatus.RECEIVED,
        source_status="r",
        received_at=BASE + timedelta(minutes=minutes),
        updated_at=BASE + timedelta(minutes=updated),
        due_at=None,
        closed_at=None,
    )


class MemorySource(Source):
    """Rows in memory, sorted and cut by keyset as an SQL backend does; counts its reads."""

    kind = "memory"

    def __init__(
        self, source_id: str, records: list[CaseRecord], seeks: bool = True, fails_after: int = -1
    ) -> None:
        self.id = source_id
        self.agency = AgencyInfo("A", "a", "a")
        self.records = records
        self.seeks = seeks
        self.fails_after = fails_after  # the read after this many fails (-1: never)
        self.reads: list[tuple[int, frozenset[str] | None]] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(pushed_down_filters=frozenset(), seeks_by_keyset=self.seeks)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        return {r.local_id: r for r in self.records if r.local_id in local_ids}

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        if len(self.reads) == self.fails_after:
            self.reads.append((limit, fields))
            raise SourceUnavailable(self.id, "down")
        self.reads.append((limit, fields))
        await asyncio.sleep(0)  # other sources run meanwhile, as over a network
        rows = sorted(
            (r for r in self.records if order.is_after(r, after)),
            key=order.key,
            reverse=order.descending,
        )
        return rows[:limit]

    async def count_cases(self, where: CaseFilter) -> int:
        return len(self.records)

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        return {}

    async def check(self) -> list[Problem]:
        return []


async def simple_page(
    sources: Sequence[Source], order: CaseOrder, after: Position | None, first: int
) -> tuple[list[CaseRecord], bool]:
    """The reference: every source asked for ``first + 1`` rows, all merged (the algorithm
    before shares and top-ups). A source that fails contributes nothing."""
    streams = []
    for source in sources:
        try:
            streams.append(await source.search_cases(CaseFilter(), order, after, first + 1))
        except SourceUnavailable:
            continue
    merged = heapq.merge(
        *streams,
        key=lambda r: (sort_value(r, order), r.source),
        reverse=order.descending,
    )
    records = [r for _, r in zip(range(first + 1), merged, strict=False)]
    return records[:first], len(records) > first


def ids(records: Sequence[CaseRecord]) -> list[tuple[str, str]]:
    return [(r.source, r.local_id) for r in records]


sources_data = st.lists(
    st.lists(  # per source: (minutes, updated minutes); few values, so many ties
        st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=14
    ),
    min_size=2,
    max_size=7,
)


def build(data: list[list[tuple[int, int]]], seeks: list[bool]) -> list[MemorySource]:
    return [
        MemorySource(
            f"s{index}",
            [record(f"s{index}", f"{n:03d}", m, u) for n, (m, u) in enumerate(rows)],
            seeks[index % len(seeks)],
        )
        for index, rows in enumerate(data)
    ]


@settings(max_examples=150, deadline=None)
@given(
    data=sources_data,
    first=st.integers(0, 9),
    descending=st.booleans(),
    field=st.sampled_from(list(SortField)),
    seeks=st.lists(st.booleans(), min_size=1, max_size=3),
)
def test_every_page_equals_the_simple_merge(
    data: list[list[tuple[int, int]]],
    first: int,
    descending: bool,
    field: SortField,
    seeks: list[bool],
) -> None:
    """Walk every page, cursor at each page's last row (ties of sort value across and within
    sources included); each page and hasNextPage as the reference gives them."""
    sources = build(data, seeks)
    federation = Federation(sources)
    order = CaseOrder(field, descending)

    async def walk() -> None:
        after: Position | None = None
        for _ in range(200):
            page = await federation.page(CaseFilter(), order, after, first)
            expected, has_next = await simple_page(sources, order, after, first)
            assert ids(page.records) == ids(expected)
            assert page.has_next == has_next
            if not page.has_next or not page.records:
                return
            last = page.records[-1]
            after = Position(sort_value(last, order), last.source, last.local_id)

    asyncio.run(walk())


@settings(max_examples=100, deadline=None)
@given(data=sources_data, first=st.integers(0, 9), pick=st.integers(0, 200))
def test_a_page_after_any_row_equals_the_simple_merge(
    data: list[list[tuple[int, int]]], first: int, pick: int
) -> None:
    """Cursors anywhere, not only where our own pages ended."""
    sources = build(data, [True])
    everything = [r for s in sources for r in s.records]
    order = CaseOrder()
    after = None
    if everything:
        chosen = everything[pick % len(everything)]
        after = Position(chosen.received_at, chosen.source, chosen.local_id)

    async def compare() -> None:
        page = await Federation(sources).page(CaseFilter(), order, after, first)
        expected, has_next = await simple_page(sources, order, after, first)
        assert (ids(page.records), page.has_next) == (ids(expected), has_next)

    asyncio.run(compare())


@settings(max_examples=100, deadline=None)
@given(
    data=sources_data, first=st.integers(1, 9), failing=st.integers(0, 6), when=st.integers(0, 1)
)
def test_a_source_failing_in_either_round_contributes_nothing(
    data: list[list[tuple[int, int]]], first: int, failing: int, when: int
) -> None:
    """A source that fails in round one or at its top-up leaves the page, as with the simple
    merge; the page then is the simple merge of the others."""
    sources = build(data, [True])
    sick = sources[failing % len(sources)]
    sick.fails_after = when
    order = CaseOrder()

    async def compare() -> None:
        page = await Federation(sources).page(CaseFilter(), order, None, first)
        failed = [error.source for error in page.failures]
        sick.fails_after = -1  # the reference reads it afresh when it did not fail
        healthy = [s for s in sources if s.id not in failed]
        expected, has_next = await simple_page(healthy, order, None, first)
        assert (ids(page.records), page.has_next) == (ids(expected), has_next)
        assert all(r.source not in failed for r in page.records)

    asyncio.run(compare())


def test_twenty_sources_read_about_one_page_not_twenty() -> None:
    """20 sources of 50 interleaved cases each, a page of 20: round one asks each for
    ceil(21 / 20) + 2 = 4 rows, with the fields asked (timelines too); a top-up only where rows
    are in contention.
    The simple merge would read 20 x 21 = 420 rows."""
    sources = [
        MemorySource(
            f"s{i:02d}", [record(f"s{i:02d}", f"{n:03d}", n * 20 + i, 0) for n in range(50)]
        )
        for i in range(20)
    ]
    federation = Federation(sources)
    fields = frozenset({"title", "timeline"})

    async def read() -> None:
        page = await federation.page(CaseFilter(), CaseOrder(), None, 20, fields)
        # interleaved: each source's 4 rows rank i, i + 20, ...: none is in contention
        assert [s.reads for s in sources] == [[(4, fields)]] * 20
        assert page.reads == 20
        expected, _ = await simple_page(sources, CaseOrder(), None, 20)
        assert ids(page.records) == ids(expected)

    asyncio.run(read())


def test_a_source_holding_the_newest_rows_is_topped_up_once() -> None:
    """One source holds all the newest cases: round one reads 4 of its rows, they all rank
    in the page, so it alone is asked again, for the 21 - 4 rows that could still make it;
    the others are not asked twice."""
    hot = MemorySource("hot", [record("hot", f"{n:03d}", 1000 + n, 0) for n in range(40)])
    cold = [
        MemorySource(f"c{i:02d}", [record(f"c{i:02d}", f"{n:03d}", n, 0) for n in range(40)])
        for i in range(19)
    ]
    fields = frozenset({"title", "timeline"})

    async def read() -> None:
        page = await Federation([hot, *cold]).page(CaseFilter(), CaseOrder(), None, 20, fields)
        assert hot.reads == [(4, fields), (17, fields)]
        assert all(len(s.reads) == 1 for s in cold)
        assert page.reads == 21
        assert [r.source for r in page.records] == ["hot"] * 20 and page.has_next

    asyncio.run(read())
