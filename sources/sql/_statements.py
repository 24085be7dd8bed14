"""SQL statements for the unified operations, built once per source shape with SQLAlchemy Core.

Every filter and the keyset position become WHERE conditions, so a page deep in the results
costs what the first page costs. A filter that no native value can satisfy (say a status the
agency never uses) yields ``None``: no statement, no round trip.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    exists,
    func,
    not_,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.named_types import NamedType
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeEngine

from sources._model import CARRIED, REFERRALS, TIMELINE  # also the labels of their columns
from sources._query import AgencyAccess, CaseFilter, CaseOrder, Position, SortField
from sources.sql._dialects import SqlDialect
from sources.sql._due import is_overdue
from sources.sql._settings import SqlSettings
from sources.sql._shape import RECORD_FIELD_COLUMNS, CaseShape, native_keys

LIMIT = "limit"
"""The name a page's statement binds its row limit to (:meth:`Statements.search`)."""


class Statements:
    def __init__(
        self, settings: SqlSettings, shape: CaseShape, dialect: SqlDialect | None = None
    ) -> None:
        self.settings = settings
        self.shape = shape
        self.zone = ZoneInfo(settings.timezone)
        self.dialect = dialect if dialect is not None else SqlDialect()
        """What this database's SQL does its own way (sources/sql/_dialects.py)."""
        self._first_pages: dict[tuple[SortField, bool, tuple[str, ...] | None], Select[Any]] = {}
        self.labels = tuple(getattr(column, "name", "") for column in shape.selected)
        """The labels of a case row's columns, in order (``CaseShape.selected``)."""
        self._projections: dict[tuple[frozenset[str], SortField], tuple[str, ...] | None] = {}
        self._by_ids_carrying: dict[tuple[str, ...], Select[Any]] = {}

    def labels_for(self, fields: frozenset[str] | None, order: CaseOrder) -> tuple[str, ...] | None:
        """The labels of the columns a page read for ``fields`` (record fields) selects, in
        the statement's order: the id, the order's column and the columns of ``fields``
        (``RECORD_FIELD_COLUMNS``). None when that is every column, or when ``fields`` names
        a field this source does not know (it is then read whole)."""
        if fields is None:
            return None
        key = (fields, order.field)
        if key in self._projections:
            return self._projections[key]
        wanted = {"id"}
        for field in (fields - CARRIED) | {order.record_field}:
            columns = RECORD_FIELD_COLUMNS.get(field)
            if columns is None:
                wanted.update(self.labels)
                break
            wanted.update(columns)
        labels: tuple[str, ...] | None = tuple(label for label in self.labels if label in wanted)
        if labels == self.labels:
            labels = None
        carried = self.carried_labels(fields)
        if carried:
            labels = (*(labels or self.labels), *carried)
        self._projections[key] = labels
        return labels

    def carried_labels(self, fields: frozenset[str]) -> tuple[str, ...]:
        """The labels of the relations a statement reading cases for ``fields`` carries in
        columns after the case's own, in that order: ``TIMELINE`` where
        :attr:`embeds_timelines`, ``REFERRALS`` where :attr:`embeds_referrals`."""
        carried: tuple[str, ...] = ()
        if TIMELINE in fields and self.embeds_timelines:
            carried = (TIMELINE,)
        if REFERRALS in fields and self.embeds_referrals:
            carried = (*carried, REFERRALS)
        return carried

    @cached_property
    def _entry_order(self) -> list[ColumnElement[Any]]:
        """A case's timeline entries in order: by time, then the configured tie breaker, else
        by status and note, so that entries of the same time come in one order whichever
        statement reads them (the batch of :meth:`timelines` or a page's
        :meth:`embedded_timeline`) and whenever."""
        timeline = self.shape.timeline
        assert timeline is not None
        if timeline.tie_breaker is not None:
            return [timeline.at, timeline.tie_breaker]
        rest = [column for column in (timeline.status, timeline.note) if column is not None]
        return [timeline.at, *rest]

    def without_carried(self, labels: tuple[str, ...]) -> tuple[str, ...] | None:
        """``labels`` (:meth:`labels_for`) for the same page without the relations it
        carries (its timelines, its referrals)."""
        kept = tuple(label for label in labels if label not in CARRIED)
        return None if kept == self.labels else kept

    @cached_property
    def embeds_timelines(self) -> bool:
        """Whether a page can carry its cases' timelines (``TIMELINE`` among the fields it is
        read for): on PostgreSQL, as one array of rows per case, aggregated by the database
        in the page's own statement (:meth:`embedded_timeline`), so the page and its
        timelines are one round trip instead of two.

        Not when a column of the entries is of the database's own type (an enum, a domain) or
        one SQLAlchemy does not know: asyncpg decodes those in a column of their own, as the
        timeline batch reads them, but not inside an anonymous row ("no decoder for composite
        type element"). Such a log is left to the loader."""
        timeline = self.shape.timeline
        if not self.dialect.aggregates_rows or timeline is None:
            return False
        columns = (timeline.at, timeline.status, timeline.note)
        return all(column is None or _decodable_in_a_row(column.type) for column in columns)

    @cached_property
    def embedded_timeline(self) -> ColumnElement[Any]:
        """A case row's timeline column: ``array_agg((at, status, note) ORDER BY at, tie)``
        over its entries, as a correlated subquery (NULL for a case without entries); a
        column the source does not map is a typed NULL in each row. The entries' index on
        (case id, time) serves it as it serves :meth:`timelines`."""
        timeline = self.shape.timeline
        assert timeline is not None
        absent = cast(null(), Text)
        entry = tuple_(
            timeline.at,
            timeline.status if timeline.status is not None else absent,
            timeline.note if timeline.note is not None else absent,
        )
        order = self._entry_order
        aggregated = (
            select(func.array_agg(aggregate_order_by(entry, *order)))
            .select_from(timeline.from_clause)
            .where(timeline.case_id == self.shape.id)
        )
        return aggregated.scalar_subquery().label(TIMELINE)

    @cached_property
    def embeds_referrals(self) -> bool:
        """Whether a page (or a batch of cases by id) can carry its cases' referrals
        (``REFERRALS`` among the fields it is read for), as :attr:`embeds_timelines` its
        timelines: on PostgreSQL, one array of rows per case (:meth:`embedded_referrals`),
        when asyncpg can decode every column of a referral inside an anonymous row. A source
        that maps no referrals carries them anywhere: every case's are none, a NULL column."""
        referrals = self.shape.referrals
        if referrals is None:
            return True
        if not self.dialect.aggregates_rows:
            return False
        return all(_decodable_in_a_row(column.type) for column in referrals.columns.values())

    @cached_property
    def referral_labels(self) -> tuple[str, ...]:
        """The labels of a referral's values, in the order of the rows
        :meth:`embedded_referrals` carries (those of :meth:`referrals`, but the tie breaker)."""
        referrals = self.shape.referrals
        if referrals is None:
            return ()
        return tuple(name for name in referrals.columns if name != "tie_breaker")

    @cached_property
    def _referral_order(self) -> list[ColumnElement[Any]]:
        """A case's referrals in order: by time, then the configured tie breaker, else by
        every other value, so that referrals of the same time come in one order whichever
        statement reads them (the batch of :meth:`referrals` or the
        :meth:`embedded_referrals` a case's row carries) and whenever."""
        referrals = self.shape.referrals
        assert referrals is not None
        columns = referrals.columns
        if "tie_breaker" in columns:
            return [columns["at"], columns["tie_breaker"]]
        rest = [columns[name] for name in self.referral_labels if name not in ("case_id", "at")]
        return [columns["at"], *rest]

    @cached_property
    def embedded_referrals(self) -> ColumnElement[Any]:
        """A case row's referrals column: ``array_agg((case_id, to_agency, at, ...) ORDER BY
        at, tie)`` over its referrals (:attr:`referral_labels`), as a correlated subquery
        (NULL for a case without any); a NULL of every row where the source maps no
        referrals. The referrals' index on the case id serves it as it serves
        :meth:`referrals`."""
        referrals = self.shape.referrals
        if referrals is None:  # a NULL of no type: MySQL casts nothing to TEXT
            return null().label(REFERRALS)
        columns = referrals.columns
        row = tuple_(*(columns[name] for name in self.referral_labels))
        aggregated = (
            select(func.array_agg(aggregate_order_by(row, *self._referral_order)))
            .select_from(referrals.table)
            .where(columns["case_id"] == self.shape.id)
        )
        return aggregated.scalar_subquery().label(REFERRALS)

    def _carried_columns(self, labels: Sequence[str]) -> list[ColumnElement[Any]]:
        """The columns of the relations ``labels`` name (:meth:`carried_labels`), in order."""
        found: list[ColumnElement[Any]] = []
        for label in labels:
            if label == TIMELINE:
                found.append(self.embedded_timeline)
            elif label == REFERRALS:
                found.append(self.embedded_referrals)
        return found

    def among(self, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """``column IN values``, for a filter's list of codes, as the dialect binds a list
        (PostgreSQL: one array, ``= ANY($1)``; sources/sql/_dialects.py)."""
        return self.dialect.among(column, values)

    def among_keys(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """``column IN :keys``, the batch's keys bound when the statement is sent (``KEYS``):
        a statement of a batch of keys is then built, compiled and given its cache key once
        per source, not once per batch (building a SELECT and its cache key cost more than
        rendering it, bench/README.md)."""
        return self.dialect.among_keys(column)

    def native_ids(self, local_ids: Sequence[str]) -> list[Any]:
        """The keys as the id column stores them, leaving out those no row can have: a
        batch's hundred keys in one loop, for an integer column without a call each."""
        if self.shape.id_type is not int:
            return list(local_ids)
        natives = []
        for local_id in local_ids:
            if local_id.__class__ is str and local_id.isascii() and local_id.isdigit():
                key = int(local_id)  # digits only: int() accepts it, as native_id would
                if key < 2**63:
                    natives.append(key)
            else:
                found = self.native_id(local_id)
                if found is not None:
                    natives.append(found)
        return natives

    def native_id(self, local_id: str) -> Any | None:
        """The key as the id column stores it, or None when no row can have it."""
        if self.shape.id_type is int:
            try:
                key = int(local_id)
            except ValueError:
                return None
            return key if -(2**63) <= key < 2**63 else None  # past BIGINT no row has it
        return local_id

    def to_column_time(self, value: datetime, naive: bool) -> datetime:
        """Aware UTC times as a column stores them (naive columns hold the source's local time)."""
        if not naive:
            return value
        return value.astimezone(self.zone).replace(tzinfo=None)

    def from_column_time(self, value: datetime, naive: bool) -> datetime:
        if naive or value.tzinfo is None:
            return value.replace(tzinfo=self.zone).astimezone(UTC)
        return value.astimezone(UTC)

    def native_references(self, references: Sequence[str]) -> list[Any]:
        """Reference numbers as their column stores them, leaving out those no row can have."""
        if self.shape.reference_type is not int:
            return list(references)
        return [int(r) for r in references if r.isascii() and r.isdigit() and int(r) < 2**63]

    @cached_property
    def cases_by_references(self) -> Select[Any]:
        """Cases by the agency's own case number (``KEYS``): the federation key of a case."""
        shape = self.shape
        return (
            select(*shape.selected)
            .select_from(shape.from_clause)
            .where(self.among_keys(shape.reference_number))
        )

    @cached_property
    def cases_by_ids(self) -> Select[Any]:
        """Cases by native id (``KEYS``)."""
        shape = self.shape
        return (
            select(*shape.selected).select_from(shape.from_clause).where(self.among_keys(shape.id))
        )

    def cases_by_ids_carrying(self, carried: tuple[str, ...]) -> Select[Any]:
        """Cases by native id (``KEYS``), each row carrying the relations ``carried``
        (:meth:`carried_labels`) in columns after its own: a case in full detail is one
        round trip. Built once per source and relations."""
        statement = self._by_ids_carrying.get(carried)
        if statement is None:
            shape = self.shape
            statement = self._by_ids_carrying[carried] = (
                select(*shape.selected, *self._carried_columns(carried))
                .select_from(shape.from_clause)
                .where(self.among_keys(shape.id))
            )
        return statement

    def search(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        labels: tuple[str, ...] | None = None,
    ) -> tuple[Select[Any], dict[str, Any]] | None:
        """A page's statement and the values of its named parameters (``LIMIT``), selecting
        the columns ``labels`` (:meth:`labels_for`; None: every column).

        A page with no filter condition and no position (a dashboard's first page, the most
        asked) is one statement per order and columns, built and given its cache key once per
        source (:meth:`_first_page`); any other is built for its filter."""
        conditions = self._conditions(where)
        if conditions is None:
            return None
        parameters = {LIMIT: limit}
        if not conditions and after is None:
            return self._first_page(order.field, order.descending, labels), parameters
        sort, naive = self._sort_column(order)
        if after is not None:
            keyset = self._after(sort, naive, order.descending, after)
            if keyset is None:
                return None
            conditions.append(keyset)
        return self._page(sort, order.descending, labels).where(*conditions), parameters

    def _first_page(
        self, field: SortField, descending: bool, labels: tuple[str, ...] | None
    ) -> Select[Any]:
        key = (field, descending, labels)
        page = self._first_pages.get(key)
        if page is None:
            sort, _ = self._sort_column(CaseOrder(field=field, descending=descending))
            page = self._first_pages[key] = self._page(sort, descending, labels)
        return page

    def _page(
        self, sort: ColumnElement[Any], descending: bool, labels: tuple[str, ...] | None
    ) -> Select[Any]:
        """Cases in ``sort`` order (ties by id), ``LIMIT`` of them."""
        shape = self.shape
        ordering = [sort.desc(), shape.id.desc()] if descending else [sort.asc(), shape.id.asc()]
        selected = shape.selected
        if labels is not None:
            selected = [column for column in selected if getattr(column, "name", "") in labels]
            selected = [*selected, *self._carried_columns(labels)]
        return (
            select(*selected)
            .select_from(shape.from_clause)
            .order_by(*ordering)
            .limit(bindparam(LIMIT, type_=Integer))
        )

    def count(self, where: CaseFilter) -> Select[Any] | None:
        conditions = self._conditions(where)
        if conditions is None:
            return None
        return select(func.count()).select_from(self.shape.from_clause).where(*conditions)

    @cached_property
    def timelines(self) -> Select[Any]:
        """Timeline entries of the cases whose native ids are ``KEYS``, case by case in order."""
        timeline = self.shape.timeline
        assert timeline is not None
        columns: list[ColumnElement[Any]] = [
            timeline.case_id.label("case_id"),
            timeline.at.label("at"),
        ]
        if timeline.status is not None:
            columns.append(timeline.status.label("status"))
        if timeline.note is not None:
            columns.append(timeline.note.label("note"))
        order = [timeline.case_id, *self._entry_order]
        return (
            select(*columns)
            .select_from(timeline.from_clause)
            .where(self.among_keys(timeline.case_id))
            .order_by(*order)
        )

    @cached_property
    def complainants(self) -> Select[Any]:
        """The complainants of the cases whose native ids are ``KEYS``."""
        shape = self.shape.complainant
        assert shape is not None
        selected = [column.label(name) for name, column in shape.columns.items()]
        return select(shape.case_id.label("case_id"), *selected).where(
            self.among_keys(shape.case_id)
        )

    @cached_property
    def cases_by_complainant(self) -> Select[Any]:
        """Cases whose complainant's key is one of ``KEYS`` (citizen keys): never anonymous or
        confidential ones, whose complainant must not be linked to anything."""
        shape = self.shape.complainant
        assert shape is not None and "citizen_key" in shape.columns
        columns = shape.columns
        key = columns["citizen_key"]
        conditions: list[ColumnElement[bool]] = [self.among_keys(key)]
        for flag in ("is_anonymous", "is_confidential"):
            if flag in columns:
                conditions.append(or_(columns[flag].is_(None), columns[flag] == False))  # noqa: E712
        base = shape.join if shape.join is not None else self.shape.from_clause
        return (
            select(*self.shape.selected, key.label("citizen_key"))
            .select_from(base)
            .where(*conditions)
            .order_by(self.shape.received_at, self.shape.id)
        )

    @cached_property
    def referrals(self) -> Select[Any]:
        """Referrals out of the cases whose native ids are ``KEYS``."""
        shape = self.shape.referrals
        assert shape is not None
        return self._referral_select().where(self.among_keys(shape.columns["case_id"]))

    def referrals_to(
        self, native_agencies: Sequence[str], references: Sequence[str]
    ) -> Select[Any]:
        shape = self.shape.referrals
        assert shape is not None and "their_reference" in shape.columns
        return self._referral_select().where(
            shape.columns["to_agency"].in_(native_agencies),
            self.among(shape.columns["their_reference"], references),
        )

    def referred_references(self) -> Select[Any]:
        """Distinct (native agency, their reference) pairs of every referral with a reference."""
        shape = self.shape.referrals
        assert shape is not None and "their_reference" in shape.columns
        to_agency, reference = shape.columns["to_agency"], shape.columns["their_reference"]
        return (
            select(to_agency.label("to_agency"), reference.label("their_reference"))
            .where(reference.is_not(None))
            .distinct()
        )

    def _referral_select(self) -> Select[Any]:
        shape = self.shape.referrals
        assert shape is not None
        columns = shape.columns
        order = [columns["case_id"], *self._referral_order]
        selected = [column.label(name) for name, column in columns.items() if name != "tie_breaker"]
        return select(*selected).order_by(*order)

    def _sort_column(self, order: CaseOrder) -> tuple[ColumnElement[Any], bool]:
        if order.field is SortField.UPDATED_AT:
            return self.shape.updated_at, "updated_at" in self.shape.naive_times
        return self.shape.received_at, "received_at" in self.shape.naive_times

    def _after(
        self, sort: ColumnElement[Any], naive: bool, descending: bool, after: Position
    ) -> ColumnElement[bool] | None:
        """Rows strictly after ``after`` in the global (value, source, local id) order: the
        ``updated_at`` watermark of change detection (sources/_changes.py) is such a position."""
        value = self.to_column_time(after.value, naive)
        later: Callable[[Any, Any], ColumnElement[bool]] = (
            operator.lt if descending else operator.gt
        )
        if self.settings.id != after.source:
            # Ties on the sort value are ordered by source id, in the same direction.
            ties_come_after = (self.settings.id < after.source) == descending
            if ties_come_after:
                return or_(later(sort, value), sort == value)
            return later(sort, value)
        if after.local_id == "":
            # The start of a moment (a watermark taken from a clock): every case at that value.
            return or_(later(sort, value), sort == value)
        native = self.native_id(after.local_id)
        if native is None:
            return None
        return self.dialect.after(sort, self.shape.id, value, native, descending)

    def _conditions(self, where: CaseFilter) -> list[ColumnElement[bool]] | None:
        shape = self.shape
        vocabulary = self.settings.vocabulary
        conditions: list[ColumnElement[bool]] = []
        if where.statuses is not None:
            natives = native_keys(vocabulary.statuses, where.statuses)
            if not natives:
                return None
            conditions.append(self.among(shape.status, natives))
        if where.categories is not None:
            natives = native_keys(vocabulary.categories, where.categories)
            if not natives:
                return None
            conditions.append(self.among(shape.category_code, natives))
        for codes, column in (
            (where.province_codes, shape.province_code),
            (where.district_codes, shape.district_code),
        ):
            if codes is None:
                continue
            if column is None:
                return None
            conditions.append(self.among(column, sorted(codes)))
        naive = "received_at" in shape.naive_times
        if where.received_from is not None:
            conditions.append(shape.received_at >= self.to_column_time(where.received_from, naive))
        if where.received_before is not None:
            conditions.append(shape.received_at < self.to_column_time(where.received_before, naive))
        if where.text:
            texts = [column for column in (shape.title, shape.description) if column is not None]
            conditions.append(
                or_(*(column.icontains(where.text, autoescape=True) for column in texts))
            )
        if where.overdue is not None:
            now = where.as_of or datetime.now(UTC)
            overdue = is_overdue(self.settings, shape, self.to_column_time, now)
            conditions.append(overdue if where.overdue else not_(overdue))
        if where.access is not None and where.access.agency != self.settings.agency.code:
            visible = self._visible_to(where.access)
            if visible is None:
                return None
            conditions.append(visible)
        return conditions

    def _visible_to(self, access: AgencyAccess) -> ColumnElement[bool] | None:
        """Another agency's view of this source: cases referred to it (a referral row of the
        case), or referred here by it (ids its own systems recorded); None when neither can be."""
        shape = self.shape
        allowed: list[ColumnElement[bool]] = []
        referrals = shape.referrals
        natives = [
            n for n, code in self.settings.vocabulary.agencies.items() if code == access.agency
        ]
        if referrals is not None and natives:
            columns = referrals.columns
            allowed.append(
                exists()
                .where(columns["case_id"] == shape.id, self.among(columns["to_agency"], natives))
                .correlate(shape.id.table)
            )
        ids = [
            n for n in (self.native_id(i) for i in access.ids_in(self.settings.id)) if n is not None
        ]
        if ids:
            allowed.append(self.among(shape.id, ids))
        return or_(*allowed) if allowed else None


def _decodable_in_a_row(kind: TypeEngine[Any]) -> bool:
    """Whether asyncpg decodes values of a reflected column type inside an anonymous row
    (``(a, b, c)``): PostgreSQL's built-in types, arrays of them. A type of the database's
    own (SQLAlchemy reflects enums and domains as ``NamedType``) or one SQLAlchemy does not
    know (``NullType``: a composite, an extension's type) is not."""
    if isinstance(kind, ARRAY):
        return _decodable_in_a_row(kind.item_type)
    return not isinstance(kind, NamedType | NullType)
