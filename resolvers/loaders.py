"""Per-request data loaders, one per source and relation: one round trip per source per level.

aiodataloader's contract holds: a batch function receives keys and returns values in key order,
``None`` for a miss. A source error fails every key of that batch, and so every field that waited
on it, each with the source's own error code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from sources import (
    CaseRecord,
    ComplainantRecord,
    Federation,
    ReferralRecord,
    Source,
    TimelineEntry,
)

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

BatchFunction = Callable[[list[K]], Coroutine[Any, Any, list[Any]]]
"""What aiodataloader calls with a batch of keys: their values, in key order."""


def mapped(future: asyncio.Future[V], convert: Callable[[V], T]) -> asyncio.Future[T]:
    """A future of ``convert(value)`` once ``future`` settles with ``value``; its error (or
    ``convert``'s) passed on. One callback where an ``async def`` would cost a coroutine, and
    under graphql-core a task, per value: a page asks it for each of its hundred cases."""
    converted: asyncio.Future[T] = future.get_loop().create_future()

    def settle(done: asyncio.Future[V]) -> None:
        if converted.done():  # cancelled meanwhile by whoever waited on it
            return
        if done.cancelled():
            converted.cancel()
            return
        error = done.exception()
        if error is not None:
            converted.set_exception(error)
            return
        try:
            converted.set_result(convert(done.result()))
        except Exception as failure:  # a conversion's error is the field's, as if awaited
            converted.set_exception(failure)

    future.add_done_callback(settle)
    return converted


def _batch(
    fetch: Callable[[Sequence[str]], Awaitable[Mapping[str, V]]], missing: Any
) -> BatchFunction[str]:
    async def load(keys: list[str]) -> list[Any]:
        found = await fetch(keys)
        return [found.get(key, missing) for key in keys]

    return load


def _grouped(
    ask: Callable[[str, list[str]], Awaitable[Mapping[str, Any]]], missing: Any
) -> BatchFunction[tuple[str, str]]:
    """A batch function over (group, item) keys: one ``ask(group, items)`` per group, all at
    once; the values in key order, ``missing`` for an item the answer lacks."""

    async def load(keys: list[tuple[str, str]]) -> list[Any]:
        by_group: dict[str, list[str]] = {}
        for group, item in keys:
            by_group.setdefault(group, []).append(item)
        groups = list(by_group)
        answers = await asyncio.gather(*(ask(group, by_group[group]) for group in groups))
        found = dict(zip(groups, answers, strict=True))
        return [found[group].get(item, missing) for group, item in keys]

    return load


_NONE: frozenset[str] = frozenset()


class ListLoader(DataLoader[K, V]):
    """aiodataloader's ``DataLoader``, with the futures of a list of keys in one call.

    A page of cases asks each case's timeline of the same loader; :meth:`load_list` gives
    one future per key (``load_many`` gives one future for all, and one key's failure would
    fail them all). Only aiodataloader's public ``load``: its cache, queue and dispatch stay
    its own business."""

    def load_list(self, keys: Sequence[K]) -> list[asyncio.Future[V]]:
        """``[self.load(key) for key in keys]``: a key loaded or queued before (in this list
        too) gives its future; the others join the batch."""
        load = self.load
        return [load(key) for key in keys]


class Loaders:
    """The request's loaders. ``batching=False`` is the benchmark's N+1 baseline: every load
    its own single-key round trip (the pattern batching exists to avoid), and no timelines
    carried by a page (resolvers/query.py), so bench/ can measure what batching saves. Never
    turn it off in production."""

    def __init__(self, federation: Federation, *, batching: bool = True) -> None:
        self.federation = federation
        self.batching = batching
        self._cases: dict[str, ListLoader[str, CaseRecord | None]] = {}
        self._carry: dict[str, frozenset[str]] = {}
        """By source, the relations the cases queued for its next batch will be read for."""
        self._by_reference: dict[str, ListLoader[str, CaseRecord | None]] = {}
        self._timelines: dict[str, ListLoader[str, Sequence[TimelineEntry]]] = {}
        self._referrals: dict[str, ListLoader[str, Sequence[ReferralRecord]]] = {}
        self._incoming: dict[str, ListLoader[tuple[str, str], Sequence[ReferralRecord]]] = {}
        self._complainants: DataLoader[tuple[str, str], ComplainantRecord | None] | None = None
        self._by_complainant: dict[str, ListLoader[str, Sequence[CaseRecord]]] = {}
        self._primed: list[Sequence[CaseRecord]] = []
        self._known: dict[tuple[str, str], CaseRecord] = {}

    def clear(self) -> None:
        """Forget everything loaded: the records go now, not when the cyclic garbage collector
        reaches the request's objects (strawberry's per-request objects refer to each other, so
        a finished request's context, and with it these caches, waits for a collection)."""
        families: list[dict[Any, ListLoader[Any, Any]]] = [
            self._cases,
            self._by_reference,
            self._timelines,
            self._referrals,
            self._incoming,
            self._by_complainant,
        ]
        for family in families:
            for loader in family.values():
                loader.clear_all()
            family.clear()
        if self._complainants is not None:
            self._complainants.clear_all()
            self._complainants = None
        self._primed.clear()
        self._known.clear()
        self._carry.clear()

    def _per_source(
        self,
        family: dict[str, ListLoader[K, V]],
        source_id: str,
        batch: Callable[[Source], BatchFunction[K]],
    ) -> ListLoader[K, V]:
        """``family``'s loader for ``source_id``, made on first use from ``batch(source)``."""
        loader = family.get(source_id)
        if loader is None:
            loader = ListLoader(batch_load_fn=batch(self._source(source_id)), batch=self.batching)
            family[source_id] = loader
        return loader

    def _source(self, source_id: str) -> Source:
        source = self.federation.get(source_id)
        if source is None:
            raise LookupError(source_id)
        return source

    def cases(self, source_id: str) -> ListLoader[str, CaseRecord | None]:
        """Loads ``CaseRecord | None`` by local id, each batch carrying the relations the
        lookups queued for it will read (:meth:`case`): the source is asked once for the ids,
        with every relation any of them named (``Source.load_cases_carrying``), so a case in
        full detail is one round trip where the source can carry them. What a record carries
        also answers the timeline and referral loaders (primed), so the other fields asking
        them (access, related cases) cost no round trip either. A case is loaded once per
        request, as the first lookups asked: a later one that reads a relation the record
        does not carry has the relation's loader asked."""
        return self._per_source(self._cases, source_id, self._carrying_batch)

    def _carrying_batch(self, source: Source) -> BatchFunction[str]:
        source_id = source.id

        async def load(keys: list[str]) -> list[CaseRecord | None]:
            carry = self._carry.pop(source_id, _NONE)
            if not carry:
                found = await source.load_cases(keys)
                return [found.get(key) for key in keys]
            found = await source.load_cases_carrying(keys, carry)
            for record in found.values():
                if record.timeline is not None:
                    self.timelines(source_id).prime(record.local_id, record.timeline)
                if record.referrals is not None:
                    self.referrals(source_id).prime(record.local_id, record.referrals)
            return [found.get(key) for key in keys]

        return load

    def cases_by_reference(self, source_id: str) -> ListLoader[str, CaseRecord | None]:
        """Loads ``CaseRecord | None`` by the agency's own case number (federation's key)."""
        return self._per_source(
            self._by_reference, source_id, lambda s: _batch(s.load_cases_by_reference, None)
        )

    def timelines(self, source_id: str) -> ListLoader[str, Sequence[TimelineEntry]]:
        """Loads ``Sequence[TimelineEntry]`` (empty when none) by local id."""
        return self._per_source(self._timelines, source_id, lambda s: _batch(s.load_timelines, ()))

    def referrals(self, source_id: str) -> ListLoader[str, Sequence[ReferralRecord]]:
        """Loads a case's outgoing referrals (empty when none) by local id."""
        return self._per_source(self._referrals, source_id, lambda s: _batch(s.load_referrals, ()))

    def complainants(self) -> DataLoader[tuple[str, str], ComplainantRecord | None]:
        """Loads a case's complainant by (source, local id); None when the source keeps no
        personal data. One loader across sources, so every complainant of a level arrives at
        once and the next level (``Complainant.cases``) is again one batch per source."""
        if self._complainants is None:

            def ask(source_id: str, local_ids: list[str]) -> Awaitable[Mapping[str, Any]]:
                return self._source(source_id).load_complainants(local_ids)

            self._complainants = DataLoader(batch_load_fn=_grouped(ask, None), batch=self.batching)
        return self._complainants

    def cases_by_complainant(self, source_id: str) -> ListLoader[str, Sequence[CaseRecord]]:
        """Loads one source's cases by the HMAC key of their complainant's citizen ID."""
        return self._per_source(
            self._by_complainant, source_id, lambda s: _batch(s.cases_by_complainant, ())
        )

    def incoming(self, source_id: str) -> ListLoader[tuple[str, str], Sequence[ReferralRecord]]:
        """Loads, from one source, its referrals to (agency code, that agency's case id)."""
        return self._per_source(
            self._incoming, source_id, lambda s: _grouped(s.find_referrals_to, ())
        )

    def prime_cases(self, records: Sequence[CaseRecord]) -> None:
        """Cases fetched by a page are known: later ``node``/``case`` lookups cost nothing.

        The list is kept as it is and indexed by the first such lookup: most pages have none,
        and priming the loader with each case (a future apiece) was 2% of the dashboard
        page's instructions. A record read for some fields only (``CaseRecord.projection``)
        is not known here: a lookup must give the whole case."""
        self._primed.append(records)

    async def case(
        self, source_id: str, local_id: str, carry: frozenset[str] = frozenset()
    ) -> CaseRecord | None:
        """A case by source and local id: one a page already brought, else from the source
        (through its loader, so the lookups of one level are one batch), carrying the
        relations ``carry`` names where the source can (:meth:`cases`; never in the N+1
        baseline, ``batching=False``)."""
        if self._primed:
            for records in self._primed:
                for record in records:
                    if record.projection is None:
                        self._known.setdefault((record.source, record.local_id), record)
            self._primed.clear()
        known = self._known.get((source_id, local_id))
        if known is not None:
            return known
        if carry and self.batching:  # the N+1 baseline carries nothing
            queued = self._carry.get(source_id)
            self._carry[source_id] = carry if queued is None else queued | carry
        return await self.cases(source_id).load(local_id)
