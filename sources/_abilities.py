"""The optional abilities of a backend, each a protocol a kind has by implementing its methods.

A :class:`~sources._interface.Backend` must search, count, load cases and timelines; anything
more is one of these. :class:`~sources._pushdown.Pushdown` asks a backend for an ability only
when it has it, and answers the default of :class:`~sources._interface.Source` ("none", or a
bounded scan for statistics) otherwise. ``runtime_checkable``: having the methods is the
declaration, as for ``collections.abc``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sources._model import CaseRecord, ComplainantRecord, ReferralRecord
from sources._query import CaseFilter, CaseOrder, Position
from sources._stats import CaseStats, Dimension

if TYPE_CHECKING:  # sources._writes imports the registry, which imports this module
    from sources._model import CanonicalStatus
    from sources._writes import NewCase, OutgoingReferral

__all__ = [
    "Aggregates",
    "AsksTogether",
    "HoldsComplainants",
    "Listed",
    "ListsCases",
    "LooksUpReferences",
    "MapsReferrals",
    "SignalsChanges",
    "SpeaksHttp",
    "TogetherKey",
    "WritesCases",
]


@runtime_checkable
class MapsReferrals(Protocol):
    """Hand-overs of cases to other agencies (``Capabilities.finds_referrals_to`` and
    ``lists_referrals`` say which of the searches by target it can answer)."""

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]: ...

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]: ...

    async def referred_references(self) -> Sequence[tuple[str, str]]: ...


@runtime_checkable
class HoldsComplainants(Protocol):
    """Personal data of who filed each case, and the cases of a citizen by matching key."""

    async def load_complainants(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, ComplainantRecord]: ...

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]: ...


@runtime_checkable
class Aggregates(Protocol):
    """Statistics computed where the data is. Asked only for a filter the backend applies
    whole (every condition pushed down, access applied); otherwise the core scans."""

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats: ...


@runtime_checkable
class LooksUpReferences(Protocol):
    """Cases by the agency's own case number when it is not the case id."""

    async def load_cases_by_reference(
        self, references: Sequence[str]
    ) -> Mapping[str, CaseRecord]: ...


@runtime_checkable
class SignalsChanges(Protocol):
    """A push signal on change (PostgreSQL NOTIFY), so the watcher need not wait to poll."""

    async def listen_for_changes(
        self, wake: Callable[[], None]
    ) -> Callable[[], Awaitable[None]]: ...


@runtime_checkable
class SpeaksHttp(Protocol):
    """A pool of HTTP connections: requests counted, connections renewed before a trial."""

    def observe_http(self, observer: Callable[[str], None]) -> None: ...

    def refresh_connections(self) -> None: ...


@runtime_checkable
class WritesCases(Protocol):
    """Writes into the agency's system: a referral received as a new case, progress reported
    on one. Each call is one transaction (or one request), made once per idempotency ``key``:
    sent again with the same key it changes nothing more and answers what the first did (the
    gateway's outbox retries, gateway/outbox.py). Values come canonical; the backend writes
    its own codes (``sources._writes.native_of``). A step it does not take (``takes``) is
    never asked; the mutation names the agency that cannot receive it."""

    def takes(self, step: str) -> bool:
        """Whether this source is configured for ``step`` (create, status, record, note)."""
        ...

    async def create_case(self, case: NewCase, key: str) -> str:
        """Create the case and return its local id, the receiver's reference."""
        ...

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        """Set the case's status with a timeline note."""
        ...

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        """Record the hand-over, with the receiver's reference, on the sender's case."""
        ...

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        """Add a note to the case's timeline, its status unchanged."""
        ...


Listed = tuple[CaseRecord, frozenset[str]]
"""A case as a list read it, with the agency codes its listing says it was referred to (what
the caller's access is judged by, with no request more)."""


@runtime_checkable
class ListsCases(Protocol):
    """A backend that reads its cases as a list, page after page (an HTTP API): the core
    (:func:`sources._pushdown.search_listed`) applies the filter, access, keyset and order to
    what it lists, and stops reading once a page in order has given enough."""

    def lists_in_order(self, order: CaseOrder) -> bool:
        """Whether the list comes in ``order`` (ties in any order), so reading may stop."""
        ...

    def list_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        read: frozenset[str] | None,
        asked: frozenset[str] | None,
        wanted: int | None,
    ) -> AsyncGenerator[Sequence[Listed], None]:
        """Pages of listed cases, ``where``'s pushed-down conditions and a window around
        ``after`` applied by the backend; records mapped for ``read`` (None: whole),
        carrying timelines where ``asked`` names them and the list holds them. ``wanted``:
        the cases a page needs at most when the list is exact (None: read on)."""
        ...


@dataclass(frozen=True, slots=True)
class TogetherKey:
    """What sources asked in one statement share: ``database``, the server and database they
    read (no credentials: it names the statement in /metrics), and ``shape``, whatever else
    must be equal (one connection pool, the same columns and types, the same time zone)."""

    database: str
    shape: Hashable


@runtime_checkable
class AsksTogether(Protocol):
    """Sources that read one database, asked in one statement rather than one each.

    A hundred provincial offices as schemas or tables on one Ministry server cost a merged
    page a hundred round trips, each one about half a millisecond of the gateway's time (issue
    25); asked together they cost one. :class:`sources._federation.Federation` groups the
    sources of an operation by :meth:`together_key` (None: never grouped, now) and asks one
    member of each group of two or more for the whole group, ``members`` sorted by source id
    (the member's rank in them is its place in the global order's ties). What is answered is
    exactly what each member, asked alone, would have answered; when the statement fails the
    federation asks each member alone, so every failure is named by its own source."""

    def together_key(self) -> TogetherKey | None: ...

    async def search_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None,
    ) -> list[list[CaseRecord]]:
        """The first ``limit`` cases after ``after`` over all ``members`` in the global order,
        as one list per member (in ``members``' order), each in that member's own order."""
        ...

    async def count_together(self, members: Sequence[AsksTogether], where: CaseFilter) -> list[int]:
        """Each member's count of ``where``, in ``members``' order."""
        ...

    async def stats_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        dimensions: Sequence[Dimension],
        now: datetime,
    ) -> list[CaseStats]:
        """Each member's ``case_stats``, in ``members``' order."""
        ...
