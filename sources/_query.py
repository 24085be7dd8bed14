"""What the graph asks of sources: filters, ordering and keyset positions, all pushed down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sources._model import CanonicalStatus


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


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the global order: the last case already seen.

    The global order is (sort value, source id, local id), so one position tells every source
    where to resume: that is the keyset each source pushes down instead of an OFFSET.
    """

    value: datetime
    source: str
    local_id: str
