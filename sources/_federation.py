"""Many sources seen as one: concurrent pages and counts, merged in the global order."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sources._errors import SourceError
from sources._interface import Source
from sources._model import CaseRecord
from sources._query import CaseFilter, CaseOrder, Position, SortField
from sources._stats import CaseStats, Dimension, merge_stats

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """Merged cases, whether more follow, and the sources that failed while fetching them."""

    records: list[CaseRecord]
    has_next: bool
    failures: list[SourceError] = field(default_factory=list)


def sort_value(record: CaseRecord, order: CaseOrder) -> datetime:
    return record.updated_at if order.field is SortField.UPDATED_AT else record.received_at


class Federation:
    """The configured sources, each asked only when a filter can match it."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self.sources: dict[str, Source] = {source.id: source for source in sources}

    def get(self, source_id: str) -> Source | None:
        return self.sources.get(source_id)

    def only_source_of(self, agency: str) -> Source | None:
        """The agency's one source; None when it has none or several (a reference another
        agency's system records for it then names no case the gateway can find)."""
        found = [source for source in self.sources.values() if source.agency.code == agency]
        return found[0] if len(found) == 1 else None

    async def referred_by(self, agency: str) -> frozenset[tuple[str, str]]:
        """(source id, local id) of every case ``agency``'s own systems record handing on to an
        agency with one source: one call to each of its sources that ``lists_referrals``, all
        at once. A failure of any of them raises its SourceError, never a partial set."""
        listing = [
            source
            for source in self.sources.values()
            if source.agency.code == agency and source.capabilities.lists_referrals
        ]
        answers = await asyncio.gather(*(source.referred_references() for source in listing))
        owners = {source.agency.code for source in self.sources.values()}
        receiving = {code: only.id for code in owners if (only := self.only_source_of(code))}
        return frozenset(
            (receiving[target], reference)
            for pairs in answers
            for target, reference in pairs
            if target in receiving
        )

    def matching(self, where: CaseFilter) -> list[Source]:
        """Sources that can hold a matching case; the others cost no round trip at all."""
        return [
            source
            for source in self.sources.values()
            if (where.sources is None or source.id in where.sources)
            and (where.agencies is None or source.agency.code in where.agencies)
        ]

    async def page(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        first: int,
        fields: frozenset[str] | None = None,
    ) -> Page:
        """The next ``first`` cases after ``after``, one statement per source, all at once.

        Each source returns at most ``first + 1`` rows past the position, so the merge knows
        whether a next page exists without a second round trip. ``fields``: the record fields
        the caller will read, None for all (``Source.search_cases``); the merge reads only the
        order's field, which every record holds.
        """
        streams, failures = await _settle(
            source.search_cases(where, order, after, first + 1, fields)
            for source in self.matching(where)
        )
        if len(streams) == 1:  # one source asked (a filter on it): already in order
            records = streams[0][: first + 1]
        else:
            merged = heapq.merge(
                *streams,
                key=lambda record: (sort_value(record, order), record.source),
                reverse=order.descending,
            )
            records = [record for _, record in zip(range(first + 1), merged, strict=False)]
        return Page(records[:first], len(records) > first, failures)

    async def count(self, where: CaseFilter) -> tuple[int, list[SourceError]]:
        """Matching cases summed over the sources that answered, and those that did not."""
        counts, failures = await _settle(
            source.count_cases(where) for source in self.matching(where)
        )
        return sum(counts), failures

    async def stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> tuple[CaseStats, list[SourceError]]:
        """Every matching source's buckets, one call each, all at once, merged exactly."""
        parts, failures = await _settle(
            source.case_stats(where, dimensions, now) for source in self.matching(where)
        )
        return merge_stats(dimensions, parts), failures

    async def close(self) -> None:
        await asyncio.gather(*(source.close() for source in self.sources.values()))


async def _settle(calls: Iterable[Awaitable[T]]) -> tuple[list[T], list[SourceError]]:
    """Run calls concurrently; the results of those that succeeded, and the source errors.

    Anything other than a :class:`SourceError` is a bug and propagates. One call (a filter
    on one source) is awaited as it is, without the task ``gather`` makes for it.
    """
    awaitables = list(calls)
    if len(awaitables) == 1:
        try:
            return [await awaitables[0]], []
        except SourceError as error:
            return [], [error]
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    values: list[T] = []
    failures: list[SourceError] = []
    for result in results:
        if isinstance(result, SourceError):
            failures.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            values.append(result)
    return values, failures
