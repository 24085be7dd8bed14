"""What the graph asks of sources: filters, ordering and keyset positions, all pushed down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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

    def matches(self, record: CaseRecord) -> bool:
        """Whether ``record`` passes every condition, evaluated here rather than in a source.

        Used where a source could not apply a filter, to re-check what an API applied with
        its own meaning (an inclusive bound, word search), and for events.
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
