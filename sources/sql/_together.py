"""SQL sources on one database asked in one statement: pages as a ``UNION ALL``, counts too.

A hundred provincial offices kept as tables (or schemas) on one Ministry server are a hundred
sources to the gateway, and a merged page asked each of them for its rows: a hundred round
trips, each about half a millisecond of the gateway's own time (issue 25). Asked together,
each member's own page statement (its mapping, the filter, the caller's access, the keyset
position: what :meth:`Statements.search` builds for it) is one part of a ``UNION ALL``, tagged
with the member's rank, and the union is ordered as the federation merges,
``(sort value, source, the source's own tie-break)``, by an ORDER BY of its own (the order of
a part's rows does not survive a union) and cut at the page's length: the database answers
just the group's top rows. The rank stands for the source id (members come sorted by id):
comparing ids in SQL would follow the database's collation, not Python's.

A page that carries its timelines (PostgreSQL, ``embedded_timeline``) aggregates them only for
the rows that made the cut: each part's rows would otherwise each aggregate a timeline, most of
them cut. The cut rows' timelines come from their own member's log (a CASE on the rank).
"""

from __future__ import annotations

import time
import typing
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import (
    Integer,
    Select,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from sources._abilities import TogetherKey
from sources._errors import SourceBadResponse
from sources._model import CARRIED, TIMELINE, CaseRecord
from sources._query import CaseFilter, CaseOrder, Position, SortField
from sources._stats import CaseStats, Dimension
from sources.sql._rows import LabelledRow, RowMapper
from sources.sql._statements import Statements
from sources.sql._stats import StatsQuery

if TYPE_CHECKING:
    from sources.sql import SqlSource

MEMBER = "together_member"
"""The label of the column that says which member (its rank) a row of the union is from."""

GROUPED_DIALECTS = frozenset({"postgresql", "mysql"})
"""Where parts are subqueries a union may hold. A SQLite source reads a file of its own."""

MAX_KEPT = 64
"""Union statements kept per leading source, for the same members' same cached parts."""


def key_of(source: SqlSource) -> TogetherKey | None:
    """The group ``source`` can be asked in: the same engine (one pool: one database, one
    user) and the same case columns, types and zone. None until its tables are read, or
    when the setting ``ask_together`` is off, or on SQLite. Asked of every source of every
    merged page: worked out once per source's statements and engine, then looked up."""
    statements, engine = source._statements, source._engine
    if statements is None or engine is None:
        return None
    known = _KEYS.get(source)
    if known is not None and known[0] is statements and known[1] is engine:
        return known[2]
    key = None
    if (
        source.settings.ask_together
        and source.dialect.name in GROUPED_DIALECTS
        and source.dialect.name == engine.dialect.name
    ):
        url = engine.url
        host = f"{url.host or ''}:{url.port or ''}"
        database = f"{url.get_backend_name()}://{host}/{url.database or ''}"
        signature = _signature(statements, source.settings.timezone)
        shape = _SHAPES.setdefault(signature, len(_SHAPES))  # a small int hashes at once
        key = TogetherKey(database, (id(engine), shape))
    _KEYS[source] = (statements, engine, key)
    return key


_KEYS: WeakKeyDictionary[SqlSource, tuple[Statements, AsyncEngine, TogetherKey | None]] = (
    WeakKeyDictionary()
)
_SHAPES: dict[tuple[Any, ...], int] = {}


def _signature(statements: Statements, zone: str) -> tuple[Any, ...]:
    """What the columns of a case row are: equal signatures make parts one union accepts and
    rows one order sorts alike (naive times are read in the source's zone)."""
    shape = statements.shape
    columns = tuple((getattr(c, "name", ""), str(c.type)) for c in shape.selected)
    timeline = shape.timeline
    entries = (
        None
        if timeline is None
        else tuple(
            None if column is None else str(column.type)
            for column in (timeline.at, timeline.status, timeline.note)
        )
    )
    return (
        columns,
        str(shape.id.type),
        shape.naive_times,
        zone if shape.naive_times else None,
        statements.embeds_timelines,
        entries,
    )


def _ready(member: SqlSource) -> tuple[Statements, RowMapper]:
    """A member's statements and row mapper: it has them, or it would have no key."""
    statements, rows = member._statements, member._rows
    if statements is None or rows is None:
        raise SourceBadResponse(member.id, "not ready to be asked with others")
    return statements, rows


_KEPT: WeakKeyDictionary[SqlSource, Together] = WeakKeyDictionary()


def _kept(leader: SqlSource) -> Together:
    kept = _KEPT.get(leader)
    if kept is None:
        kept = _KEPT[leader] = Together()
    return kept


class Together:
    """The union statements a leading member has built, kept for the same parts again (a
    first page with no filter is one statement per member, built once: so is its union)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], tuple[tuple[Select[Any], ...], Select[Any]]] = {}

    def kept(self, key: tuple[Any, ...], parts: tuple[Select[Any], ...]) -> Select[Any] | None:
        found = self._kept.get(key)
        if found is None or len(found[0]) != len(parts):
            return None
        if all(a is b for a, b in zip(found[0], parts, strict=True)):
            return found[1]
        return None

    def keep(self, key: tuple[Any, ...], parts: tuple[Select[Any], ...], made: Select[Any]) -> None:
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = (parts, made)


async def search(
    leader: SqlSource,
    members: Sequence[SqlSource],
    where: CaseFilter,
    order: CaseOrder,
    after: Position | None,
    limit: int,
    fields: frozenset[str] | None,
) -> list[list[CaseRecord]]:
    """The group's first ``limit`` rows after ``after`` in the global order, per member."""
    ready = [_ready(member) for member in members]
    labels = [statements.labels_for(fields, order) for statements, _ in ready]
    if any(other != labels[0] for other in labels):
        raise SourceBadResponse(leader.id, "members read different columns; asked one by one")
    carrying = labels[0] is not None and TIMELINE in labels[0]
    if carrying and any(time.monotonic() < member._carry_after for member in members):
        carrying = False  # a member's database refused its timelines lately (SqlSource)
    plain = labels[0]
    if plain is not None and not CARRIED.isdisjoint(plain):
        # Each part reads its rows alone; the group's rows carry timelines through one CASE
        # over the members' logs (below), and their referrals are left to the loader.
        plain = ready[0][0].without_carried(plain)
    parts: list[Select[Any]] = []
    ranks: list[int] = []
    for rank, (statements, _) in enumerate(ready):
        page = statements.search(where, order, after, limit, plain)
        if page is not None:
            parts.append(page[0])
            ranks.append(rank)
    found: list[list[CaseRecord]] = [[] for _ in members]
    if not parts:
        return found
    ids = tuple(m.id for m in members)
    key = (ids, tuple(ranks), order.field, order.descending, carrying, limit)
    kept = _kept(leader)
    statement = kept.kept(key, tuple(parts))
    if statement is None:
        statement = _page(ready, parts, ranks, order, carrying, limit)
        kept.keep(key, tuple(parts), statement)
    columns = (*(plain or ready[0][0].labels), *((TIMELINE,) if carrying else ()))
    readers = [rows.case_reader(columns) for _, rows in ready]
    for values in await _fetch(leader, statement):
        rank = values[MEMBER]
        found[rank].append(readers[rank](values))
    return found


def _page(
    ready: Sequence[tuple[Statements, RowMapper]],
    parts: Sequence[Select[Any]],
    ranks: Sequence[int],
    order: CaseOrder,
    carrying: bool,
    limit: int,
) -> Select[Any]:
    """``SELECT … FROM (part 0) UNION ALL …`` ordered and cut; with the cut rows' timelines.

    Ranks and limits are written into the SQL, not bound: a statement without parameters is
    planned once per connection (PostgreSQL keeps a prepared statement's generic plan), where
    one with them was planned at every page, 25 ms for a hundred parts, ten times the
    execution (measured on bench scale's database: the union's Merge Append reads two rows a
    part). A first page's statement is the same for the same members, kept and reused."""
    cut_at = literal_column(str(int(limit)), Integer)
    tagged = []
    for rank, part in zip(ranks, parts, strict=True):
        inner = part.limit(cut_at).subquery()
        tagged.append(select(*inner.c, _rank(rank).label(MEMBER)))
    union = union_all(*tagged).subquery("together")
    sort = "updated_at" if order.field is SortField.UPDATED_AT else "received_at"
    top = select(*union.c).order_by(*_ordering(union, sort, order.descending)).limit(cut_at)
    if not carrying:
        return top
    cut = top.subquery("cut")
    names = [column.name for column in cut.c if column.name != MEMBER]
    timelines = case(
        *((cut.c[MEMBER] == _rank(rank), _timeline(ready[rank][0], cut)) for rank in ranks),
        else_=None,
    )
    return select(
        *(cut.c[name] for name in names), timelines.label(TIMELINE), cut.c[MEMBER]
    ).order_by(*_ordering(cut, sort, order.descending))


def _rank(rank: int) -> ColumnElement[int]:
    return literal_column(str(int(rank)), Integer)


def _ordering(rows: Subquery, sort: str, descending: bool) -> list[ColumnElement[Any]]:
    keys = (rows.c[sort], rows.c[MEMBER], rows.c["id"])
    return [key.desc() if descending else key.asc() for key in keys]


def _timeline(statements: Statements, cut: Subquery) -> ColumnElement[Any]:
    """The member's ``embedded_timeline`` for a cut row: the same aggregate, by the row's id."""
    timeline = statements.shape.timeline
    assert timeline is not None
    absent = cast(null(), Text)
    entry = tuple_(
        timeline.at,
        timeline.status if timeline.status is not None else absent,
        timeline.note if timeline.note is not None else absent,
    )
    aggregated = (
        select(func.array_agg(aggregate_order_by(entry, *statements._entry_order)))
        .select_from(timeline.from_clause)
        .where(timeline.case_id == cut.c["id"])
    )
    return aggregated.scalar_subquery()


async def count(leader: SqlSource, members: Sequence[SqlSource], where: CaseFilter) -> list[int]:
    """Each member's count of ``where``, from one ``SELECT rank, count(*) … UNION ALL …``."""
    ready = [_ready(member) for member in members]
    where_of = [statements._conditions(where) for statements, _ in ready]
    ranks = [rank for rank, conditions in enumerate(where_of) if conditions is not None]
    counts = [0] * len(members)
    if not ranks:
        return counts
    unconditional = all(not where_of[rank] for rank in ranks)
    key = ("count", tuple(m.id for m in members), tuple(ranks))
    kept = _kept(leader)
    statement = kept.kept(key, ()) if unconditional else None
    if statement is None:
        parts = [
            select(_rank(rank).label(MEMBER), func.count().label("counted"))
            .select_from(ready[rank][0].shape.from_clause)
            .where(*(where_of[rank] or ()))
            for rank in ranks
        ]
        statement = select(*union_all(*parts).subquery("together").c)
        if unconditional:  # the same statement every time: built and compiled once
            kept.keep(key, (), statement)
    for values in await _fetch(leader, statement):
        counts[values[MEMBER]] = int(values["counted"])
    return counts


async def stats(
    leader: SqlSource,
    members: Sequence[SqlSource],
    where: CaseFilter,
    dimensions: Sequence[Dimension],
    now: datetime,
) -> list[CaseStats]:
    """Each member's buckets (its own GROUP BY, sources/sql/_stats.py, in its own zone) from
    one statement: ``SELECT rank, … FROM (member's statement) UNION ALL …``."""
    ready = [_ready(member) for member in members]
    queries: dict[int, StatsQuery] = {}
    parts: list[Select[Any]] = []
    for rank, (member, (statements, _)) in enumerate(zip(members, ready, strict=True)):
        conditions = statements._conditions(where)
        if conditions is None:
            continue
        query = StatsQuery(member.settings, statements, dimensions, now)
        try:
            inner = query.statement(conditions).subquery()
        except NotImplementedError as exc:
            raise SourceBadResponse(member.id, f"no statistics in SQL here ({exc})") from exc
        parts.append(select(_rank(rank).label(MEMBER), *inner.c))
        queries[rank] = query
    found = [CaseStats(tuple(dimensions)) for _ in members]
    if not parts:
        return found
    rows: dict[int, list[Any]] = {rank: [] for rank in queries}
    for row in await leader._fetch(select(*union_all(*parts).subquery("together").c)):
        rows[row._mapping[MEMBER]].append(row)
    for rank, query in queries.items():
        found[rank] = query.fold(rows[rank])
    return found


MAX_PREPARED = 8
"""Group statements kept prepared per connection (PostgreSQL): each holds its plan there."""

_PREPARED: WeakKeyDictionary[asyncpg.Connection, OrderedDict[str, PreparedStatement]] = (
    WeakKeyDictionary()
)


async def _fetch(leader: SqlSource, statement: Select[Any]) -> Sequence[LabelledRow]:
    """The group statement's rows. On PostgreSQL one without parameters (a kept one: a first
    page, an unfiltered count) is sent as a statement prepared once per connection: asyncpg
    keeps no statement longer than 15 kB prepared (``max_cacheable_statement_size``), and
    a hundred parts are 160 kB, which PostgreSQL parsed and planned at every page (about 30
    ms, ten times executing it). Prepared, its plan is kept and the page costs its execution."""
    reads = leader._driver
    rendered = reads.render(statement, keep_bound=False) if reads is not None else None
    if rendered is None:
        return await leader._fetch_values(statement)
    if rendered[1]:  # values bound: a statement of this request's filter or cursor only
        return await leader._fetch_rendered(*rendered)
    sql = rendered[0]
    async with leader._driver_connection() as driver:
        kept = _PREPARED.get(driver)
        if kept is None:
            kept = _PREPARED[driver] = OrderedDict()
        try:
            prepared = kept.get(sql)
            if prepared is None:
                prepared = await driver.prepare(sql)
                kept[sql] = prepared
                if len(kept) > MAX_PREPARED:
                    kept.popitem(last=False)  # asyncpg closes it once unreferenced
            else:
                kept.move_to_end(sql)
            return typing.cast(list[LabelledRow], await prepared.fetch())
        except BaseException:
            kept.pop(sql, None)  # prepared again next time (a table changed, say)
            raise
