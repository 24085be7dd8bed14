"""Many sources seen as one: concurrent pages and counts, merged in the global order."""

from __future__ import annotations

import asyncio
import functools
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar, cast

from sources._abilities import AsksTogether, TogetherKey
from sources._coverage import ANYTHING, Coverage
from sources._errors import SourceError
from sources._interface import Source
from sources._model import CaseRecord
from sources._query import CaseFilter, CaseOrder, Position, SortField
from sources._stats import CaseStats, Dimension, merge_stats

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """Merged cases, whether more follow, and the sources that failed while fetching them.

    ``asked``: the sources the page read from, in the order asked; ``skipped``: how many
    others a filter or their declared coverage ruled out; ``reads``: round trips made (a
    source topped up is asked twice)."""

    records: list[CaseRecord]
    has_next: bool
    failures: list[SourceError] = field(default_factory=list)
    asked: tuple[str, ...] = ()
    skipped: int = 0
    reads: int = 0


def sort_value(record: CaseRecord, order: CaseOrder) -> datetime:
    return record.updated_at if order.field is SortField.UPDATED_AT else record.received_at


PlanObserver = Callable[[str, int, int], None]
"""Called with (operation, sources asked, sources skipped) for every federated operation."""

READ_MARGIN = 2
"""Rows each source is asked for beyond its even share of a merged page, in the first round."""


class Federation:
    """The configured sources, each asked only when a filter can match it."""

    def __init__(
        self,
        sources: Iterable[Source],
        coverage: Mapping[str, Coverage] | None = None,
        count_cache_seconds: Mapping[str, float] | None = None,
        observe_plan: PlanObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        count_estimate_seconds: Mapping[str, float] | None = None,
    ) -> None:
        self.sources: dict[str, Source] = {source.id: source for source in sources}
        self.coverage: dict[str, Coverage] = dict(coverage or {})
        self.observe_plan = observe_plan
        estimates = {
            source: count_estimate_seconds.get(source, DEFAULT_ESTIMATE_SECONDS)
            if count_estimate_seconds is not None
            else DEFAULT_ESTIMATE_SECONDS
            for source in self.sources
        }
        self.counts = CountCache(count_cache_seconds or {}, estimates, clock)
        self.together: dict[str, AsksTogether] = {
            source.id: source
            for source in self.sources.values()
            if isinstance(source, AsksTogether)
        }
        """Sources that may be asked with others on their database (:meth:`groups`)."""

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
        """Sources that can hold a matching case: named by the filter's sources and agencies,
        and whose declared coverage does not rule it out. The others cost no round trip."""
        return [
            source
            for source in self.sources.values()
            if (where.sources is None or source.id in where.sources)
            and (where.agencies is None or source.agency.code in where.agencies)
            and self.coverage.get(source.id, ANYTHING).can_match(where)
        ]

    def plan(self, operation: str, where: CaseFilter) -> list[Source]:
        """:meth:`matching`, reported to the observer (the /metrics counters)."""
        asked = self.matching(where)
        if self.observe_plan is not None:
            self.observe_plan(operation, len(asked), len(self.sources) - len(asked))
        return asked

    def groups(self, asked: Sequence[Source]) -> list[list[Source]]:
        """The sources of ``asked`` asked together, two or more reading one database with the
        same columns (``AsksTogether.together_key``), each group sorted by source id."""
        if not self.together:
            return []
        found: dict[TogetherKey, list[Source]] = {}
        for source in asked:
            together = self.together.get(source.id)
            key = together.together_key() if together is not None else None
            if key is not None:
                found.setdefault(key, []).append(source)
        return [sorted(group, key=_by_id) for group in found.values() if len(group) > 1]

    async def page(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        first: int,
        fields: frozenset[str] | None = None,
    ) -> Page:
        """The next ``first`` cases after ``after``, merged from every source that can match.

        One source asked (a filter or coverage names one) reads ``first + 1`` rows: the extra
        row says whether a next page exists. Several are read as :func:`merged_page` does:
        a little from each, then more only from those whose rows may still make the page.
        ``fields``: the record fields the caller will read, None for all
        (``Source.search_cases``); the merge reads only the order's field.
        """
        asked = self.plan("page", where)
        skipped = len(self.sources) - len(asked)
        ids = tuple(source.id for source in asked)
        if len(asked) <= 1:
            streams, failures = await _settle(
                source.search_cases(where, order, after, first + 1, fields) for source in asked
            )
            records = streams[0][: first + 1] if streams else []
            return Page(records[:first], len(records) > first, failures, ids, skipped, len(asked))
        records, failures, reads = await merged_page(
            asked, where, order, after, first, fields, self.groups(asked)
        )
        return Page(records[:first], len(records) > first, failures, ids, skipped, reads)

    async def count(
        self, where: CaseFilter, estimate: bool = False
    ) -> tuple[int, list[SourceError]]:
        """Matching cases summed over the sources that answered, and those that did not.

        A source with ``count_cache_seconds`` answers from a count of the same filter (the
        caller's access included) made at most that long ago. With ``estimate``, from one
        made at most its ``count_estimate_seconds`` ago: a page after page of a dashboard
        then costs each source one count in that time, not one a page."""
        asked = self.plan("count", where)
        plain = replace(where, as_of=None)
        fresh = [s for s in asked if self.counts.needs_count(s, where, estimate, plain)]
        ask: dict[str, Callable[[], Awaitable[int]]] = {}
        for group in self.groups(fresh) if len(fresh) > 1 else []:
            together = _GroupCount(group, where)
            for rank, member in enumerate(group):
                ask[member.id] = functools.partial(together.count_of, rank)
        counts, failures = await _settle(
            self.counts.count(source, where, estimate, ask.get(source.id), plain)
            for source in asked
        )
        return sum(counts), failures

    async def stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> tuple[CaseStats, list[SourceError]]:
        """Every matching source's buckets, one call each, all at once, merged exactly."""
        asked = self.plan("stats", where)
        groups = self.groups(asked) if len(asked) > 1 else []
        grouped = {member.id for group in groups for member in group}
        answered = await asyncio.gather(
            _settle_each(
                (source, source.case_stats(where, dimensions, now))
                for source in asked
                if source.id not in grouped
            ),
            *(_group_stats(group, where, dimensions, now) for group in groups),
        )
        settled = [pair for pairs in answered for pair in pairs]
        parts = [result for _, result in settled if isinstance(result, CaseStats)]
        failures = [result for _, result in settled if isinstance(result, SourceError)]
        return merge_stats(dimensions, parts), failures

    async def close(self) -> None:
        await asyncio.gather(*(source.close() for source in self.sources.values()))


async def merged_page(
    sources: Sequence[Source],
    where: CaseFilter,
    order: CaseOrder,
    after: Position | None,
    first: int,
    fields: frozenset[str] | None,
    groups: Sequence[Sequence[Source]] = (),
) -> tuple[list[CaseRecord], list[SourceError], int]:
    """The first ``first + 1`` cases after ``after`` in the global order over ``sources``,
    exactly those that asking every source for ``first + 1`` rows and merging would give, the
    sources that failed, and the round trips made.

    Each of ``groups`` (sources of ``sources`` on one database, :meth:`Federation.groups`) is
    one statement answering the group's own first ``first + 1`` rows (:func:`_group_page`):
    exact for the group, so its members need no second round. The others are read so:

    Round one asks each source that seeks by keyset (``Capabilities.seeks_by_keyset``) for
    its even share of the page and a margin, any other for the whole page. A source that
    returned fewer rows than asked has none left. Any other whose last row read comes before
    the page's cut (the ``first + 1``-th row merged so far; every row, if fewer were read)
    may hold unread rows that belong in the page: round two asks just those for the rows
    after their last one, as many as could still make the page (``first + 1`` minus the
    rank of their last row). That is enough: such a source either runs out or its new last
    row ranks ``first + 1`` or later, and rows added elsewhere only push it further back, so
    no third round is needed. A source that fails in any round contributes no rows, as when
    every source is asked once.

    Both rounds read timelines where the source carries them in the page (``"timeline"`` in
    ``fields``): leaving them out of round one would cost a timeline batch, one more round
    trip, at every source with a case in the page (measured at 30 PostgreSQL sources: 80
    round trips a page instead of 60), while carrying them costs mapping those of about
    ``2n`` rows more than the page's own.
    """
    want = first + 1
    grouped = {member.id for group in groups for member in group}
    alone = [source for source in sources if source.id not in grouped]
    even = -(-want // (len(alone) + len(groups))) + READ_MARGIN
    shares = {
        source.id: min(want, even) if source.capabilities.seeks_by_keyset else want
        for source in alone
    }
    rounds = await asyncio.gather(
        _alone_page(alone, where, order, after, shares, fields),
        *(_group_page(group, where, order, after, want, fields) for group in groups),
    )
    settled = [pair for answered, _ in rounds for pair in answered]
    reads = sum(made for _, made in rounds)
    failures = [result for _, result in settled if isinstance(result, SourceError)]
    streams: dict[str, list[CaseRecord]] = {}
    open_ended: dict[str, Source] = {}
    for source, result in settled:
        if isinstance(result, list):
            streams[source.id] = result
            if source.id in shares and len(result) >= shares[source.id]:
                open_ended[source.id] = source

    top = _merge(streams.values(), order, want)
    while wanted := dict(_contention(streams, open_ended, top, order, want)):
        topped = await _settle_each(
            (
                open_ended[source_id],
                open_ended[source_id].search_cases(
                    where, order, _position(streams[source_id][-1], order), limit, fields
                ),
            )
            for source_id, limit in wanted.items()
        )
        reads += len(wanted)
        for source, result in topped:
            if isinstance(result, SourceError):
                failures.append(result)
                del streams[source.id]
                del open_ended[source.id]
            else:
                streams[source.id] = streams[source.id] + result
                if len(result) < wanted[source.id]:
                    del open_ended[source.id]
        top = _merge(streams.values(), order, want)
    return top, failures, reads


Settled = list[tuple[Source, list[CaseRecord] | SourceError]]


async def _alone_page(
    sources: Sequence[Source],
    where: CaseFilter,
    order: CaseOrder,
    after: Position | None,
    shares: Mapping[str, int],
    fields: frozenset[str] | None,
) -> tuple[Settled, int]:
    """Round one of the sources asked one by one: each for its share."""
    settled = await _settle_each(
        (source, source.search_cases(where, order, after, shares[source.id], fields))
        for source in sources
    )
    return settled, len(sources)


async def _group_page(
    group: Sequence[Source],
    where: CaseFilter,
    order: CaseOrder,
    after: Position | None,
    want: int,
    fields: frozenset[str] | None,
) -> tuple[Settled, int]:
    """Each member's rows among the group's first ``want`` after ``after``, from one statement,
    and the round trips made. Should the statement fail (a member's table gone, a timeout),
    each member is asked alone for ``want`` rows, as exact, through its own guard: each
    failure is then its own source's, and the others' rows still arrive."""
    members = _together(group)
    leader = members[0]
    try:
        rows = await leader.search_together(members, where, order, after, want, fields)
    except SourceError:
        alone = await _settle_each(
            (member, member.search_cases(where, order, after, want, fields)) for member in group
        )
        return alone, 1 + len(group)
    return [(member, rows[rank]) for rank, member in enumerate(group)], 1


async def _group_stats(
    group: Sequence[Source], where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
) -> list[tuple[Source, CaseStats | SourceError]]:
    """Each member's buckets from one statement; should it fail, each member's own call."""
    members = _together(group)
    leader = members[0]
    try:
        found = await leader.stats_together(members, where, dimensions, now)
    except SourceError:
        return await _settle_each(
            (member, member.case_stats(where, dimensions, now)) for member in group
        )
    return [(member, found[rank]) for rank, member in enumerate(group)]


class _GroupCount:
    """One statement counting for a group's members, sent when the first of them needs it
    (a member answered from the count cache meanwhile takes no part). Should it fail, each
    member counts alone, through its own guard."""

    def __init__(self, group: Sequence[Source], where: CaseFilter) -> None:
        self.group = group
        self.where = where
        self.asked: asyncio.Future[list[int] | None] | None = None

    async def count_of(self, rank: int) -> int:
        if self.asked is None:
            self.asked = asyncio.ensure_future(self._ask())
            self.asked.add_done_callback(_retrieved)
        counts = await asyncio.shield(self.asked)  # one member's cancellation is not all's
        if counts is None:
            return await self.group[rank].count_cases(self.where)
        return counts[rank]

    async def _ask(self) -> list[int] | None:
        members = _together(self.group)
        leader = members[0]
        try:
            return await leader.count_together(members, self.where)
        except SourceError:
            return None


def _together(group: Sequence[Source]) -> list[AsksTogether]:
    """A group's members as what they are: :meth:`Federation.groups` took them from
    ``Federation.together`` (no protocol check a member: at a hundred it showed in profiles)."""
    return cast(list[AsksTogether], list(group))


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _by_id(source: Source) -> str:
    return source.id


def _merge(streams: Iterable[list[CaseRecord]], order: CaseOrder, limit: int) -> list[CaseRecord]:
    """The first ``limit`` records of ordered streams, merged in the global order (within a
    source, its own order: (value, source) ties only there, and ``heapq.merge`` is stable)."""
    merged = heapq.merge(
        *streams,
        key=lambda record: (sort_value(record, order), record.source),
        reverse=order.descending,
    )
    return [record for _, record in zip(range(limit), merged, strict=False)]


def _contention(
    streams: Mapping[str, list[CaseRecord]],
    open_ended: Mapping[str, Source],
    top: list[CaseRecord],
    order: CaseOrder,
    want: int,
) -> list[tuple[str, int]]:
    """(source id, rows to ask) for every source with unread rows that may make the page."""
    cut = top[want - 1] if len(top) >= want else None
    rank = {(record.source, record.local_id): index + 1 for index, record in enumerate(top)}
    wanted: list[tuple[str, int]] = []
    for source_id in open_ended:
        last = streams[source_id][-1]
        if cut is not None and not _before(last, cut, order):
            continue
        # ``last`` is in ``top``: it comes before the cut, or everything read is in ``top``.
        wanted.append((source_id, want - rank[(last.source, last.local_id)]))
    return wanted


def _before(record: CaseRecord, cut: CaseRecord, order: CaseOrder) -> bool:
    """Whether ``record`` comes strictly before ``cut`` of another source's rows; a source's
    own rows never come before the last it returned, so the same source is never before."""
    if record.source == cut.source:
        return False
    mine = (sort_value(record, order), record.source)
    theirs = (sort_value(cut, order), cut.source)
    return mine > theirs if order.descending else mine < theirs


def _position(record: CaseRecord, order: CaseOrder) -> Position:
    return Position(sort_value(record, order), record.source, record.local_id)


DEFAULT_ESTIMATE_SECONDS = 300.0
"""How old a count an estimate may reuse where a source's ``count_estimate_seconds`` is unset."""


@dataclass(slots=True)
class _Counted:
    made: float
    value: asyncio.Future[int]


class CountCache:
    """Counts per (source, filter): reused for the source's ``count_cache_seconds`` by every
    count, and for its ``count_estimate_seconds`` by estimates.

    The key is the whole filter but ``as_of`` (the request's "now", new on every request):
    the caller's access (``CaseFilter.access``) is part of it, so a count made for one
    agency's view never answers another's. Concurrent asks of the same key share one
    round trip. A failed count is never kept. An exact count is kept for estimates even
    where ``count_cache_seconds`` is 0, and is never answered from one older than that."""

    MAX_ENTRIES = 4096

    def __init__(
        self,
        seconds: Mapping[str, float],
        estimate_seconds: Mapping[str, float],
        clock: Callable[[], float],
    ) -> None:
        self.seconds = {source: ttl for source, ttl in seconds.items() if ttl > 0}
        self.estimate_seconds = {s: ttl for s, ttl in estimate_seconds.items() if ttl > 0}
        self.clock = clock
        self.entries: dict[tuple[str, CaseFilter], _Counted] = {}

    def needs_count(
        self,
        source: Source,
        where: CaseFilter,
        estimate: bool = False,
        plain: CaseFilter | None = None,
    ) -> bool:
        """Whether :meth:`count` would ask ``source`` now (nothing kept answers it).
        ``plain``: ``where`` without ``as_of``, when the caller has it already."""
        longest = max(self.seconds.get(source.id, 0.0), self.estimate_seconds.get(source.id, 0.0))
        if longest == 0:
            return True
        ttl = (self.estimate_seconds if estimate else self.seconds).get(source.id, 0.0)
        key = (source.id, plain if plain is not None else replace(where, as_of=None))
        entry = self.entries.get(key)
        return entry is None or (entry.made + ttl <= self.clock() and entry.value.done())

    async def count(
        self,
        source: Source,
        where: CaseFilter,
        estimate: bool = False,
        ask: Callable[[], Awaitable[int]] | None = None,
        plain: CaseFilter | None = None,
    ) -> int:
        """``ask``: how to count afresh (a statement shared with other sources on the same
        database, :meth:`Federation.count`); by default ``source.count_cases``. ``plain``:
        ``where`` without ``as_of``, when the caller has it already."""
        counting = ask if ask is not None else functools.partial(source.count_cases, where)
        ages = self.estimate_seconds if estimate else self.seconds
        longest = max(self.seconds.get(source.id, 0.0), self.estimate_seconds.get(source.id, 0.0))
        if longest == 0:
            return await counting()  # nothing kept for this source
        ttl = ages.get(source.id, 0.0)
        key = (source.id, plain if plain is not None else replace(where, as_of=None))
        now = self.clock()
        entry = self.entries.get(key)
        if entry is not None and (entry.made + ttl > now or not entry.value.done()):
            try:
                return await asyncio.shield(entry.value)
            except asyncio.CancelledError:
                if not entry.value.cancelled():
                    raise  # this request is being cancelled
                return await source.count_cases(where)  # the one counting was cancelled
        if len(self.entries) >= self.MAX_ENTRIES:
            self._drop_expired(now)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        counted = _Counted(now, future)
        self.entries[key] = counted
        try:
            value = await counting()
        except asyncio.CancelledError:
            self._forget(key, counted)
            future.cancel()
            raise
        except BaseException as error:
            self._forget(key, counted)
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when none waits
            raise
        future.set_result(value)
        return value

    def _forget(self, key: tuple[str, CaseFilter], counted: _Counted) -> None:
        if self.entries.get(key) is counted:
            del self.entries[key]

    def _drop_expired(self, now: float) -> None:
        for key in [
            k
            for k, entry in self.entries.items()
            if entry.value.done()
            and entry.made + max(self.seconds.get(k[0], 0.0), self.estimate_seconds.get(k[0], 0.0))
            <= now
        ]:
            del self.entries[key]
        while len(self.entries) >= self.MAX_ENTRIES:  # all fresh: drop the oldest made
            del self.entries[next(iter(self.entries))]


async def _settle_each(
    calls: Iterable[tuple[Source, Awaitable[T]]],
) -> list[tuple[Source, T | SourceError]]:
    """Run calls concurrently; each source with its result or its source error."""
    pairs = list(calls)
    results = await asyncio.gather(*(call for _, call in pairs), return_exceptions=True)
    settled: list[tuple[Source, T | SourceError]] = []
    for (source, _), result in zip(pairs, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, SourceError):
            raise result
        settled.append((source, result))
    return settled


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
