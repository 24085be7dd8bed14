"""``case_stats`` for SQL sources: one GROUP BY statement, computed where the data is.

The statement has three levels. The innermost reads each matching case (the same WHERE as
``search``) with its dimension values, its state (other, open, overdue, resolved) and a
duration in hours: resolution time for resolved cases, age for open ones. The middle level puts
the duration into a fixed histogram bin (:data:`sources._stats.HOUR_BOUNDS`, a CASE tree with
inline boundaries). The outer level groups by dimensions, state and bin, with count, sum and
count of hours. Native codes come back as they are and are mapped to the unified vocabulary
here, where rows with the same unified key are added up.

Time buckets follow the Asia/Bangkok calendar; how a time becomes a local day, week or month,
how many hours lie between two times and how hours become a bin is the source's dialect
strategy's to say (sources/sql/_dialects.py). The due date of an open case is
decided in SQL the same way :meth:`SlaSettings.due_at` decides it in Python: the source's own
due column unless absent (or overridden), else received time plus the category's days, written
as ``received < now - days`` so the thresholds are plain bound times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    Select,
    case,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from sources._model import CanonicalStatus
from sources._stats import (
    RESOLVED_STATUSES,
    TIME_DIMENSIONS,
    CaseStats,
    Dimension,
    Key,
)
from sources._stats import Bucket as StatsBucket
from sources.sql._dialects import Unit
from sources.sql._due import is_open, past_due
from sources.sql._settings import SqlSettings
from sources.sql._shape import native_keys
from sources.sql._statements import Statements

OTHER, OPEN, OVERDUE, RESOLVED = 0, 1, 2, 3
_CONSTANT = frozenset({Dimension.AGENCY, Dimension.SOURCE})
_UNITS: dict[Dimension, Unit] = {
    Dimension.RECEIVED_DAY: "day",
    Dimension.RECEIVED_WEEK: "week",
    Dimension.RECEIVED_MONTH: "month",
}


class StatsQuery:
    """Builds the statement for one request and folds its rows into :class:`CaseStats`."""

    def __init__(
        self,
        settings: SqlSettings,
        statements: Statements,
        dimensions: Sequence[Dimension],
        now: datetime,
    ) -> None:
        self.settings = settings
        self.statements = statements
        self.shape = statements.shape
        self.dialect = statements.dialect
        self.dimensions = tuple(dimensions)
        self.grouped = [d for d in self.dimensions if d not in _CONSTANT]
        self.now = now
        self.columns = {
            getattr(c, "name", ""): getattr(c, "element", c) for c in self.shape.selected
        }

    def statement(self, conditions: list[ColumnElement[bool]]) -> Select[Any]:
        from_clause, referral, first = self._from_clause()
        values = [self._dimension(d, referral).label(f"d{i}") for i, d in enumerate(self.grouped)]
        state = self._state()
        cases = self.dialect.fence(
            select(
                *values,
                state.label("state"),
                self._hours().label("hours"),
                first.label("first"),
            )
            .select_from(from_clause)
            .where(*conditions)
        ).subquery("c")
        dims = [cases.c[f"d{i}"] for i in range(len(self.grouped))]
        binned = select(
            *dims,
            cases.c.state,
            cases.c.hours,
            case((cases.c.hours.is_(None), null()), else_=self._bin(cases.c.hours)).label("bin"),
            cases.c.first,
        ).subquery("b")
        keys = [binned.c[f"d{i}"] for i in range(len(self.grouped))]
        keys += [binned.c.state, binned.c.bin, binned.c.first]
        return select(
            *keys,
            func.count().label("n"),
            func.sum(binned.c.hours).label("hours_sum"),
            func.count(binned.c.hours).label("hours_count"),
        ).group_by(*keys)

    def fold(self, rows: Sequence[Row[Any]]) -> CaseStats:
        stats = CaseStats(self.dimensions)
        for row in rows:
            values = row._mapping
            natives = iter(values[f"d{i}"] for i in range(len(self.grouped)))
            key: Key = tuple(
                self._constant(d) if d in _CONSTANT else self._unified(d, next(natives))
                for d in self.dimensions
            )
            part = _part(
                int(values["state"]),
                values["bin"],
                int(values["n"]),
                int(values["hours_count"]),
                float(values["hours_sum"] or 0.0),
            )
            stats.bucket(key).merge(part)
            if values["first"]:
                stats.total.merge(part)
        return stats

    # -- the innermost level -------------------------------------------------------------

    def _from_clause(self) -> tuple[Any, Any, ColumnElement[Any]]:
        """The cases, joined to their distinct referral targets when REFERRED_TO is asked."""
        shape = self.shape
        referrals = shape.referrals
        if Dimension.REFERRED_TO not in self.dimensions or referrals is None:
            return shape.from_clause, None, literal_column("1")
        agencies = self.settings.vocabulary.agencies
        to_agency = referrals.columns["to_agency"]
        target = case(agencies, value=to_agency, else_=to_agency) if agencies else to_agency
        pairs = (
            select(referrals.columns["case_id"].label("case_id"), target.label("target"))
            .distinct()
            .subquery("rp")
        )
        ranked = select(
            pairs.c.case_id,
            pairs.c.target,
            func.row_number()
            .over(partition_by=pairs.c.case_id, order_by=pairs.c.target)
            .label("rank"),
        ).subquery("r")
        joined = shape.from_clause.outerjoin(ranked, ranked.c.case_id == shape.id)
        first = case((or_(ranked.c.rank.is_(None), ranked.c.rank == 1), 1), else_=0)
        return joined, ranked, first

    def _dimension(self, dimension: Dimension, referral: Any) -> ColumnElement[Any]:
        shape = self.shape
        if dimension is Dimension.REFERRED_TO:
            return referral.c.target if referral is not None else null()
        if dimension in TIME_DIMENSIONS:
            return self._period(dimension)
        column = {
            Dimension.PROVINCE: shape.province_code,
            Dimension.DISTRICT: shape.district_code,
            Dimension.CATEGORY: shape.category_code,
            Dimension.STATUS: shape.status,
            Dimension.CHANNEL: shape.channel,
        }[dimension]
        return column if column is not None else null()

    def _period(self, dimension: Dimension) -> ColumnElement[Any]:
        naive = "received_at" in self.shape.naive_times
        stored = self.statements.zone if naive else ZoneInfo("UTC")
        unit = _UNITS[dimension]
        return self.dialect.period(self.shape.received_at, stored, unit, self.now)

    def _state(self) -> ColumnElement[Any]:
        shape = self.shape
        statuses = self.settings.vocabulary.statuses
        resolved = native_keys(statuses, RESOLVED_STATUSES)
        open_ = native_keys(statuses, [s for s in CanonicalStatus if not s.is_finished])
        whens: list[tuple[ColumnElement[bool], Any]] = []
        if resolved:
            whens.append((shape.status.in_(resolved), RESOLVED))
        if open_:
            whens.append(
                (
                    shape.status.in_(open_),
                    case((self._past_due(), OVERDUE), else_=OPEN),
                )
            )
        if not whens:
            return literal(OTHER)
        return case(*whens, else_=OTHER)

    def _past_due(self) -> ColumnElement[bool]:
        return past_due(self.settings, self.shape, self.statements.to_column_time, self.now)

    def _hours(self) -> ColumnElement[Any]:
        """Hours to close (resolved) or of age (open); tested on the status itself rather than
        on the state, so that the expression stays small wherever the planner inlines it."""
        shape = self.shape
        received = shape.received_at
        naive = "received_at" in shape.naive_times
        now = literal(self.statements.to_column_time(self.now, naive), DateTime(timezone=not naive))
        whens: list[tuple[ColumnElement[bool], Any]] = []
        closed = self.columns.get("closed_at")
        resolved = native_keys(self.settings.vocabulary.statuses, RESOLVED_STATUSES)
        if closed is not None and resolved:
            whens.append((shape.status.in_(resolved), self._between(received, closed)))
        whens.append((is_open(self.settings, shape), self._between(received, now)))
        return case(*whens, else_=null())

    def _between(self, start: Any, end: Any) -> ColumnElement[Any]:
        return self.dialect.hours_between(start, end)

    def _bin(self, hours: Any) -> Any:
        return self.dialect.hour_bin(hours)

    # -- folding ---------------------------------------------------------------------------

    def _constant(self, dimension: Dimension) -> str:
        return self.settings.agency.code if dimension is Dimension.AGENCY else self.settings.id

    def _unified(self, dimension: Dimension, native: Any) -> str | None:
        if native is None:
            return None
        if isinstance(native, date):
            return native.isoformat()
        text = str(native)
        vocabulary = self.settings.vocabulary
        if dimension is Dimension.CATEGORY:
            return vocabulary.categories.get(text, text)
        if dimension is Dimension.STATUS:
            status = vocabulary.statuses.get(text)
            return status.value if status is not None else text
        if dimension is Dimension.CHANNEL:
            channel = vocabulary.channels.get(text)
            return channel.value if channel is not None else text
        return text


def _part(state: int, index: Any, cases: int, measured: int, hours: float) -> StatsBucket:
    part = StatsBucket((), count=cases)
    if state in (OPEN, OVERDUE):
        part.open = cases
        part.overdue = cases if state == OVERDUE else 0
        if measured:
            part.open_age.add_bin(int(index), measured, hours)
    elif state == RESOLVED:
        part.resolved = cases
        if measured:
            part.resolution.add_bin(int(index), measured, hours)
    return part
