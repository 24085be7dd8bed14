"""What the graph asks of sources: filters, ordering and keyset positions, all pushed down."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sources._model import CanonicalStatus, CaseRecord


class SortField(StrEnum):
    RECEIVED_AT = "RECEIVED_AT"
    UPDATED_AT = "UPDATED_AT"


@dataclass(frozen=True, slots=True)
class CaseOrder:
    """Cases sort by ``field`` and then by (source id, local id), all in one direction."""

    field: SortField = SortField.RECEIVED_AT
    descending: bool = True

    @property
    def record_field(self) -> str:
        """The ``CaseRecord`` field the order sorts by (a page read for some fields holds it)."""
        return "updated_at" if self.field is SortField.UPDATED_AT else "received_at"

    def key(self, record: CaseRecord) -> tuple[datetime, str, str]:
        """``record``'s place in the global order (ascending; reverse it when ``descending``),
        for a source that sorts what it fetched rather than have its backend sort."""
        value = record.updated_at if self.field is SortField.UPDATED_AT else record.received_at
        return value, record.source, record.local_id

    def is_after(self, record: CaseRecord, after: Position | None) -> bool:
        """Whether ``record`` comes strictly after ``after`` in this order: the keyset cut a
        source applies itself when its backend cannot (an API paging by offset or cursor)."""
        if after is None:
            return True
        theirs = (after.value, after.source, after.local_id)
        return self.key(record) < theirs if self.descending else self.key(record) > theirs


@dataclass(frozen=True, slots=True)
class AgencyAccess:
    """Row-level access of an agency caller, pushed down into every source's query.

    A case is visible when the agency owns its source, when the case's own source records a
    referral of it to the agency, or when one of the agency's own systems referred it there
    (``referred_by_agency``: (source id, local id) pairs, gathered by the gateway from the
    agency's own sources before searching).
    """

    agency: str
    referred_by_agency: frozenset[tuple[str, str]] = frozenset()

    def ids_in(self, source: str) -> list[str]:
        """Local ids in ``source`` that the agency's own systems referred there."""
        return sorted(local_id for s, local_id in self.referred_by_agency if s == source)

    def allows(self, owner: str, record: CaseRecord, referred_to: Collection[str]) -> bool:
        """Whether a case of a source owned by agency ``owner``, referred to the agencies
        ``referred_to`` (by its own source), is visible."""
        return (
            owner == self.agency
            or self.agency in referred_to
            or (record.source, record.local_id) in self.referred_by_agency
        )


PUBLIC_FILTER_NAMES = {
    "statuses": "status",
    "categories": "category",
    "province_codes": "provinceCode",
    "district_codes": "districtCode",
    "received_from": "receivedFrom",
    "received_before": "receivedBefore",
    "text": "text",
    "overdue": "overdue",
}
"""Each condition of :meth:`CaseFilter.conditions` by the name clients give it (the filter
input's field), which ``Capabilities.pushed_down_filters`` lists."""


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """A conjunction of conditions; ``None`` means no condition on that attribute.

    ``received_from`` is inclusive and ``received_before`` exclusive; ``text`` is a plain substring
    of title or description (Thai has no spaces between words, so no word tokenising).
    """

    statuses: frozenset[CanonicalStatus] | None = None
    agencies: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    province_codes: frozenset[str] | None = None
    district_codes: frozenset[str] | None = None
    received_from: datetime | None = None
    received_before: datetime | None = None
    text: str | None = None
    overdue: bool | None = None
    """True: only cases overdue at ``as_of`` (see CaseRecord.is_overdue); False: the others."""
    as_of: datetime | None = None
    """The moment ``overdue`` is judged at; None means now."""
    access: AgencyAccess | None = None
    """Who may see what: never widened by the other fields, applied by every source."""

    def conditions(self) -> frozenset[str]:
        """The names of the fields that hold a condition on a case's own data (``statuses``,
        ``received_from``, ``text`` ...); not ``agencies`` and ``sources``, which the federation
        decides before asking a source, nor ``access``. A source whose backend applied all of
        these returns exact pages; any other is re-checked with :meth:`matches`."""
        values = {
            "statuses": self.statuses,
            "categories": self.categories,
            "province_codes": self.province_codes,
            "district_codes": self.district_codes,
            "received_from": self.received_from,
            "received_before": self.received_before,
            "text": self.text or None,
            "overdue": self.overdue,
        }
        return frozenset(name for name, value in values.items() if value is not None)

    def left_over(self, pushed_down: frozenset[str]) -> frozenset[str]:
        """The conditions a source that pushes down ``pushed_down`` (public names, as
        ``Capabilities.pushed_down_filters``) leaves to be applied after fetching."""
        return frozenset(c for c in self.conditions() if PUBLIC_FILTER_NAMES[c] not in pushed_down)

    def record_fields(self) -> frozenset[str]:
        """The ``CaseRecord`` fields :meth:`matches` reads with these conditions (a page read
        for some fields must also hold these where the gateway re-checks the filter)."""
        read = {"source"} if self.sources is not None else set()
        conditions: tuple[tuple[object, tuple[str, ...]], ...] = (
            (self.statuses, ("status",)),
            (self.categories, ("category",)),
            (self.province_codes, ("location",)),
            (self.district_codes, ("location",)),
            (self.received_from, ("received_at",)),
            (self.received_before, ("received_at",)),
            (self.text, ("title", "description")),
            (self.overdue, ("status", "due_at")),
        )
        for condition, fields in conditions:
            if condition is not None:
                read.update(fields)
        return frozenset(read)

    def matches(self, record: CaseRecord) -> bool:
        """Whether ``record`` passes every condition, evaluated here rather than in a source.

        Used where a source could not apply a filter, to re-check what an API applied with
        its own meaning (an inclusive bound, word search), and for events. ``access`` is not
        checked here: it needs the case's referrals (:meth:`AgencyAccess.allows`).
        """
        location = record.location
        text = self.text.casefold() if self.text else None
        return not (
            (self.sources is not None and record.source not in self.sources)
            or (self.statuses is not None and record.status not in self.statuses)
            or (self.categories is not None and record.category not in self.categories)
            or (
                self.province_codes is not None
                and location.province_code not in self.province_codes
            )
            or (
                self.district_codes is not None
                and location.district_code not in self.district_codes
            )
            or (self.received_from is not None and record.received_at < self.received_from)
            or (self.received_before is not None and record.received_at >= self.received_before)
            or (
                text is not None
                and text not in record.title.casefold()
                and text not in record.description.casefold()
            )
            or (
                self.overdue is not None
                and record.is_overdue(self.as_of or datetime.now(UTC)) != self.overdue
            )
        )


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the global order: the last case already seen.

    The global order is (sort value, source id, local id), so one position tells every source
    where to resume: that is the keyset each source pushes down instead of an OFFSET.
    """

    value: datetime
    source: str
    local_id: str


def received_window(
    where: CaseFilter, order: CaseOrder, after: Position | None
) -> tuple[datetime | None, datetime | None]:
    """The received-time bounds (inclusive lower, exclusive upper) to push down to an API that
    filters by time but takes no keyset: ``where``'s own, narrowed to the keyset's side of
    ``after`` when the order is by received time. Coarse on purpose (the upper bound a second
    past the position); the exact cut is made on what comes back."""
    lower, upper = where.received_from, where.received_before
    if after is not None and order.field is SortField.RECEIVED_AT:
        if order.descending:
            bound = after.value + timedelta(seconds=1)
            upper = bound if upper is None else min(upper, bound)
        else:
            lower = after.value if lower is None else max(lower, after.value)
    return lower, upper
