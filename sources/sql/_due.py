"""Open and overdue as SQL conditions, the same rule as ``SlaSettings.due_at`` in Python.

A case is overdue when its status maps to an unfinished canonical status and its due date is
before ``now``: the source's own due column where it has a value (unless the SLA overrides it),
else received time plus the category's days, written ``received < now - days`` so that every
threshold is a bound time and the test works alike on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, case, false, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from sources._model import CanonicalStatus
from sources.sql._settings import SqlSettings
from sources.sql._shape import CaseShape, native_keys

ColumnTime = Callable[[datetime, bool], datetime]


def is_open(settings: SqlSettings, shape: CaseShape) -> ColumnElement[bool]:
    """The status is one the vocabulary maps to an unfinished canonical status."""
    unfinished = [s for s in CanonicalStatus if not s.is_finished]
    natives = native_keys(settings.vocabulary.statuses, unfinished)
    return shape.status.in_(natives) if natives else false()


def is_overdue(
    settings: SqlSettings, shape: CaseShape, column_time: ColumnTime, now: datetime
) -> ColumnElement[bool]:
    """Open and due before ``now``."""
    return and_(is_open(settings, shape), past_due(settings, shape, column_time, now))


def past_due(
    settings: SqlSettings, shape: CaseShape, column_time: ColumnTime, now: datetime
) -> ColumnElement[bool]:
    """Due before ``now``: the source's own due date, or received + the category's days."""
    sla = settings.sla
    received_naive = "received_at" in shape.naive_times
    default_days = sla.days_for("")  # no category has the empty code
    by_days: dict[float, list[str]] = {}
    for native, code in settings.vocabulary.categories.items():
        days = sla.days_for(code)
        if days != default_days:
            by_days.setdefault(days, []).append(native)

    def threshold(days: float) -> ColumnElement[Any]:
        moment = column_time(now - timedelta(days=days), received_naive)
        return literal(moment, DateTime(timezone=not received_naive))

    limit: ColumnElement[Any] = threshold(default_days)
    if by_days:
        limit = case(
            *[
                (shape.category_code.in_(natives), threshold(days))
                for days, natives in by_days.items()
            ],
            else_=threshold(default_days),
        )
    configured = shape.received_at < limit
    due = _column(shape, "due_at")
    if due is None or not sla.uses_source_due:
        return configured
    due_naive = "due_at" in shape.naive_times
    at = literal(column_time(now, due_naive), DateTime(timezone=not due_naive))
    # Both sides decided for a NULL due date: ``due < at`` alone is NULL there, and its
    # negation (the ``overdue: false`` filter) would drop the case instead of keeping it.
    return or_(and_(due.is_not(None), due < at), and_(due.is_(None), configured))


def _column(shape: CaseShape, name: str) -> ColumnElement[Any] | None:
    """A mapped case column by its unified name (as labelled in the case statement)."""
    for selected in shape.selected:
        if getattr(selected, "name", None) == name:
            element: ColumnElement[Any] = getattr(selected, "element", selected)
            return element
    return None
