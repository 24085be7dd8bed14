"""What a backend did not push down, applied once, here: the filter, the caller's access, the
order and keyset cut, and the fields a page is read for.

A backend says in its :class:`~sources._interface.Capabilities` what it does itself; the core
trusts that and does the rest. Three shapes of backend meet here:

- one that does everything (SQL): asked directly, nothing re-checked;
- one that reads its cases as a list, page after page (the HTTP kinds,
  :class:`~sources._abilities.ListsCases`): :func:`search_listed` and :func:`count_listed`
  keep what passes and stop reading once an ordered list has given enough;
- any other :class:`~sources._interface.Backend`: :class:`Pushdown` wraps it, seeking page
  after page when it orders and cuts by keyset, or reading every case once (at most its scan
  limit) when it does not. A backend that pushes down nothing still answers correctly, only
  slower.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Protocol

from sources._abilities import (
    Aggregates,
    HoldsComplainants,
    Listed,
    ListsCases,
    LooksUpReferences,
    MapsReferrals,
    SignalsChanges,
    SpeaksHttp,
    WritesCases,
)
from sources._errors import SourceBadResponse
from sources._interface import Backend, Capabilities, Problem, Source
from sources._model import (
    CARRIED,
    CASE_RECORD_FIELDS,
    CanonicalStatus,
    CaseRecord,
    ComplainantRecord,
    ReferralRecord,
    TimelineEntry,
)
from sources._query import CaseFilter, CaseOrder, Position
from sources._stats import CaseStats, Dimension
from sources._writes import NewCase, OutgoingReferral

__all__ = [
    "ListedSearch",
    "Pushdown",
    "complete",
    "count_listed",
    "read_fields",
    "scan_for_references",
    "search_listed",
]


def read_fields(
    fields: frozenset[str] | None, where: CaseFilter, order: CaseOrder
) -> frozenset[str] | None:
    """The record fields to ask a backend for so that the core can re-check ``where`` and
    order by ``order`` on what comes back: ``fields`` and those; None (whole records) when
    ``fields`` is None or names a field the unified model lacks."""
    if fields is None:
        return None
    read = (fields - CARRIED) | where.record_fields() | {order.record_field}
    return read if read <= CASE_RECORD_FIELDS else None


def restricted(where: CaseFilter, backend: Backend) -> bool:
    """Whether the caller's access limits this search and the backend leaves it to the core."""
    access = where.access
    return (
        access is not None
        and access.agency != backend.agency.code
        and not backend.capabilities.applies_access
    )


def exact(where: CaseFilter, backend: Backend) -> bool:
    """Whether the backend answers ``where`` whole: every condition pushed down, the access
    applied (or none to apply)."""
    pushed = backend.capabilities.pushed_down_filters
    return not where.left_over(pushed) and not restricted(where, backend)


def _visible(where: CaseFilter, owner: str, record: CaseRecord, referred: Collection[str]) -> bool:
    return where.access is None or where.access.allows(owner, record, referred)


# -- backends that list their cases (the HTTP kinds) ------------------------------------------


async def search_listed(
    backend: ListsCases,
    owner: Backend,
    where: CaseFilter,
    order: CaseOrder,
    after: Position | None,
    limit: int,
    fields: frozenset[str] | None,
) -> list[CaseRecord]:
    """A search through ``backend``'s list (``owner`` is the same object as a Backend): every
    case it lists re-checked against ``where`` and the access, cut at ``after``, ordered;
    reading stops once the list, in order, has given more than ``limit``."""
    ordered = backend.lists_in_order(order)
    wanted = limit if ordered and exact(where, owner) else None
    agency = owner.agency.code
    collected: list[CaseRecord] = []
    pages = backend.list_cases(
        where, order, after, read_fields(fields, where, order), fields, wanted
    )
    async with aclosing(pages):
        async for page in pages:
            for record, referred in page:
                if (
                    where.matches(record)
                    and order.is_after(record, after)
                    and _visible(where, agency, record, referred)
                ):
                    collected.append(record)
            if ordered and len(collected) > limit:
                break
    collected.sort(key=order.key, reverse=order.descending)
    return collected[:limit]


class _Vocabulary(Protocol):
    def matches_nothing(self, where: CaseFilter) -> bool: ...


class ListedSearch(Backend):
    """``search_cases`` and ``lists_in_order`` of a kind whose cases are read as a list (the
    HTTP kinds: ``rest``, ``graphql``), through :func:`search_listed`. Listed before the
    kind's :class:`Source` base.

    The kind gives ``records`` (which filters its vocabulary can never match: nothing is
    asked of the API then, as an empty list pushed down would mean no filter at all to most
    APIs), ``_sort`` (whether the API returns an order) and ``list_cases``."""

    records: _Vocabulary

    @abc.abstractmethod
    def _sort(self, order: CaseOrder) -> tuple[bool, object]:
        """Whether the API returns ``order``, and what the kind sends to ask for it."""

    @abc.abstractmethod
    def list_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        read: frozenset[str] | None,
        asked: frozenset[str] | None,
        wanted: int | None,
    ) -> AsyncGenerator[Sequence[Listed], None]:
        """Pages of listed cases (:class:`~sources._abilities.ListsCases`)."""

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        """Through the list: the filter, access and keyset the API cannot apply are applied
        by the core on what it lists."""
        if self.records.matches_nothing(where):
            return []
        return await search_listed(self, self, where, order, after, limit, fields)

    def lists_in_order(self, order: CaseOrder) -> bool:
        return self._sort(order)[0]


async def count_listed(backend: ListsCases, owner: Backend, where: CaseFilter) -> int:
    """The cases of ``backend``'s whole list that pass ``where`` and the access."""
    agency = owner.agency.code
    count = 0
    pages = backend.list_cases(where, CaseOrder(), None, None, frozenset(), None)
    async with aclosing(pages):
        async for page in pages:
            count += sum(
                1
                for record, referred in page
                if where.matches(record) and _visible(where, agency, record, referred)
            )
    return count


async def scan_for_references(source: Backend, references: Sequence[str]) -> dict[str, CaseRecord]:
    """Cases by their own case number from a backend that cannot look one up (an API whose
    number is not its id): its cases read newest first, at most ``stats_scan_limit``, kept
    where their number is asked for. Slow, but a case is found by its number on every kind."""
    wanted = set(references)
    if not wanted:
        return {}
    scanned = await source.search_cases(CaseFilter(), CaseOrder(), None, source.stats_scan_limit)
    return {r.reference_number: r for r in scanned if r.reference_number in wanted}


# -- any other backend ------------------------------------------------------------------------


def complete(backend: Backend) -> Source:
    """``backend`` as the core asks a source: itself when it is a :class:`Source` (which
    answers exactly), else wrapped in :class:`Pushdown`."""
    return backend if isinstance(backend, Source) else Pushdown(backend)


class Pushdown(Source):
    """A :class:`Backend` made a :class:`Source`: what its capabilities do not cover is done
    here, and each optional ability is asked of it only when it has it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.id = backend.id
        self.kind = backend.kind
        self.agency = backend.agency
        self.stats_scan_limit = backend.stats_scan_limit

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    async def open(self) -> None:
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    async def check(self) -> list[Problem]:
        return await self.backend.check()

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        return await self.backend.load_cases(local_ids)

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        return await self.backend.load_timelines(local_ids)

    # -- searches and counts ------------------------------------------------------------------

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        backend = self.backend
        if isinstance(backend, ListsCases):
            return await search_listed(backend, backend, where, order, after, limit, fields)
        orders = backend.capabilities.orders_pages
        if orders and exact(where, backend):
            return await backend.search_cases(where, order, after, limit, fields)
        read = read_fields(fields, where, order)
        if orders:
            return await self._seek(where, order, after, limit, read)
        everything = await self._read_all(where, order, read)
        return [r for r in everything if order.is_after(r, after)][:limit]

    async def count_cases(self, where: CaseFilter) -> int:
        backend = self.backend
        if isinstance(backend, ListsCases):
            return await count_listed(backend, backend, where)
        if exact(where, backend):
            return await backend.count_cases(where)
        return len(
            await self._read_all(where, CaseOrder(), read_fields(frozenset(), where, CaseOrder()))
        )

    async def _seek(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        read: frozenset[str] | None,
    ) -> list[CaseRecord]:
        """Pages after pages of a backend that orders and cuts by keyset, until ``limit``
        cases pass; at most the scan limit read."""
        most = self._scan_limit()
        chunk = max(limit, 50)
        kept: list[CaseRecord] = []
        seen = 0
        while True:
            page = await self.backend.search_cases(where, order, after, chunk, read)
            seen += len(page)
            kept += await self._passing(where, page)
            if len(kept) >= limit or len(page) < chunk:
                return kept[:limit]
            if seen >= most:
                raise self._too_many(most)
            last = page[-1]
            after = Position(order.key(last)[0], last.source, last.local_id)

    async def _read_all(
        self, where: CaseFilter, order: CaseOrder, read: frozenset[str] | None
    ) -> list[CaseRecord]:
        """Every case of a backend that neither orders nor cuts: read once, at most the scan
        limit (more is an error, never a silent cut), the passing ones in ``order``."""
        most = self._scan_limit()
        found = await self.backend.search_cases(where, order, None, most + 1, read)
        if len(found) > most:
            raise self._too_many(most)
        kept = await self._passing(where, found)
        kept.sort(key=order.key, reverse=order.descending)
        return kept

    async def _passing(self, where: CaseFilter, records: Sequence[CaseRecord]) -> list[CaseRecord]:
        matching = [r for r in records if where.matches(r)]
        if not restricted(where, self.backend) or not matching:
            return matching
        referrals = await self.load_referrals([r.local_id for r in matching])
        agency = self.agency.code
        return [
            r
            for r in matching
            if _visible(where, agency, r, _targets(referrals.get(r.local_id, ())))
        ]

    def _scan_limit(self) -> int:
        return self.backend.capabilities.scan_limit or self.backend.stats_scan_limit

    def _too_many(self, most: int) -> SourceBadResponse:
        return SourceBadResponse(
            self.id,
            f"more than {most} cases to read to apply what the source does not push down; "
            "narrow the filter or raise stats_scan_limit",
        )

    # -- optional abilities -------------------------------------------------------------------

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats:
        backend = self.backend
        if isinstance(backend, Aggregates) and exact(where, backend):
            return await backend.case_stats(where, dimensions, now)
        return await super().case_stats(where, dimensions, now)

    async def load_cases_by_reference(self, references: Sequence[str]) -> Mapping[str, CaseRecord]:
        if isinstance(self.backend, LooksUpReferences):
            return await self.backend.load_cases_by_reference(references)
        return await super().load_cases_by_reference(references)

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        if isinstance(self.backend, MapsReferrals):
            return await self.backend.load_referrals(local_ids)
        return {}

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        if isinstance(self.backend, MapsReferrals):
            return await self.backend.find_referrals_to(agency, references)
        return {}

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        if isinstance(self.backend, MapsReferrals):
            return await self.backend.referred_references()
        return ()

    async def load_complainants(self, local_ids: Sequence[str]) -> Mapping[str, ComplainantRecord]:
        if isinstance(self.backend, HoldsComplainants):
            return await self.backend.load_complainants(local_ids)
        return {}

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]:
        if isinstance(self.backend, HoldsComplainants):
            return await self.backend.cases_by_complainant(citizen_keys)
        return {}

    async def listen_for_changes(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        if isinstance(self.backend, SignalsChanges):
            return await self.backend.listen_for_changes(wake)
        return await super().listen_for_changes(wake)

    def observe_http(self, observer: Callable[[str], None]) -> None:
        if isinstance(self.backend, SpeaksHttp):
            self.backend.observe_http(observer)

    def refresh_connections(self) -> None:
        if isinstance(self.backend, SpeaksHttp):
            self.backend.refresh_connections()

    def takes(self, step: str) -> bool:
        return isinstance(self.backend, WritesCases) and self.backend.takes(step)

    async def create_case(self, case: NewCase, key: str) -> str:
        if isinstance(self.backend, WritesCases):
            return await self.backend.create_case(case, key)
        return await super().create_case(case, key)

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        if isinstance(self.backend, WritesCases):
            return await self.backend.set_status(local_id, status, note, at, key)
        return await super().set_status(local_id, status, note, at, key)

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        if isinstance(self.backend, WritesCases):
            return await self.backend.record_referral(local_id, referral, key)
        return await super().record_referral(local_id, referral, key)

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        if isinstance(self.backend, WritesCases):
            return await self.backend.add_note(local_id, note, at, key)
        return await super().add_note(local_id, note, at, key)


def _targets(referrals: Sequence[ReferralRecord]) -> frozenset[str]:
    return frozenset(r.to_agency for r in referrals if isinstance(r.to_agency, str))
