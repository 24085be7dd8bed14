"""An agency's JSON objects into unified records, naming the field when the shape is wrong."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sources._errors import SourceBadResponse
from sources._interface import Problem
from sources._model import (
    CASE_RECORD_FIELDS,
    CaseRecord,
    Channel,
    ComplainantRecord,
    Location,
    ReferralRecord,
    TimelineEntry,
    Unmapped,
)
from sources._query import CaseFilter
from sources._settings import SlaSettings, Vocabulary
from sources.rest._settings import CaseFields, ComplainantFields, HistoryFields, ReferralFields

_MISSING = object()


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path ('result.items', 'area.lat'); ``_MISSING`` when absent.

    A mapped page reads about twenty paths of each of its cases: the paths are split once, and
    a key of an object is one dictionary lookup."""
    if not path:
        return document
    if "." not in path and document.__class__ is dict:  # a key of the object: most paths
        return document.get(path, _MISSING)
    value = document
    for part in _parts(path):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


@functools.lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


_ABSENT: Any = None
"""A field a page was not read for (``CaseRecord.projection``)."""
_ALWAYS = frozenset({"source", "local_id", "received_at"})
_TOGETHER = (
    frozenset({"status", "source_status"}),  # one value, mapped and verbatim
    frozenset({"category", "source_category", "due_at"}),  # the due time needs the category
)


@functools.lru_cache(maxsize=256)
def _held(fields: frozenset[str]) -> frozenset[str] | None:
    """What a record mapped for ``fields`` holds (fields mapped from the same value come
    together); None when that is every field."""
    held = set((fields | _ALWAYS) & CASE_RECORD_FIELDS)
    for group in _TOGETHER:
        if held & group:
            held |= group - {"due_at"}
    return None if held >= CASE_RECORD_FIELDS else frozenset(held)


def items_at(source: str, document: Any, path: str, key: str) -> list[Any]:
    found = dig(document, path)
    if not isinstance(found, list):
        where = f"at {path!r}" if path else "as the body"
        raise SourceBadResponse(source, f"{key}: expected a list {where}, got {_kind(found)}")
    return found


def _kind(value: object) -> str:
    return "nothing" if value is _MISSING else type(value).__name__


class RecordMapper:
    def __init__(
        self,
        source: str,
        fields: CaseFields,
        vocabulary: Vocabulary,
        zone: str,
        sla: SlaSettings | None = None,
    ) -> None:
        self.source = source
        self.sla = sla or SlaSettings()
        self.fields = fields
        self.vocabulary = vocabulary
        self.zone = ZoneInfo(zone)

    def case_id(self, item: Any) -> str:
        if not isinstance(item, dict):
            raise SourceBadResponse(self.source, f"a case is {type(item).__name__}, not an object")
        return self._text(item, "id", self.fields.id)

    def by_case_id(self, items: Iterable[Any], local_ids: Sequence[str]) -> dict[str, Any]:
        """The items that are cases asked for, by case id: an API may answer more than it was
        asked (a batch endpoint ignoring a filter), and an id it does not know is absent."""
        wanted = set(local_ids)
        by_id: dict[str, Any] = {}
        for item in items:
            local_id = self.case_id(item)
            if local_id in wanted:
                by_id[local_id] = item
        return by_id

    def matches_nothing(self, where: CaseFilter) -> bool:
        """A status or category the vocabulary never produces: no case of this source can
        match, and an empty list pushed down would mean no filter at all to most APIs."""
        vocabulary = self.vocabulary
        return (
            where.statuses is not None and where.statuses.isdisjoint(vocabulary.statuses.values())
        ) or (
            where.categories is not None
            and where.categories.isdisjoint(vocabulary.categories.values())
        )

    def unmapped_problems(self, records: Iterable[CaseRecord]) -> list[Problem]:
        """A problem for each status, category or channel among ``records`` that the
        vocabulary does not map (what ``check`` reports), in a stable order."""
        unmapped = {
            value
            for record in records
            for value in (record.status, record.category, record.channel)
            if isinstance(value, Unmapped)
        }
        return [
            Problem(
                self.source,
                f"vocabulary.{value.key}",
                f"value {value.value!r} is not mapped",
                f"add {value.value!r} under vocabulary.{value.key}",
            )
            for value in sorted(unmapped, key=lambda u: (u.key, u.value))
        ]

    def case(
        self,
        item: Any,
        fields: frozenset[str] | None = None,
        timeline: tuple[TimelineEntry, ...] | None = None,
    ) -> CaseRecord:
        """The record of a case's object; with ``fields``, only those record fields (and
        ``source``, ``local_id``, ``received_at``) are mapped, the others are None, and the
        record says so (``CaseRecord.projection``), as the SQL row readers do. A field not
        mapped is not checked either: a page read for its titles does not fail on a malformed
        address. ``timeline``: the case's timeline when its page carries it
        (``CaseRecord.timeline``)."""
        if not isinstance(item, dict):
            raise SourceBadResponse(self.source, f"a case is {type(item).__name__}, not an object")
        f = self.fields
        reads = CASE_RECORD_FIELDS if fields is None else fields | _ALWAYS
        status = mapped_status = category = unified = _ABSENT
        if "status" in reads or "source_status" in reads:
            status = self._text(item, "status", f.status)
            mapped_status = self.vocabulary.status(self.source, status)
        if "category" in reads or "source_category" in reads or "due_at" in reads:
            category = self._text(item, "category", f.category)
            unified = self.vocabulary.category(self.source, category)
        received = self._time(item, "received_at", f.received_at)
        assert received is not None
        # Positional arguments in field order, each named alongside, as the SQL row mapper
        # builds records (sources/sql/_rows.py: keyword matching cost more than the fields).
        return CaseRecord(
            self.source,  # source
            self._text(item, "id", f.id),  # local_id
            self._text(item, "reference_number", f.reference_number)
            if "reference_number" in reads
            else _ABSENT,  # reference_number
            self._text(item, "title", f.title) if "title" in reads else _ABSENT,  # title
            self._text(item, "description", f.description)
            if "description" in reads
            else _ABSENT,  # description
            (
                Channel.OTHER
                if f.channel is None
                else self.vocabulary.channel(self.source, self._text(item, "channel", f.channel))
            )
            if "channel" in reads
            else _ABSENT,  # channel
            unified,  # category
            category,  # source_category
            mapped_status,  # status
            status,  # source_status
            received,  # received_at
            (self._time(item, "updated_at", f.updated_at, optional=True) or received)
            if "updated_at" in reads
            else _ABSENT,  # updated_at
            self.sla.due_at(received, unified, self._time(item, "due_at", f.due_at, optional=True))
            if "due_at" in reads
            else _ABSENT,  # due_at
            self._time(item, "closed_at", f.closed_at, optional=True)
            if "closed_at" in reads
            else _ABSENT,  # closed_at
            Location(
                self._optional_text(item, f.province_code),  # province_code
                self._optional_text(item, f.district_code),  # district_code
                self._optional_text(item, f.subdistrict_code),  # subdistrict_code
                self._optional_text(item, f.address),  # address
                self._number(item, "latitude", f.latitude),  # latitude
                self._number(item, "longitude", f.longitude),  # longitude
            )
            if "location" in reads
            else _ABSENT,  # location
            self._optional_text(item, f.responsible) if "responsible" in reads else _ABSENT,
            self._urls(item, f.media_urls) if "media_urls" in reads else _ABSENT,  # media_urls
            (self._optional_text(item, f.status_notes) or None)
            if "status_notes" in reads
            else _ABSENT,  # status_notes
            None if fields is None else _held(fields),  # projection
            timeline,  # timeline
        )

    def _urls(self, item: Any, path: str | None) -> tuple[str, ...]:
        value = None if path is None else dig(item, path)
        if value is _MISSING or value is None:
            return ()
        values = value if isinstance(value, list) else [value]
        return tuple(str(v) for v in values if isinstance(v, str) and v)

    def complainant(self, case_id: str, item: Any, fields: ComplainantFields) -> ComplainantRecord:
        return ComplainantRecord(
            source=self.source,
            case_id=case_id,
            name=self._optional_text(item, fields.name) or None,
            citizen_id=self._optional_text(item, fields.citizen_id) or None,
            phone=self._optional_text(item, fields.phone) or None,
            address=self._optional_text(item, fields.address) or None,
            is_anonymous=_flag(item, fields.is_anonymous),
            is_confidential=_flag(item, fields.is_confidential),
            citizen_key=self._optional_text(item, fields.citizen_key) or None,
        )

    def timeline_entry(self, item: Any, fields: HistoryFields) -> TimelineEntry:
        if not isinstance(item, dict):
            raise SourceBadResponse(self.source, "history: an entry is not an object")
        at = self._time(item, "history.at", fields.at)
        assert at is not None
        status = self._optional_text(item, fields.status)
        mapped = self.vocabulary.status(self.source, status) if status is not None else None
        return TimelineEntry(  # positionally, as in case()
            at,  # at
            mapped,  # status
            status,  # source_status
            self._optional_text(item, fields.note) or None,  # note
        )

    def referral(self, case_id: str, item: Any, fields: ReferralFields) -> ReferralRecord:
        if not isinstance(item, dict):
            raise SourceBadResponse(self.source, "referrals: an entry is not an object")
        agency = self._text(item, "referrals.to_agency", fields.to_agency)
        kind = self._optional_text(item, fields.kind)
        at = self._time(item, "referrals.at", fields.at)
        assert at is not None
        return ReferralRecord(
            from_source=self.source,
            from_local_id=case_id,
            to_agency=self.vocabulary.agency(self.source, agency),
            at=at,
            kind=self.vocabulary.referral_kind(self.source, kind),
            status=self._optional_text(item, fields.status),
            their_reference=self._optional_text(item, fields.their_reference),
            secrecy=self._optional_text(item, fields.secrecy),
        )

    def _text(self, item: Any, name: str, path: str) -> str:
        value = dig(item, path)
        if value is _MISSING or value is None:
            raise SourceBadResponse(self.source, f"fields.{name}: missing at {path!r}")
        if isinstance(value, dict | list):
            raise SourceBadResponse(
                self.source, f"fields.{name}: expected text at {path!r}, got {type(value).__name__}"
            )
        return str(value)

    def _optional_text(self, item: Any, path: str | None) -> str | None:
        if path is None:
            return None
        value = dig(item, path)
        return None if value is _MISSING or value is None else str(value)

    def _number(self, item: Any, name: str, path: str | None) -> float | None:
        if path is None:
            return None
        value = dig(item, path)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SourceBadResponse(self.source, f"fields.{name}: not a number at {path!r}")
        try:
            return float(value)
        except ValueError:
            raise SourceBadResponse(
                self.source, f"fields.{name}: not a number at {path!r}"
            ) from None

    def _time(
        self, item: Any, name: str, path: str | None, *, optional: bool = False
    ) -> datetime | None:
        if path is None:
            return None
        value = dig(item, path)
        if value is _MISSING or value is None:
            if optional:
                return None
            raise SourceBadResponse(self.source, f"fields.{name}: missing at {path!r}")
        if not isinstance(value, str):
            raise SourceBadResponse(
                self.source,
                f"fields.{name}: expected ISO 8601 text at {path!r}, got {type(value).__name__}",
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise SourceBadResponse(
                self.source, f"fields.{name}: not an ISO 8601 time at {path!r}"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.astimezone(UTC)


def _flag(item: Any, path: str | None) -> bool:
    """A yes/no field: JSON true, 1, or the text true/1/yes; anything else (absent) is no."""
    value = dig(item, path) if path else None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or value == 1
