"""Per-request data loaders, one per source and relation: one round trip per source per level.

aiodataloader's contract holds: a batch function receives keys and returns values in key order,
``None`` for a miss. A source error fails every key of that batch, and so every field that waited
on it, each with the source's own error code.
"""

from __future__ import annotations

import asyncio
import os
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

V = TypeVar("V")

BATCHING = os.environ.get("COMPLAINT_GRAPH_DATALOADERS", "on").lower() not in ("off", "0", "false")
"""A benchmark baseline only: ``COMPLAINT_GRAPH_DATALOADERS=off`` makes every load its own
single-key round trip (the N+1 pattern batching exists to avoid), so bench/ can measure what
batching saves. Read once at import; never turn it off in production."""


def _batch(
    fetch: Callable[[Sequence[str]], Awaitable[Mapping[str, V]]], missing: Any
) -> Callable[[list[str]], Coroutine[Any, Any, list[Any]]]:
    async def load(keys: list[str]) -> list[Any]:
        found = await fetch(keys)
        return [found.get(key, missing) for key in keys]

    return load


class Loaders:
    def __init__(self, federation: Federation) -> None:
        self.federation = federation
        self._cases: dict[str, DataLoader[str, CaseRecord | None]] = {}
        self._timelines: dict[str, DataLoader[str, Sequence[TimelineEntry]]] = {}
        self._referrals: dict[str, DataLoader[str, Sequence[ReferralRecord]]] = {}
        self._incoming: dict[str, DataLoader[tuple[str, str], Sequence[ReferralRecord]]] = {}
        self._complainants: DataLoader[tuple[str, str], ComplainantRecord | None] | None = None
        self._by_complainant: dict[str, DataLoader[str, Sequence[CaseRecord]]] = {}

    def clear(self) -> None:
        """Forget everything loaded: the records go now, not when the cyclic garbage collector
        reaches the request's objects (strawberry's per-request objects refer to each other, so
        a finished request's context, and with it these caches, waits for a collection)."""
        families: list[dict[Any, DataLoader[Any, Any]]] = [
            self._cases,
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

    def _source(self, source_id: str) -> Source:
        source = self.federation.get(source_id)
        if source is None:
            raise LookupError(source_id)
        return source

    def cases(self, source_id: str) -> DataLoader[str, CaseRecord | None]:
        """Loads ``CaseRecord | None`` by local id."""
        loader = self._cases.get(source_id)
        if loader is None:
            source = self._source(source_id)
            loader = DataLoader(batch_load_fn=_batch(source.load_cases, None), batch=BATCHING)
            self._cases[source_id] = loader
        return loader

    def timelines(self, source_id: str) -> DataLoader[str, Sequence[TimelineEntry]]:
        """Loads ``Sequence[TimelineEntry]`` (empty when none) by local id."""
        loader = self._timelines.get(source_id)
        if loader is None:
            source = self._source(source_id)
            loader = DataLoader(batch_load_fn=_batch(source.load_timelines, ()), batch=BATCHING)
            self._timelines[source_id] = loader
        return loader

    def referrals(self, source_id: str) -> DataLoader[str, Sequence[ReferralRecord]]:
        """Loads a case's outgoing referrals (empty when none) by local id."""
        loader = self._referrals.get(source_id)
        if loader is None:
            source = self._source(source_id)
            loader = DataLoader(batch_load_fn=_batch(source.load_referrals, ()), batch=BATCHING)
            self._referrals[source_id] = loader
        return loader

    def complainants(self) -> DataLoader[tuple[str, str], ComplainantRecord | None]:
        """Loads a case's complainant by (source, local id); None when the source keeps no
        personal data. One loader across sources, so every complainant of a level arrives at
        once and the next level (``Complainant.cases``) is again one batch per source."""
        if self._complainants is None:

            async def load(keys: list[tuple[str, str]]) -> list[ComplainantRecord | None]:
                by_source: dict[str, list[str]] = {}
                for source_id, local_id in keys:
                    by_source.setdefault(source_id, []).append(local_id)
                sources = list(by_source)
                answers = await asyncio.gather(
                    *(self._source(s).load_complainants(by_source[s]) for s in sources)
                )
                found = dict(zip(sources, answers, strict=True))
                return [found[source_id].get(local_id) for source_id, local_id in keys]

            self._complainants = DataLoader(batch_load_fn=load, batch=BATCHING)
        return self._complainants

    def cases_by_complainant(self, source_id: str) -> DataLoader[str, Sequence[CaseRecord]]:
        """Loads one source's cases by the HMAC key of their complainant's citizen ID."""
        loader = self._by_complainant.get(source_id)
        if loader is None:
            source = self._source(source_id)
            loader = DataLoader(
                batch_load_fn=_batch(source.cases_by_complainant, ()), batch=BATCHING
            )
            self._by_complainant[source_id] = loader
        return loader

    def incoming(self, source_id: str) -> DataLoader[tuple[str, str], Sequence[ReferralRecord]]:
        """Loads, from one source, its referrals to (agency code, that agency's case id)."""
        loader = self._incoming.get(source_id)
        if loader is None:
            source = self._source(source_id)

            async def load(keys: list[tuple[str, str]]) -> list[Sequence[ReferralRecord]]:
                by_agency: dict[str, list[str]] = {}
                for agency, reference in keys:
                    by_agency.setdefault(agency, []).append(reference)
                agencies = list(by_agency)
                answers = await asyncio.gather(
                    *(source.find_referrals_to(a, by_agency[a]) for a in agencies)
                )
                found = dict(zip(agencies, answers, strict=True))
                return [found[agency].get(reference, ()) for agency, reference in keys]

            loader = DataLoader(batch_load_fn=load, batch=BATCHING)
            self._incoming[source_id] = loader
        return loader

    def prime_cases(self, records: Sequence[CaseRecord]) -> None:
        """Cases fetched by a page are known: later ``node``/``case`` lookups cost nothing."""
        for record in records:
            self.cases(record.source).prime(record.local_id, record)
