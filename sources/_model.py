"""The unified complaint model: plain data that every source adapter returns.

Adapters map an agency's native rows or JSON into these types once, at the edge; nothing above
``sources/`` ever sees a native shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """A frozen dataclass to the type checker, a slotted and hashable one at run time.

    Sources make these by the hundred per request. A frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__`` (to get past its own ``__setattr__``): eleven times
    the cost of a plain one for ``CaseRecord``'s 18 fields (4.0 against 0.37 microseconds),
    about 5% of the dashboard page's CPU. So immutability is checked where it costs nothing,
    by mypy (assigning to a field is an error, as for ``frozen=True``), and records keep a
    field-wise ``__hash__`` and ``==``.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


class CanonicalStatus(StrEnum):
    """The status every agency's own vocabulary is mapped onto."""

    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FORWARDED = "FORWARDED"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"
    DUPLICATE = "DUPLICATE"
    CANCELLED = "CANCELLED"

    @property
    def is_finished(self) -> bool:
        """True for statuses after which an agency owes the complainant nothing more."""
        return self in _FINISHED


_FINISHED = frozenset(
    {
        CanonicalStatus.REJECTED,
        CanonicalStatus.RESOLVED,
        CanonicalStatus.CLOSED,
        CanonicalStatus.DUPLICATE,
        CanonicalStatus.CANCELLED,
    }
)


class Channel(StrEnum):
    """How the complaint reached the agency."""

    HOTLINE_1567 = "HOTLINE_1567"
    HOTLINE_1111 = "HOTLINE_1111"
    PHONE = "PHONE"
    WALK_IN = "WALK_IN"
    WEB = "WEB"
    LINE = "LINE"
    LETTER = "LETTER"
    EMAIL = "EMAIL"
    MOBILE_APP = "MOBILE_APP"
    REFERRAL = "REFERRAL"
    OTHER = "OTHER"


_SINGULAR = {
    "statuses": "status",
    "categories": "category",
    "channels": "channel",
    "agencies": "agency",
    "referral_kinds": "referral kind",
}


class ReferralKind(StrEnum):
    """Why a case moved to another agency."""

    FORWARD = "FORWARD"
    ESCALATE = "ESCALATE"
    RETURN = "RETURN"


@record
class Unmapped:
    """A native value that the source's configured vocabulary does not map.

    Kept instead of raised so that one odd row costs one field error, not the whole page.
    """

    source: str
    key: str
    value: str

    @property
    def message(self) -> str:
        return (
            f"source '{self.source}' returned {_SINGULAR.get(self.key, self.key)} value "
            f"{self.value!r}, which its "
            f"vocabulary does not map; add it under sources[{self.source}].vocabulary.{self.key}"
        )


@record
class Location:
    """Where the complaint is about; codes are DOPA codes ('40', '4001', '400101')."""

    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@record
class CaseRecord:
    """One complaint case as held by one source. ``local_id`` is the source's own key, as text."""

    source: str
    local_id: str
    reference_number: str
    title: str
    description: str
    channel: Channel | Unmapped
    category: str | Unmapped
    source_category: str
    status: CanonicalStatus | Unmapped
    source_status: str
    received_at: datetime
    updated_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    location: Location = field(default_factory=Location)
    responsible: str | None = None
    media_urls: tuple[str, ...] = ()
    status_notes: str | None = None
    """The agency's explanation of the current status (Open311 ``status_notes``)."""
    projection: frozenset[str] | None = None
    """None when every field holds what the source holds. Otherwise the fields that do: the
    record was read for a caller that named the fields it would read
    (``Source.search_cases(fields=...)``), and every other field is None, whatever its type.
    Such a record answers that caller only; it is never cached for others."""
    timeline: tuple[TimelineEntry, ...] | None = None
    """The case's timeline, oldest first, when the source read it in the same round trip as
    the case: a page asked for ``timeline`` among its fields (``Source.search_cases``) and
    the source can (an SQL source on PostgreSQL). None when it did not: ask
    ``Source.load_timelines``, as for any case."""
    referrals: tuple[ReferralRecord, ...] | None = None
    """The case's outgoing referrals, oldest first, when the source read them in the same
    round trip as the case (``"referrals"`` among a page's fields, or a case loaded with
    them: ``Source.load_cases_carrying``): what ``Source.load_referrals`` would answer for
    it, ``()`` for none. None when it did not: ask ``Source.load_referrals``."""

    def is_overdue(self, now: datetime) -> bool:
        """Open (a known, unfinished status) and due before ``now``: the one rule behind
        ``isOverdue``, the ``overdue`` filter and the overdue counts of statistics."""
        status = self.status
        is_open = isinstance(status, CanonicalStatus) and not status.is_finished
        return is_open and self.due_at is not None and self.due_at < now


TIMELINE = "timeline"
"""Among the fields a page is read for (``Source.search_cases``): the caller will read each
case's timeline, which a source may carry in the page (``CaseRecord.timeline``)."""

REFERRALS = "referrals"
"""Among the fields a page is read for: the caller will read each case's referrals, which a
source may carry in the page (``CaseRecord.referrals``)."""

CARRIED = frozenset({TIMELINE, REFERRALS})
"""The relations a case's record may carry besides its fields (``CaseRecord.timeline`` and
``CaseRecord.referrals``): named among the fields a page is read for, never in a
``projection``."""

CASE_RECORD_FIELDS = frozenset(f.name for f in fields(CaseRecord)) - {"projection", *CARRIED}
"""The names of the fields of a case a source maps (what ``projection`` can list); the
relations a record may carry are not among them (:data:`CARRIED`)."""


@record
class TimelineEntry:
    """A status change or a note on a case; ``status`` is None for a note without a change."""

    at: datetime
    status: CanonicalStatus | Unmapped | None
    source_status: str | None
    note: str | None


@record
class ReferralRecord:
    """One hand-over of a case to another agency, as the referring source records it.

    ``their_reference`` is the receiving agency's own id for the case: the local id of the
    counterpart in the receiving agency's source.
    """

    from_source: str
    from_local_id: str
    to_agency: str | Unmapped
    at: datetime
    kind: ReferralKind | Unmapped
    status: str | None
    their_reference: str | None
    secrecy: str | None = None


@record
class ComplainantRecord:
    """Who filed a case, as the holding agency records them: personal data under the PDPA.

    Sources return it raw; the graph masks it and reveals it only where it must. ``citizen_key``
    is the agency's own HMAC-SHA256 of the citizen ID under the shared matching key (hex): the
    only form in which a complainant is ever looked up across agencies.
    """

    source: str
    case_id: str
    name: str | None
    citizen_id: str | None
    phone: str | None
    address: str | None
    is_anonymous: bool
    is_confidential: bool
    citizen_key: str | None = None
