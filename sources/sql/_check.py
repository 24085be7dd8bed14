"""Every kind of statement a SQL source sends, in a form that reads no rows, for ``check``.

Reflection shows that tables and columns exist; it cannot show that the database understands
the statements built over them (a function its dialect lacks, a view that no longer compiles, a
permission missing on the log table). ``complaint-graph check`` therefore sends each kind once
(page, count, batch, timeline, referrals, complainants, statistics) with ``LIMIT 0``, the way
it is sent while serving (straight to asyncpg where pages go): the database parses and plans
each, and refuses there what it would refuse then.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select

from sources._model import CARRIED, TIMELINE, CanonicalStatus
from sources._query import CaseFilter, CaseOrder, Position, SortField
from sources._stats import Dimension
from sources.sql._dialects import KEYS
from sources.sql._statements import LIMIT, Statements
from sources.sql._stats import StatsQuery

Probe = tuple[str, Select[Any], dict[str, Any]]
"""A statement kind's name, its statement reading no rows, and its parameters."""


def probes(statements: Statements, source: str) -> Iterator[Probe]:
    """Each statement kind the source will send, with every condition a filter can add (so
    that each function they use is parsed), reading no rows. Raises :class:`NoStatistics` for a
    dialect without time buckets, after the other kinds."""
    shape = statements.shape
    now = datetime.now(UTC)
    one_key = statements.native_id("1") if shape.id_type is int else "1"
    keys = {KEYS: [one_key]}
    where = CaseFilter(
        statuses=frozenset(CanonicalStatus) if statements.settings.vocabulary.statuses else None,
        province_codes=frozenset({"10"}) if shape.province_code is not None else None,
        received_from=now - timedelta(days=1),
        received_before=now,
        text="check",
        overdue=True,
        as_of=now,
    )
    for field in (SortField.RECEIVED_AT, SortField.UPDATED_AT):
        order = CaseOrder(field=field, descending=True)
        after = Position(now, source, "1")
        page = statements.search(where, order, after, 0)
        if page is not None:
            yield f"page ({field.value})", page[0], {LIMIT: 0}
    carried = statements.carried_labels(CARRIED)
    if carried:
        what = " and ".join("timelines" if label == TIMELINE else label for label in carried)
        labels = statements.labels_for(CARRIED | {"title"}, CaseOrder())
        first = statements.search(CaseFilter(), CaseOrder(), None, 0, labels)
        if first is not None:
            yield f"page with {what}", first[0], {LIMIT: 0}
        by_ids = statements.cases_by_ids_carrying(carried).limit(0)
        yield f"batch of cases with {what}", by_ids, keys
    count = statements.count(where)
    if count is not None:
        yield "count", count.limit(0), {}
    yield "batch of cases", statements.cases_by_ids.limit(0), keys
    if shape.timeline is not None:
        yield "timelines", statements.timelines.limit(0), keys
    if shape.referrals is not None:
        yield "referrals", statements.referrals.limit(0), keys
    if shape.complainant is not None:
        yield "complainants", statements.complainants.limit(0), keys
    # every dimension; its WHERE is the page's, sent above
    query = StatsQuery(statements.settings, statements, list(Dimension), now)
    try:
        statistics = query.statement([]).limit(0)
    except NotImplementedError as exc:
        raise NoStatistics(str(exc)) from exc
    yield "statistics", statistics, {}


class NoStatistics(Exception):
    """The dialect strategy has no time buckets or durations: no statistics statement."""
