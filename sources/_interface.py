"""The one small interface every kind of agency backend implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sources._errors import WritesUnsupported
from sources._model import (
    CanonicalStatus,
    CaseRecord,
    ComplainantRecord,
    ReferralRecord,
    TimelineEntry,
)
from sources._query import CaseFilter, CaseOrder, Position
from sources._stats import CaseStats, Dimension, StatsWarning, stats_of_records

if TYPE_CHECKING:  # sources._writes imports the registry, which imports this module
    from sources._writes import NewCase, OutgoingReferral

DEFAULT_STATS_SCAN_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a source's configuration against its live backend."""

    source: str
    key: str
    problem: str
    fix: str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Which filters a source evaluates itself, by the names of ``PUBLIC_FILTER_NAMES`` (the
    core applies the rest after fetching: sources/_pushdown.py), whether it
    can be asked which of its cases referred to another agency's case, and whether it can say
    cheaply which cases changed after a time (needed to publish events)."""

    pushed_down_filters: frozenset[str]
    finds_referrals_to: bool = False
    watches_changes: bool = True
    finds_complainants: bool = False
    """Whether :meth:`Source.cases_by_complainant` can find anything (a citizen key mapped)."""
    lists_referrals: bool = False
    """Whether :meth:`Source.referred_references` can list everything this source handed on."""
    scan_limit: int | None = None
    """Cases one search reads at most when it must apply a filter after fetching (one not in
    ``pushed_down_filters``): what such a search costs the agency, whatever page is asked."""
    applies_access: bool = True
    """Whether searches and counts apply ``CaseFilter.access`` themselves. When not, the core
    (sources/_pushdown.py) keeps the cases the caller may see, by their referrals."""
    orders_pages: bool = True
    """Whether a search returns its cases in the order asked, strictly after the position
    and at most ``limit`` of them. When not, the core reads every case once (at most
    ``scan_limit``) and orders and cuts them itself."""
    seeks_by_keyset: bool = False
    """Whether a search for a few rows after a position costs a few rows (the backend seeks
    to the keyset, as an indexed SQL ``WHERE (key) < (...) LIMIT n`` does): a merged page
    then asks it for a share of the page first and tops it up only when needed. An API
    that pages through everything before the position is asked for the whole page once."""


class AgencyInfo(NamedTuple):
    """An agency as configured. A tuple, so its hash is a C call: the graph shares one object
    per distinct agency (resolvers/agency.py), looked up by this value for each case of a
    page, where a dataclass's generated ``__hash__`` was a Python call each."""

    code: str
    name_th: str
    name_en: str


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What the gateway last saw of a source; ``status`` is UP, DOWN or UNKNOWN (not yet asked)."""

    status: str
    circuit: str
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    last_latency_seconds: float | None


class Backend(abc.ABC):
    """The contract every kind of agency backend fulfils: search a page, count, load cases by
    ids, load their timelines; open, close, check and say what it can.

    Every method is one round trip to the backend (that is what the metrics count). Methods raise
    only :class:`~sources.SourceError` subclasses. Batch methods return a mapping keyed by the ids
    asked for; an id that does not exist is simply absent.

    A search or count may leave to the core what its capabilities say it does not do (filters
    not in ``pushed_down_filters``, access without ``applies_access``, order and keyset without
    ``orders_pages``): a kind that subclasses only this class is wrapped in
    :class:`sources._pushdown.Pushdown`, which applies them. Every other ability (referrals,
    complainants, statistics, change signals, case numbers, HTTP counting) is optional: a kind
    has it by implementing the protocol of ``sources/_abilities.py``, or by subclassing
    :class:`Source`, whose defaults answer "none".
    """

    id: str
    kind: str
    agency: AgencyInfo
    stats_scan_limit: int = DEFAULT_STATS_SCAN_LIMIT
    """Cases the default :meth:`Source.case_stats` reads at most (``stats_scan_limit`` in
    config)."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and learn the backend's shape; may be called again after a failure."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]: ...

    @abc.abstractmethod
    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        """Up to ``limit`` cases matching ``where``, in ``order``, strictly after ``after``.

        ``fields`` names the :class:`CaseRecord` fields the caller will read (None: all). A
        source may then read only those: its records say which fields they hold
        (``CaseRecord.projection``), always with ``source``, ``local_id`` and the order's
        field. A source that cannot save anything that way returns whole records.

        ``"timeline"`` among ``fields`` says the caller will read each case's timeline too:
        a source that can read it in the same round trip puts it in ``CaseRecord.timeline``
        (an SQL source on PostgreSQL does); otherwise that stays None and the caller asks
        :meth:`load_timelines`, in one batch for the page. ``"referrals"`` among them does
        the same for each case's referrals (``CaseRecord.referrals``, else
        :meth:`Source.load_referrals`)."""

    @abc.abstractmethod
    async def count_cases(self, where: CaseFilter) -> int: ...

    @abc.abstractmethod
    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        """Each case's status changes and notes, oldest first."""

    @abc.abstractmethod
    async def check(self) -> list[Problem]:
        """Compare the configuration with the live backend; an empty list means all is well."""


class Source(Backend):
    """An agency's complaint system as the core asks it: the :class:`Backend` contract, with
    every optional ability and its default (no referrals, no complainants, statistics by a
    bounded scan, no change signal, no writes). Its searches and counts answer exactly: a
    :class:`Backend` that leaves work to the core is one once wrapped in
    :class:`sources._pushdown.Pushdown`.
    """

    async def load_cases_carrying(
        self, local_ids: Sequence[str], carry: frozenset[str]
    ) -> Mapping[str, CaseRecord]:
        """:meth:`load_cases`, in one round trip still, with the relations ``carry`` names
        (``"timeline"``, ``"referrals"``: ``sources._model.CARRIED``) in each record
        (``CaseRecord.timeline``, ``CaseRecord.referrals``) where the source can read them
        in the same round trip: the caller will read them (a case asked in full detail).
        What a record does not carry (None) the caller asks :meth:`load_timelines` and
        :meth:`load_referrals` for. The default carries nothing; an SQL source on
        PostgreSQL carries both."""
        return await self.load_cases(local_ids)

    async def load_cases_by_reference(self, references: Sequence[str]) -> Mapping[str, CaseRecord]:
        """Cases by the agency's own case number (``CaseRecord.reference_number``), keyed by
        it; a number no case has is absent. The default serves sources whose case number is
        their case id (an Open311 server's ``service_request_id``, an API that maps both
        from one field); it never answers a case under another case's number. SQL sources
        look the number up in its own column."""
        wanted = set(references)
        found = await self.load_cases(references)
        return {r.reference_number: r for r in found.values() if r.reference_number in wanted}

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats:
        """Buckets of the cases matching ``where``, grouped by ``dimensions``; overdue and open
        ages measured at ``now``.

        The default is a bounded scan through :meth:`search_cases`: at most
        ``stats_scan_limit`` cases, newest first, with a warning when there were more.
        Sources that can aggregate where the data is (SQL) override it.
        """
        limit = self.stats_scan_limit
        records = await self.search_cases(where, CaseOrder(), None, limit + 1)
        referrals: Mapping[str, Sequence[ReferralRecord]] = {}
        if Dimension.REFERRED_TO in dimensions and records:
            referrals = await self.load_referrals([r.local_id for r in records[:limit]])
        stats = stats_of_records(
            records[:limit], dict(referrals), dimensions, self.agency.code, now
        )
        if len(records) > limit:
            stats.warnings.append(
                StatsWarning(self.id, f"statistics cover only the newest {limit} matching cases")
            )
        return stats

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        """Each case's outgoing referrals, oldest first; none when the source maps no referrals."""
        return {}

    async def load_complainants(self, local_ids: Sequence[str]) -> Mapping[str, ComplainantRecord]:
        """Each case's complainant, keyed by case id; none when the source maps no personal data
        (an Open311 server publishes none)."""
        return {}

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]:
        """This source's cases whose complainant's ``citizen_key`` (the agency's HMAC of the
        citizen ID) is one of ``citizen_keys``, keyed by it; anonymous and confidential
        complaints are never matched. Sources without personal data find none."""
        return {}

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        """This source's referrals to ``agency`` whose receiving reference is one of
        ``references``, keyed by that reference (only when ``finds_referrals_to``)."""
        return {}

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        """Every (receiving agency code, their reference) this source's referrals name: what
        this agency handed on, so the gateway can let it see those cases (only when
        ``lists_referrals``; other sources name none)."""
        return ()

    async def listen_for_changes(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call ``wake`` whenever the backend signals a change (PostgreSQL NOTIFY, say), so the
        watcher polls at once instead of at its next interval. Returns how to stop listening.
        The default has no signal: the watcher simply polls."""

        async def stop() -> None:
            return None

        return stop

    def observe_http(self, observer: Callable[[str], None]) -> None:
        """Have ``observer(source id)`` called for every HTTP request this source sends: one
        method call (one round trip) may be several requests (chunks, pages). Sources that do
        not speak HTTP send none and ignore it."""
        return None

    def refresh_connections(self) -> None:
        """Let the next round trips use new connections, not pooled ones: called before an open
        circuit's trial call, so that a connection spoilt by the failures that opened it cannot
        fail the trial too. Sources without a pool of their own ignore it."""
        return None

    def takes(self, step: str) -> bool:
        """Whether this source writes ``step`` (create, status, record, note): see
        :class:`sources._abilities.WritesCases`. The default writes nothing."""
        return False

    async def create_case(self, case: NewCase, key: str) -> str:
        raise self._cannot_write("create")

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        raise self._cannot_write("status")

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        raise self._cannot_write("record")

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        raise self._cannot_write("note")

    def _cannot_write(self, step: str) -> WritesUnsupported:
        return WritesUnsupported(
            self.id,
            f"agency {self.agency.code} cannot receive this write ({step}): its kind "
            f"{self.kind!r} does not write, or its configuration has no writes: for it",
        )

    def health(self) -> SourceHealth | None:
        """Health as seen by the gateway's guard around the source; adapters have none."""
        return None
