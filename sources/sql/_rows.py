"""Native rows (dicts by column label) into unified records: vocabulary lookups and time zones,
once per row."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sources._errors import SourceBadResponse
from sources._model import (
    REFERRALS,
    TIMELINE,
    CanonicalStatus,
    CaseRecord,
    ComplainantRecord,
    Location,
    ReferralRecord,
    TimelineEntry,
    Unmapped,
)
from sources.sql._settings import SqlSettings
from sources.sql._shape import LOCATION_FIELDS, RECORD_FIELD_COLUMNS
from sources.sql._statements import Statements


class LabelledRow(Protocol):
    """A row read by column label: a dict, or asyncpg's ``Record`` (sources/sql/_driver.py)."""

    def __getitem__(self, label: str, /) -> Any: ...

    def get(self, label: str, default: Any = None, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class RowMapper:
    def __init__(self, settings: SqlSettings, statements: Statements) -> None:
        self.source = settings.id
        self.vocabulary = settings.vocabulary
        self.sla = settings.sla
        self.statements = statements
        self.naive = statements.shape.naive_times
        timeline = statements.shape.timeline
        self.timeline_naive = timeline.at_is_naive if timeline is not None else False
        self.labels = statements.labels
        self._readers: dict[tuple[str, ...], Callable[[LabelledRow], CaseRecord]] = {}
        self.case: Callable[[LabelledRow], CaseRecord] = self.case_reader(self.labels)
        """A case row (the shape's ``selected`` columns, in order) as a record."""
        self.timeline: Callable[[LabelledRow], tuple[str, TimelineEntry]] = self._timeline_reader()
        """A timeline row as its case's id and the entry."""

    def case_reader(self, labels: tuple[str, ...]) -> Callable[[LabelledRow], CaseRecord]:
        """The mapping of a row of the columns ``labels`` (the shape's, or some of them in
        the same order: ``Statements.labels_for``), made once per set of columns."""
        reader = self._readers.get(labels)
        if reader is None:
            reader = self._readers[labels] = self._case_reader(labels)
        return reader

    def _case_reader(self, labels: Sequence[str]) -> Callable[[LabelledRow], CaseRecord]:
        """The mapping of a case row, with each field's position in the statement's columns
        found once, here, rather than looked up by label in every row.

        A page maps a hundred rows, and reading seventeen values by label was a third of the
        mapping (``Record.get`` and its method call, 650 instructions a value, against one
        unpacking of the row). A column the source does not map has no position: it reads the
        ``None`` appended to each row. Rows are asyncpg's ``Record`` s or, from other drivers,
        dicts in the statement's column order (``SqlSource._fetch_values``); either way the
        values come in ``labels`` order, and a statement may add columns after them. Records
        are built with positional arguments, in the order their fields are declared
        (sources/_model.py, each named alongside): matching sixteen keyword arguments cost
        CaseRecord's ``__init__`` three times as much as the assignments themselves. The mapping
        tests compare every field of mapped records.

        When ``labels`` are some of the shape's columns (a page read for some fields), a
        field whose columns were not selected is None, not mapped from the missing values
        (``""`` for a missing title would pass for a real one), and the record names the
        fields it holds (``CaseRecord.projection``). The checks are one test of a closure's
        flag per field and row, so whole rows take the same reader.
        """
        at = _positions(labels)
        selected, mapped = frozenset(labels), frozenset(self.labels)

        def holds(*columns: str) -> bool:
            """Whether the row has these columns (or the source maps none of them: None)."""
            return all(column in selected or column not in mapped for column in columns)

        projection = (
            None
            if selected >= mapped
            else frozenset(
                field for field, columns in RECORD_FIELD_COLUMNS.items() if holds(*columns)
            )
        )
        has_reference, has_title = holds("reference_number"), holds("title")
        has_description = holds("description")
        has_channel = holds("channel") and "channel" in mapped  # unmapped: no channel
        has_status, has_category = holds("status"), holds("category")
        has_location = holds(*LOCATION_FIELDS)
        has_due = holds(*RECORD_FIELD_COLUMNS["due_at"])
        i_id, i_category = at("id"), at("category")
        i_reference, i_title, i_description = at("reference_number"), at("title"), at("description")
        i_channel, i_status, i_responsible = at("channel"), at("status"), at("responsible")
        i_province, i_district = at("province_code"), at("district_code")
        i_subdistrict, i_address = at("subdistrict_code"), at("address")
        i_latitude, i_longitude = at("latitude"), at("longitude")
        i_timeline = at(TIMELINE)  # a page that carries its timelines (embeds_timelines)
        timeline = self.embedded_timeline() if i_timeline >= 0 else None
        i_referrals = at(REFERRALS)  # and its referrals (embeds_referrals)
        referrals = self.embedded_referrals() if i_referrals >= 0 else None
        source, vocabulary, due_at = self.source, self.vocabulary, self.sla.due_rule()
        # The vocabulary's dicts read directly; a value they lack (or map to nothing) is left
        # to the vocabulary's own method, which says so (Unmapped). Three method calls on a
        # pydantic model a row cost more than the rest of a row's lookups.
        statuses, channels = vocabulary.statuses.get, vocabulary.channels.get
        categories = vocabulary.categories.get
        received_at = self._time("received_at", at("received_at"), required=True)
        updated_at = self._time("updated_at", at("updated_at"), required=True)
        source_due_at = self._time("due_at", at("due_at"))
        closed_at = self._time("closed_at", at("closed_at"))
        i_received, plain_received = at("received_at"), "received_at" not in self.naive
        i_updated, plain_updated = at("updated_at"), "updated_at" not in self.naive
        i_closed, plain_closed = at("closed_at"), "closed_at" not in self.naive
        has_updated, has_closed = i_updated >= 0, i_closed >= 0
        # Written out below where a call per value showed in a page's instructions
        # (bench/README.md): a row in column order (see _positions), a text value that is
        # already a str (_text), a timestamptz as asyncpg gives it (aware UTC, what the time
        # readers take as it is), a time column not read (None). Anything else goes to the
        # helpers, which check and convert.

        def case(values: LabelledRow) -> CaseRecord:
            row = (*(values.values() if values.__class__ is dict else values), None)
            status = category = unified = channel = _ABSENT
            if has_channel:
                native = row[i_channel]
                if native.__class__ is not str:
                    native = _text(native)
                channel = channels(native) or vocabulary.channel(source, native)
            if has_status:
                status = row[i_status]
                if status.__class__ is not str:
                    status = _text(status)
            if has_category:
                category = row[i_category]
                if category.__class__ is not str:
                    category = _text(category)
                unified = categories(category) or vocabulary.category(source, category)
            received: Any = row[i_received]  # required: None only when not selected
            if (
                received.__class__ is not datetime
                or received.tzinfo is not UTC
                or not plain_received
            ):
                received = received_at(row)
            return CaseRecord(
                source,  # source
                str(row[i_id]),  # local_id
                (v if (v := row[i_reference]).__class__ is str else _text(v))
                if has_reference
                else _ABSENT,  # reference_number
                (v if (v := row[i_title]).__class__ is str else _text(v))
                if has_title
                else _ABSENT,  # title
                (v if (v := row[i_description]).__class__ is str else _text(v))
                if has_description
                else _ABSENT,  # description
                channel,  # channel
                unified,  # category
                category,  # source_category
                (statuses(status) or vocabulary.status(source, status))
                if has_status
                else _ABSENT,  # status
                status,  # source_status
                received,  # received_at
                (
                    v
                    if (v := row[i_updated]).__class__ is datetime
                    and v.tzinfo is UTC
                    and plain_updated
                    else updated_at(row)
                )
                if has_updated
                else _ABSENT,  # type: ignore[arg-type]  # updated_at
                due_at(received, unified, source_due_at(row)) if has_due else _ABSENT,  # due_at
                (
                    v
                    if (v := row[i_closed]) is None
                    or (v.__class__ is datetime and v.tzinfo is UTC and plain_closed)
                    else closed_at(row)
                )
                if has_closed
                else _ABSENT,  # closed_at
                Location(
                    _optional_text(row[i_province]),  # province_code
                    _optional_text(row[i_district]),  # district_code
                    _optional_text(row[i_subdistrict]),  # subdistrict_code
                    _optional_text(row[i_address]),  # address
                    _optional_float(row[i_latitude]),  # latitude
                    _optional_float(row[i_longitude]),  # longitude
                )
                if has_location
                else _ABSENT,  # location
                _optional_text(row[i_responsible])
                if i_responsible >= 0
                else _ABSENT,  # responsible
                (),  # media_urls
                None,  # status_notes
                projection,  # projection
                timeline(row[i_timeline]) if timeline is not None else None,  # timeline
                referrals(row[i_referrals]) if referrals is not None else None,  # referrals
            )

        return case

    def _time(
        self, field: str, index: int, *, required: bool = False
    ) -> Callable[[Sequence[Any]], datetime | None]:
        """The reader of time column ``field`` at ``index`` of a case row: a ``timestamptz``
        as asyncpg gives it (aware, UTC) is taken as it is; anything else is checked and
        converted (naive local times to UTC)."""
        source, convert, naive = self.source, self.statements.from_column_time, field in self.naive
        if index < 0 and field in self.labels:  # not selected: a page read for other fields
            return _absent

        def read(row: Sequence[Any]) -> datetime | None:
            value = row[index]
            if value.__class__ is datetime and value.tzinfo is UTC and not naive:
                return value
            if value is None:
                if required:
                    raise SourceBadResponse(source, f"cases.{field} is NULL in a case row")
                return None
            if not isinstance(value, datetime):
                detail = f"cases.{field} is {type(value).__name__}, not a date/time"
                raise SourceBadResponse(source, detail)
            return convert(value, naive)

        return read

    def complainant(self, values: LabelledRow) -> ComplainantRecord:
        return ComplainantRecord(
            source=self.source,
            case_id=str(values["case_id"]),
            name=_optional_text(values.get("name")) or None,
            citizen_id=_optional_text(values.get("citizen_id")) or None,
            phone=_optional_text(values.get("phone")) or None,
            address=_optional_text(values.get("address")) or None,
            is_anonymous=bool(values.get("is_anonymous") or False),
            is_confidential=bool(values.get("is_confidential") or False),
            citizen_key=_optional_text(values.get("citizen_key")) or None,
        )

    def _timeline_reader(self) -> Callable[[LabelledRow], tuple[str, TimelineEntry]]:
        """The mapping of a timeline row (``Statements.timelines``: case id, time, then status
        and note where the source has them) to its case's id and the entry, by position as in
        :meth:`_case_reader`."""
        labels = (
            [column.name for column in self.statements.timelines.selected_columns]
            if self.statements.shape.timeline is not None
            else []
        )
        at = _positions(labels)
        i_id, i_at, i_status, i_note = at("case_id"), at("at"), at("status"), at("note")
        entry_of = self._entry_of()

        def entry(values: LabelledRow) -> tuple[str, TimelineEntry]:
            row = (*(values.values() if values.__class__ is dict else values), None)
            return str(row[i_id]), entry_of(row[i_at], row[i_status], row[i_note])

        return entry

    def _entry_of(self) -> Callable[[Any, Any, Any], TimelineEntry]:
        """The entry of a timeline row's time, status and note (None where the source maps
        none): the one mapping of a loader's timeline rows and of the timelines a page carries
        (:meth:`embedded_timeline`)."""
        source, naive, convert = self.source, self.timeline_naive, self.statements.from_column_time
        vocabulary = self.vocabulary
        statuses = vocabulary.statuses.get  # as in _case_reader

        def entry_of(when: Any, status: Any, note: Any) -> TimelineEntry:
            if when.__class__ is not datetime or when.tzinfo is not UTC or naive:
                # not as PostgreSQL's timestamptz arrives through asyncpg: check and convert
                if not isinstance(when, datetime):
                    detail = f"timeline.at is {type(when).__name__}, not a time"
                    raise SourceBadResponse(source, detail)
                when = convert(when, naive)
            mapped: CanonicalStatus | Unmapped | None = None
            if status is not None:
                if status.__class__ is not str:
                    status = str(status)
                mapped = statuses(status) or vocabulary.status(source, status)
            if note is not None and note.__class__ is not str:
                note = str(note)
            return TimelineEntry(  # positionally, as in _case_reader
                when,  # at
                mapped,  # status
                status,  # source_status
                note or None,  # note
            )

        return entry_of

    def embedded_timeline(self) -> Callable[[Any], tuple[TimelineEntry, ...] | None]:
        """The mapping of a case row's timeline column (``Statements.embedded_timeline``: a
        list of (time, status, note) rows, or NULL for a case without entries). A timeline
        that does not map (a row that is not a time) is None, as if the page had not carried
        it: the case's timeline is then asked of the loader, whose batch reports the error
        the usual way, naming the source."""
        entry_of = self._entry_of()

        def timeline(values: Any) -> tuple[TimelineEntry, ...] | None:
            if values is None:
                return ()
            try:
                return tuple([entry_of(*entry) for entry in values])
            except Exception:
                return None

        return timeline

    def embedded_referrals(self) -> Callable[[Any], tuple[ReferralRecord, ...] | None]:
        """The mapping of a case row's referrals column (``Statements.embedded_referrals``: a
        list of rows of ``Statements.referral_labels``, or NULL for a case without any), each
        row mapped as a row of the referrals batch is (:meth:`referral`), so a carried
        referral is the loaded one. Referrals that do not map are None, as an unmappable
        carried timeline is: the loader is asked and reports the error naming the source."""
        labels, referral = self.statements.referral_labels, self.referral

        def referrals(values: Any) -> tuple[ReferralRecord, ...] | None:
            if values is None:
                return ()
            try:
                return tuple([referral(dict(zip(labels, row, strict=True))) for row in values])
            except Exception:
                return None

        return referrals

    def referral(self, values: LabelledRow) -> ReferralRecord:
        at = values["at"]
        if not isinstance(at, datetime):
            raise SourceBadResponse(self.source, f"referrals.at is {type(at).__name__}, not a time")
        agency = _text(values["to_agency"])
        kind = _optional_text(values.get("kind"))
        shape = self.statements.shape.referrals
        return ReferralRecord(
            from_source=self.source,
            from_local_id=str(values["case_id"]),
            to_agency=self.vocabulary.agency(self.source, agency),
            at=self.statements.from_column_time(at, shape is not None and shape.at_is_naive),
            kind=self.vocabulary.referral_kind(self.source, kind),
            status=_optional_text(values.get("status")),
            their_reference=_optional_text(values.get("their_reference")),
            secrecy=_optional_text(values.get("secrecy")),
        )


def _positions(labels: Sequence[str]) -> Callable[[str], int]:
    """Where each label stands in a statement's columns, for a row taken as its values in
    column order and a ``None`` after them (``(*values, None)``: a Record's own order, a dict's
    insertion order, as ``SqlSource._fetch_values`` builds it from the columns): a label the
    statement lacks reads that ``None``."""
    position = {label: index for index, label in enumerate(labels)}
    return lambda label: position.get(label, -1)


_ABSENT: Any = None
"""A field a page was not read for (``CaseRecord.projection``)."""


def _absent(_row: Sequence[Any]) -> None:
    return None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
