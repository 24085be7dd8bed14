"""The agency's reflected tables, resolved once into the columns each unified field reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, DateTime, FromClause, String, Table, func, literal
from sqlalchemy.sql.elements import ColumnElement

from sources._interface import Problem
from sources.sql._settings import Constant, SqlSettings

CASE_FIELDS = (
    "reference_number",
    "title",
    "status",
    "received_at",
)
OPTIONAL_CASE_FIELDS = (
    "description",
    "channel",
    "updated_at",
    "due_at",
    "closed_at",
    "responsible",
)
LOCATION_FIELDS = (
    "province_code",
    "district_code",
    "subdistrict_code",
    "address",
    "latitude",
    "longitude",
)
TIME_FIELDS = frozenset({"received_at", "updated_at", "due_at", "closed_at"})

RECORD_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "source": (),
    "local_id": ("id",),
    "reference_number": ("reference_number",),
    "title": ("title",),
    "description": ("description",),
    "channel": ("channel",),
    "category": ("category",),
    "source_category": ("category",),
    "status": ("status",),
    "source_status": ("status",),
    "received_at": ("received_at",),
    "updated_at": ("updated_at",),
    "due_at": ("due_at", "received_at", "category"),  # the source's, else received + SLA days
    "closed_at": ("closed_at",),
    "location": LOCATION_FIELDS,
    "responsible": ("responsible",),
    "media_urls": (),
    "status_notes": (),
}
"""The selected columns (by label, ``CaseShape.selected``) each ``CaseRecord`` field is mapped
from, for a page read for some fields only (``SqlSource.search_cases(fields=...)``). A test
maps each field alone and compares it with the whole record's."""


@dataclass
class TimelineShape:
    table: Table
    case_id: Column[Any]
    at: Column[Any]
    at_is_naive: bool
    status: Column[Any] | None
    """The entry's status as the agency names it: the log's column, or the label its key has in
    the status lookup table (then read through ``from_clause``)."""
    note: Column[Any] | None
    tie_breaker: Column[Any] | None
    from_clause: FromClause
    """The log joined to the status lookup, when there is one; else the log itself."""


@dataclass
class ReferralShape:
    table: Table
    columns: dict[str, Column[Any]]
    at_is_naive: bool


COMPLAINANT_FIELDS = (
    "name",
    "citizen_id",
    "phone",
    "address",
    "is_anonymous",
    "is_confidential",
    "citizen_key",
)


@dataclass
class ComplainantShape:
    """The complainant's columns, labelled by unified name, and how to reach them from a case."""

    case_id: Column[Any]
    columns: dict[str, Column[Any]]
    join: FromClause | None
    """The case table joined to the complainant table, when the data lives in one."""


@dataclass
class CaseShape:
    """Everything a statement needs: the FROM clause, labelled columns, and filter targets."""

    from_clause: FromClause
    id: Column[Any]
    id_type: type
    selected: list[ColumnElement[Any]]
    naive_times: frozenset[str]
    received_at: ColumnElement[Any]
    updated_at: ColumnElement[Any]
    reference_number: Column[Any]
    reference_type: type
    title: Column[Any]
    description: ColumnElement[Any] | None
    """None: the agency keeps no description (a constant is a literal)."""
    status: Column[Any]
    """The case's status as the agency names it: its own column, or the label of its key in
    the status lookup table (``status_lookup``)."""
    channel: ColumnElement[Any] | None
    category_code: ColumnElement[Any]
    province_code: ColumnElement[Any] | None
    district_code: ColumnElement[Any] | None
    timeline: TimelineShape | None = None
    referrals: ReferralShape | None = None
    complainant: ComplainantShape | None = None


class _Resolver:
    """Looks columns up by configured name, collecting every problem rather than stopping at one."""

    def __init__(self, settings: SqlSettings, tables: dict[str, Table | None]) -> None:
        self.settings = settings
        self.tables = tables
        self.problems: list[Problem] = []

    def table(self, key: str, name: str) -> Table | None:
        table = self.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self.tables)) or "(the database has no tables)"
            self.problem(key, f"table {name!r} does not exist", f"use one of: {known}")
        return table

    def value(
        self, table: Table | None, key: str, spec: str | Constant | None
    ) -> ColumnElement[Any] | None:
        """A column by name, or a constant as a literal of every row (``{value: PHONE}``)."""
        if isinstance(spec, Constant):
            return literal(spec.value, String)
        return self.column(table, key, spec)

    def column(self, table: Table | None, key: str, name: str | None) -> Column[Any] | None:
        if table is None or name is None:
            return None
        if name in table.c:
            return table.c[name]
        known = ", ".join(c.name for c in table.c)
        self.problem(key, f"table {table.name!r} has no column {name!r}", f"use one of: {known}")
        return None

    def time_column(self, table: Table | None, key: str, name: str | None) -> Column[Any] | None:
        column = self.column(table, key, name)
        if column is not None and not isinstance(column.type, DateTime):
            self.problem(
                key,
                f"column {column.name!r} has type {column.type}, not a date/time type",
                "map a TIMESTAMP/DATETIME column, or convert the column in a view",
            )
        return column

    def problem(self, key: str, problem: str, fix: str) -> None:
        self.problems.append(Problem(self.settings.id, key, problem, fix))


def table_names(settings: SqlSettings) -> list[str]:
    names = [settings.cases.table]
    if settings.location.table:
        names.append(settings.location.table)
    if settings.category_lookup:
        names.append(settings.category_lookup.table)
    if settings.status_lookup:
        names.append(settings.status_lookup.table)
    if settings.timeline:
        names.append(settings.timeline.table)
    if settings.referrals:
        names.append(settings.referrals.table)
    if settings.complainant and settings.complainant.table:
        names.append(settings.complainant.table)
    return names


def _is_naive(column: ColumnElement[Any] | None) -> bool:
    return column is not None and isinstance(column.type, DateTime) and not column.type.timezone


def resolve_shape(
    settings: SqlSettings, tables: dict[str, Table | None]
) -> tuple[CaseShape | None, list[Problem]]:
    """Resolve the mapping against the database's tables (reflected where the mapping names them).

    The shape is None when anything is wrong; the problems then say what and how to fix it.
    """
    r = _Resolver(settings, tables)
    cfg = settings.cases
    cases = r.table("cases.table", cfg.table)
    case_id = r.column(cases, "cases.id", cfg.id)
    found: dict[str, ColumnElement[Any] | None] = {}
    for name in (*CASE_FIELDS, *OPTIONAL_CASE_FIELDS):
        spec = getattr(cfg, name)
        if name in TIME_FIELDS:
            found[name] = r.time_column(cases, f"cases.{name}", spec)
        else:
            found[name] = r.value(cases, f"cases.{name}", spec)

    loc_cfg = settings.location
    loc_table = cases
    from_clause: FromClause | None = cases
    if loc_cfg.table is not None and cases is not None and case_id is not None:
        loc_table = r.table("location.table", loc_cfg.table)
        loc_key = r.column(loc_table, "location.case_id", loc_cfg.case_id)
        if loc_table is not None and loc_key is not None:
            from_clause = cases.outerjoin(loc_table, loc_key == case_id)
    for name in LOCATION_FIELDS:
        found[name] = r.column(loc_table, f"location.{name}", getattr(loc_cfg, name))

    category_raw = r.value(cases, "cases.category", cfg.category)
    category_code = category_raw
    if settings.category_lookup is not None and category_raw is not None:
        lookup = settings.category_lookup
        cat_table = r.table("category_lookup.table", lookup.table)
        cat_key = r.column(cat_table, "category_lookup.key", lookup.key)
        category_code = r.column(cat_table, "category_lookup.code", lookup.code)
        if cat_table is not None and cat_key is not None and from_clause is not None:
            from_clause = from_clause.outerjoin(cat_table, cat_key == category_raw)

    status_raw = found["status"]
    if settings.status_lookup is not None and status_raw is not None:
        lookup_table, key, label = _status_lookup(r, settings)
        if lookup_table is not None and key is not None and from_clause is not None:
            from_clause = from_clause.outerjoin(lookup_table, key == status_raw)
        found["status"] = label

    timeline = _resolve_timeline(r, settings)
    referrals = _resolve_referrals(r, settings)
    complainant = _resolve_complainant(r, settings, cases, case_id, from_clause)
    if r.problems or cases is None or case_id is None or from_clause is None:
        return None, r.problems
    assert category_code is not None
    shape = _assemble(case_id, found, category_code, from_clause, timeline)
    shape.referrals = referrals
    shape.complainant = complainant
    return shape, []


def _resolve_complainant(
    r: _Resolver,
    settings: SqlSettings,
    cases: Table | None,
    case_id: Column[Any] | None,
    from_clause: FromClause | None,
) -> ComplainantShape | None:
    cfg = settings.complainant
    if cfg is None or cases is None or case_id is None or from_clause is None:
        return None
    table: Table | None = cases
    key: Column[Any] | None = case_id
    join: FromClause | None = None
    if cfg.table is not None:
        table = r.table("complainant.table", cfg.table)
        key = r.column(table, "complainant.case_id", cfg.case_id)
        if table is not None and key is not None:
            join = from_clause.join(table, key == case_id)
    columns: dict[str, Column[Any]] = {}
    for name in COMPLAINANT_FIELDS:
        column = r.column(table, f"complainant.{name}", getattr(cfg, name))
        if column is not None:
            columns[name] = column
    if key is None:
        return None
    return ComplainantShape(key, columns, join)


def _resolve_referrals(r: _Resolver, settings: SqlSettings) -> ReferralShape | None:
    cfg = settings.referrals
    if cfg is None:
        return None
    table = r.table("referrals.table", cfg.table)
    columns: dict[str, Column[Any]] = {}
    for name in ("case_id", "to_agency", "at", "kind", "status", "their_reference", "secrecy"):
        getter = r.time_column if name == "at" else r.column
        column = getter(table, f"referrals.{name}", getattr(cfg, name))
        if column is not None:
            columns[name] = column
    tie = r.column(table, "referrals.tie_breaker", cfg.tie_breaker)
    if table is None or not {"case_id", "to_agency", "at"} <= set(columns):
        return None
    if tie is not None:
        columns["tie_breaker"] = tie
    return ReferralShape(table, columns, _is_naive(columns["at"]))


def _status_lookup(
    r: _Resolver, settings: SqlSettings, alias: str | None = None
) -> tuple[FromClause | None, Column[Any] | None, Column[Any] | None]:
    """The status lookup table (under ``alias``, for a second join of it), its key and its
    label column."""
    lookup = settings.status_lookup
    assert lookup is not None
    table = r.table("status_lookup.table", lookup.table)
    key = r.column(table, "status_lookup.key", lookup.key)
    label = r.column(table, "status_lookup.label", lookup.label)
    if table is None or key is None or label is None or alias is None:
        return table, key, label
    aliased = table.alias(alias)
    return aliased, aliased.c[key.name], aliased.c[label.name]


def _resolve_timeline(r: _Resolver, settings: SqlSettings) -> TimelineShape | None:
    cfg = settings.timeline
    if cfg is None:
        return None
    table = r.table("timeline.table", cfg.table)
    case_id = r.column(table, "timeline.case_id", cfg.case_id)
    at = r.time_column(table, "timeline.at", cfg.at)
    status = r.column(table, "timeline.status", cfg.status)
    note = r.column(table, "timeline.note", cfg.note)
    tie = r.column(table, "timeline.tie_breaker", cfg.tie_breaker)
    if table is None or case_id is None or at is None:
        return None
    from_clause: FromClause = table
    if settings.status_lookup is not None and status is not None:
        # its own alias: a page's statement joins the lookup to the cases already, and the
        # page's timelines (Statements.embedded_timeline) are a subquery of that statement
        lookup, key, label = _status_lookup(r, settings, "entry_status")
        if lookup is not None and key is not None and label is not None:
            from_clause = table.outerjoin(lookup, key == status)
            status = label
    return TimelineShape(table, case_id, at, _is_naive(at), status, note, tie, from_clause)


def _python_type(column: Column[Any]) -> type:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return str
    return kind if kind in (int, str) else str


def _assemble(
    case_id: Column[Any],
    found: dict[str, ColumnElement[Any] | None],
    category_code: ColumnElement[Any],
    from_clause: FromClause,
    timeline: TimelineShape | None,
) -> CaseShape:
    def required(name: str) -> Column[Any]:
        column = found[name]
        assert isinstance(column, Column)
        return column

    received = required("received_at")
    updated_raw = found["updated_at"]
    updated: ColumnElement[Any] = (
        received
        if updated_raw is None
        else (
            func.coalesce(updated_raw, received)
            if getattr(updated_raw, "nullable", True)
            else updated_raw
        )
    )
    selected: list[ColumnElement[Any]] = [case_id.label("id"), category_code.label("category")]
    for name, column in found.items():
        if name == "updated_at":
            selected.append(updated.label(name))
        elif column is not None:
            selected.append(column.label(name))
    naive = frozenset(name for name in TIME_FIELDS if _is_naive(found[name]))
    return CaseShape(
        from_clause=from_clause,
        id=case_id,
        id_type=_python_type(case_id),
        selected=selected,
        naive_times=naive,
        received_at=received,
        updated_at=updated,
        reference_number=required("reference_number"),
        reference_type=_python_type(required("reference_number")),
        title=required("title"),
        description=found["description"],
        status=required("status"),
        channel=found["channel"],
        category_code=category_code,
        province_code=found["province_code"],
        district_code=found["district_code"],
        timeline=timeline,
    )


def native_keys(vocabulary: dict[str, Any], wanted: Iterable[Any]) -> list[str]:
    """The native values that map onto any of ``wanted``: the reverse of a vocabulary."""
    targets = set(wanted)
    return [native for native, canonical in vocabulary.items() if canonical in targets]
