"""One search through a list for every kind that reads its cases as pages of a list
(sources/_pushdown.py ``ListedSearch``): ``kind: rest`` and ``kind: graphql`` share it, and a kind
of the same shape gets the same reading: nothing asked when its vocabulary matches nothing,
pages read until, in order, enough have passed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from sources import CanonicalStatus, CaseFilter, CaseOrder, Position
from sources._abilities import Listed
from sources._pushdown import ListedSearch
from sources.graphql import GraphQLSource
from sources.rest import RestSource
from tests.contract.minimal import MinimalBackend, record_of

PAGE = 4


class _Vocabulary:
    def matches_nothing(self, where: CaseFilter) -> bool:
        return where.statuses == frozenset()


class PagedKind(ListedSearch, MinimalBackend):
    """The fixture agency as a list in received order, newest first, ``PAGE`` cases a page."""

    def __init__(self) -> None:
        super().__init__()
        self.records = _Vocabulary()
        self.pages_read = 0

    def _sort(self, order: CaseOrder) -> tuple[bool, object]:
        return order == CaseOrder(), None

    async def list_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        read: frozenset[str] | None,
        asked: frozenset[str] | None,
        wanted: int | None,
    ) -> AsyncGenerator[Sequence[Listed], None]:
        records = sorted(map(record_of, self.cases), key=CaseOrder().key, reverse=True)
        none: frozenset[str] = frozenset()
        for start in range(0, len(records), PAGE):
            self.pages_read += 1
            yield [(record, none) for record in records[start : start + PAGE]]


def test_the_http_kinds_search_through_the_one_listed_search() -> None:
    for kind in (RestSource, GraphQLSource):
        assert kind.search_cases is ListedSearch.search_cases
        assert kind.lists_in_order is ListedSearch.lists_in_order


async def test_a_filter_the_vocabulary_never_matches_reads_nothing() -> None:
    kind = PagedKind()
    assert await kind.search_cases(CaseFilter(statuses=frozenset()), CaseOrder(), None, 5) == []
    assert kind.pages_read == 0


async def test_a_list_in_order_is_read_until_enough_pass_and_one_out_of_order_to_the_end() -> None:
    kind = PagedKind()
    newest = sorted(map(record_of, kind.cases), key=CaseOrder().key, reverse=True)
    assert kind.lists_in_order(CaseOrder())
    found = await kind.search_cases(CaseFilter(), CaseOrder(), None, PAGE + 1)
    assert found == newest[: PAGE + 1]
    assert kind.pages_read == 2  # the second page gave more than enough: no third

    oldest_first = CaseOrder(descending=False)
    assert not kind.lists_in_order(oldest_first)
    kind.pages_read = 0
    found = await kind.search_cases(CaseFilter(), oldest_first, None, 2)
    assert found == newest[::-1][:2]
    assert kind.pages_read == -(-len(newest) // PAGE)  # every page: any may hold the oldest

    received = CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED}))
    kind.pages_read = 0
    found = await kind.search_cases(received, CaseOrder(), None, 100)
    assert found and all(r.status == CanonicalStatus.RECEIVED for r in found)
