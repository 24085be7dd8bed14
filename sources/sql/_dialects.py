"""What differs between SQL databases, one strategy class per dialect.

The statements (sources/sql/_statements.py, _stats.py) are written once with SQLAlchemy Core;
where databases disagree on more than SQLAlchemy hides, they ask the source's
:class:`SqlDialect`: how a batch of keys is bound, how a keyset position is written, how a time
becomes a local day, week or month, how many hours lie between two times, which histogram bin
a number of hours falls in, how an insert answers the id the database made for the new row,
and whether a driver error means the database is not there (retry later) or that it refused
the statement (report it). PostgreSQL, MySQL/MariaDB and SQLite have
one each; Microsoft SQL Server or Oracle would need only another subclass (docs: "A new SQL
dialect"), registered in :data:`STRATEGIES` under SQLAlchemy's dialect name.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    CursorResult,
    Date,
    Insert,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from sources._stats import BANGKOK, BINS_PER_DOUBLING, HOUR_BOUNDS
from sources.sql._driver import means_unavailable

KEYS = "keys"
"""The name the keyed statements (``cases_by_ids``, ``timelines``...) bind their batch to: send
them with ``{KEYS: [...]}``."""

Unit = Literal["day", "week", "month"]

MESSAGE_LIMIT = 300
"""Characters of a database's own error message kept in a source error."""


class SqlDialect:
    """Standard SQL, for a dialect without a strategy of its own; subclasses override what
    their database does differently or better. Every method returns SQLAlchemy expressions,
    so nothing here runs a statement."""

    name: ClassVar[str] = "sql"

    arrays: ClassVar[bool] = False
    """Whether a batch of keys is bound as one array parameter (:meth:`among`)."""

    aggregates_rows: ClassVar[bool] = False
    """Whether a case row can carry its timeline as an array of rows (PostgreSQL's
    ``array_agg`` of a row, read by asyncpg: ``Statements.embeds_timelines``)."""

    row_comparison: ClassVar[bool] = False
    """Whether a keyset position is written ``(sort, key) > (v, n)``, which the database's
    planner turns into one index range (:meth:`after`)."""

    # -- batches and filters ----------------------------------------------------------------

    def among(self, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """``column IN values``: a filter's list of codes, an access rule's ids."""
        return column.in_(values)

    def among_keys(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """``column IN :keys``, the batch's keys bound when the statement is sent (``KEYS``), so
        that a keyed statement is built and given its cache key once per source."""
        return column.in_(bindparam(KEYS, expanding=True))

    # -- keyset paging and change watermarks --------------------------------------------------

    def after(
        self,
        sort: ColumnElement[Any],
        key: ColumnElement[Any],
        value: Any,
        native: Any,
        descending: bool,
    ) -> ColumnElement[bool]:
        """Rows strictly after (``value``, ``native``) in (``sort``, ``key``) order: a row
        comparison where the dialect plans it well (``row_comparison``), else
        ``sort >= value AND (sort > value OR key > native)`` (reversed when descending), which
        every dialect understands and plans as a range on an index of (sort, key)."""
        if self.row_comparison:
            pair, position = tuple_(sort, key), tuple_(value, native)
            return pair < position if descending else pair > position
        later: Callable[[Any, Any], ColumnElement[bool]] = (
            operator.lt if descending else operator.gt
        )
        reached = sort <= value if descending else sort >= value
        return and_(reached, or_(later(sort, value), later(key, native)))

    # -- statistics -------------------------------------------------------------------------

    def period(
        self, moment: ColumnElement[Any], stored: ZoneInfo, unit: Unit, now: datetime
    ) -> ColumnElement[Any]:
        """The first day of the Bangkok ``unit`` (day, Monday-started week, month) holding
        ``moment``, a time column whose values are in zone ``stored`` (UTC for a column with
        a time zone; the source's zone for local times): a DATE, or text 'YYYY-MM-DD'."""
        raise NotImplementedError(f"time buckets on {self.name}")

    def hours_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        """Hours from ``start`` to ``end`` (times of one kind), as a floating-point number."""
        raise NotImplementedError(f"durations on {self.name}")

    def hour_bin(self, hours: Any) -> Any:
        """The bin of ``hours`` (:data:`sources._stats.HOUR_BOUNDS`) as a balanced CASE tree
        of inline boundaries (7 comparisons for 66 bins), the same answer as
        :func:`sources._stats.hour_bin`, with no function a dialect might lack."""
        return _bin_tree(hours)

    def fence(self, cases: Select[Any]) -> Select[Any]:
        """The statistics' innermost statement (each case's dimensions, state and hours) as a
        subquery the planner computes once rather than inlining its expressions into the
        levels above: ``OFFSET 0``. (SQL Server would need an ORDER BY with it.)"""
        return cases.offset(0)

    # -- writes -----------------------------------------------------------------------------

    def inserting(self, insert: Insert, column: ColumnElement[Any]) -> Insert:
        """``insert`` made to answer the value the database gives the new row's ``column`` (a
        serial, an AUTO_INCREMENT, a DEFAULT): ``RETURNING``, which PostgreSQL and SQLite
        (3.35 and later) have; read it with :meth:`inserted_value`."""
        return insert.returning(column)

    def inserted_value(self, result: CursorResult[Any], column: ColumnElement[Any]) -> Any:
        """The value :meth:`inserting` asked for, from the insert's result."""
        return result.scalar_one()

    # -- errors -----------------------------------------------------------------------------

    def unavailable(self, error: BaseException | None) -> bool:
        """Whether a driver error means the database is not there or not serving (the call
        may be retried later), rather than that it refused the statement (it would refuse it
        again). By the error's class name here; subclasses read the database's error code."""
        name = type(error).__name__.lower()
        return any(word in name for word in ("connection", "operational", "interface", "cannot"))

    def error_name(self, error: BaseException | None) -> str:
        """What a refused statement's error is called, for the client: the driver's class
        name (and the database's error number where the class says little), never the
        database's message, which may name the agency's tables and columns."""
        return type(error).__name__ if error is not None else "no error"

    def message(self, error: BaseException | None) -> str:
        """The database's own message for a refused statement, without the driver's class
        prefix, first line only: what the function, table or syntax trouble is."""
        if error is None:
            return "no message"
        args = getattr(error, "args", ())
        text = str(args[-1]) if args else str(error)
        first = (text.strip().splitlines() or [type(error).__name__])[0]
        first = re.sub(r"^<class '[^']*'>:\s*", "", first)
        return first[:MESSAGE_LIMIT]

    # -- connecting ---------------------------------------------------------------------------

    def engine_options(self, url: str, zone: ZoneInfo) -> dict[str, Any]:
        """Extra keyword arguments for ``create_async_engine`` (connection arguments), for a
        source whose local times are in ``zone``."""
        return {}

    def reflect_options(self) -> dict[str, Any]:
        """Extra keyword arguments for ``MetaData.reflect`` (Oracle would resolve synonyms
        here: ``oracle_resolve_synonyms=True``)."""
        return {}


def _shift(stored: ZoneInfo, now: datetime) -> int:
    """Minutes from zone ``stored`` to Bangkok, as of ``now`` (for databases that shift times
    by a number rather than by a zone name)."""
    bangkok = now.astimezone(BANGKOK).utcoffset() or timedelta()
    theirs = now.astimezone(stored).utcoffset() or timedelta()
    return int((bangkok - theirs).total_seconds() // 60)


def _bin_tree(hours: Any, low: int = 0, high: int = len(HOUR_BOUNDS)) -> Any:
    if low == high:
        return literal_column(str(low))
    middle = (low + high + 1) // 2
    bound: Any = literal_column(repr(HOUR_BOUNDS[middle - 1]))
    return case(
        (hours < bound, _bin_tree(hours, low, middle - 1)),
        else_=_bin_tree(hours, middle, high),
    )


def _log_bin(hours: Any, to_integer: Callable[[Any], Any]) -> Any:
    """The bin of ``hours`` by its logarithm: a small expression, where a CASE tree of 66 bins
    costs PostgreSQL's JIT compiler tens of seconds on a million rows."""
    scale: Any = literal_column(repr(BINS_PER_DOUBLING / math.log(2)))
    index = to_integer(func.floor(func.ln(hours) * scale)) + literal_column("1")
    return case(
        (hours < literal_column("1.0"), literal_column("0")),
        else_=func.least(index, literal_column(str(len(HOUR_BOUNDS)))),
    )


class PostgreSQL(SqlDialect):
    """Batches as one array parameter (``= ANY($1)``): the statement's text is the same for
    every number of keys, so SQLAlchemy renders nothing per call, asyncpg prepares it once per
    connection, and it can go straight to asyncpg (sources/sql/_driver.py; an expanding ``IN``
    list is rendered anew for each call, about a tenth of the dashboard page's time,
    bench/README.md). Time zones by name (``timezone()``), so buckets follow daylight saving
    where the stored zone has it."""

    name = "postgresql"
    arrays = True
    aggregates_rows = True
    row_comparison = True

    def among(self, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))

    def among_keys(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        return column == any_(bindparam(KEYS, type_=ARRAY(column.type)))

    def period(
        self, moment: ColumnElement[Any], stored: ZoneInfo, unit: Unit, now: datetime
    ) -> ColumnElement[Any]:
        aware = moment if stored.key == "UTC" else func.timezone(stored.key, moment)
        local = func.timezone(str(BANGKOK), aware)
        return cast(func.date_trunc(unit, local), Date)

    def hours_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        return func.date_part("epoch", end - start) / 3600.0  # float8, not numeric: fast

    def hour_bin(self, hours: Any) -> Any:
        return _log_bin(hours, lambda value: cast(value, Integer))

    def unavailable(self, error: BaseException | None) -> bool:
        """By the SQLSTATE class (sources/sql/_driver.py), else by the class name."""
        return means_unavailable(error) or super().unavailable(error)


class SQLite(SqlDialect):
    """Times are text: buckets by ``date()`` with a fixed shift to Bangkok (as of the request),
    durations by ``julianday()``; its math functions are optional, so bins by a CASE tree."""

    name = "sqlite"
    row_comparison = True  # SQLite 3.15 and later

    def period(
        self, moment: ColumnElement[Any], stored: ZoneInfo, unit: Unit, now: datetime
    ) -> ColumnElement[Any]:
        local = func.datetime(moment, f"{_shift(stored, now):+d} minutes")
        if unit == "week":
            return func.date(local, "weekday 0", "-6 days")
        if unit == "month":
            return func.date(local, "start of month")
        return func.date(local)

    def hours_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        return (func.julianday(end) - func.julianday(start)) * 24.0

    def unavailable(self, error: BaseException | None) -> bool:
        """sqlite3 raises OperationalError for a missing file and a locked database, and for a
        missing function or table alike: the message tells them apart."""
        text = str(error).lower()
        return any(
            words in text
            for words in ("unable to open", "database is locked", "disk i/o", "not a database")
        )


class MySQL(SqlDialect):
    """MySQL and MariaDB (asyncmy or aiomysql). Keysets as ``a >= v AND (a > v OR id > n)``:
    row comparisons are understood but not used as an index range. Time zones by a fixed shift
    in minutes (as of the request): a server without its time zone tables (the usual
    installation) answers NULL for ``CONVERT_TZ`` with a zone name."""

    name = "mysql"

    CLIENT_ERRORS = range(2000, 3000)
    """The client library's own errors (CR_*): cannot connect, server gone away, lost."""
    SERVER_UNAVAILABLE = frozenset(
        {
            1040,  # too many connections
            1042,  # cannot get host name
            1043,  # bad handshake
            1053,  # server shutdown in progress
            1077,  # normal shutdown
            1079,  # shutdown complete
            1129,  # host blocked after connection errors
            1152,  # aborted connection
            1153,  # packet too large for the connection
            1158,  # network read error
            1159,  # network read timeout
            1160,  # network write error
            1161,  # network write timeout
            1205,  # lock wait timeout: try again
            1213,  # deadlock: try again
            1927,  # connection killed
            3024,  # MySQL: statement time exceeded
            1969,  # MariaDB: max_statement_time exceeded
        }
    )

    def period(
        self, moment: ColumnElement[Any], stored: ZoneInfo, unit: Unit, now: datetime
    ) -> ColumnElement[Any]:
        shift = _shift(stored, now)
        local = (
            func.timestampadd(literal_column("MINUTE"), literal_column(str(shift)), moment)
            if shift
            else moment
        )
        day = func.date(local)
        if unit == "week":
            return func.subdate(day, func.weekday(local))  # WEEKDAY: Monday is 0
        if unit == "month":
            return func.subdate(day, func.dayofmonth(local) - literal_column("1"))
        return day

    def hours_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        return func.timestampdiff(literal_column("SECOND"), start, end) / 3600.0

    def hour_bin(self, hours: Any) -> Any:
        return _log_bin(hours, lambda value: value)  # FLOOR is already an integer

    def inserting(self, insert: Insert, column: ColumnElement[Any]) -> Insert:
        """MariaDB has ``RETURNING`` from 10.5, MySQL not at all: SQLAlchemy's
        ``return_defaults`` uses it where the server has it, and the driver's last insert id
        (an AUTO_INCREMENT primary key's) where not."""
        return insert.return_defaults(column)

    def inserted_value(self, result: CursorResult[Any], column: ColumnElement[Any]) -> Any:
        returned = result.returned_defaults
        if returned is not None and column in returned._mapping:
            return returned._mapping[column]
        key = result.inserted_primary_key
        return None if key is None else key[0]

    def unavailable(self, error: BaseException | None) -> bool:
        args = getattr(error, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code is None:
            return super().unavailable(error)
        return code in self.CLIENT_ERRORS or code in self.SERVER_UNAVAILABLE

    def error_name(self, error: BaseException | None) -> str:
        """MySQL's driver classes are few and broad (OperationalError for a missing function
        as for a lost connection): the class and the server's error number."""
        args = getattr(error, "args", ())
        if args and isinstance(args[0], int):
            return f"{type(error).__name__} {args[0]}"
        return super().error_name(error)

    def engine_options(self, url: str, zone: ZoneInfo) -> dict[str, Any]:
        """Each connection's session in the source's zone, so that TIMESTAMP columns (kept in
        UTC, read in the session's zone) come back in the same local time as DATETIME ones,
        which the source reads as times in its zone; as an offset (as of the engine's
        creation), which a server without time zone tables understands. Thai text needs
        utf8mb4 on the connection; a URL's own ``charset`` wins."""
        offset = datetime.now(zone).utcoffset() or timedelta()
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        arguments: dict[str, Any] = {
            "init_command": f"SET time_zone = '{sign}{hours:02d}:{rest:02d}'"
        }
        if "charset=" not in url:
            arguments["charset"] = "utf8mb4"
        return {"connect_args": arguments}


STRATEGIES: dict[str, type[SqlDialect]] = {
    "postgresql": PostgreSQL,
    "sqlite": SQLite,
    "mysql": MySQL,
    "mariadb": MySQL,
}
"""Strategy by SQLAlchemy dialect name (``engine.dialect.name``) or by the ``dialect`` key of a
source (for a database that speaks another's SQL under its own name)."""


def strategy_for(name: str) -> SqlDialect:
    """The strategy of dialect ``name``; standard SQL (no statistics) for one without."""
    return STRATEGIES.get(name, SqlDialect)()
