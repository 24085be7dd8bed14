"""``kind: sql``: an agency database reached through SQLAlchemy's async engines.

PostgreSQL (asyncpg), MySQL/MariaDB (asyncmy) and SQLite (aiosqlite) are tested, each through
its dialect strategy (sources/sql/_dialects.py). Each method is one statement; the tables and
views are reflected once, on first use, so a database that is down at start-up is simply
retried later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import MetaData, Select, Table, inspect, select
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from sources._abilities import AsksTogether, TogetherKey
from sources._budget import ConnectionBudget
from sources._errors import (
    SourceBadResponse,
    SourceConfigError,
    SourceError,
    SourceQueryFailed,
    SourceUnavailable,
)
from sources._interface import AgencyInfo, Capabilities, Problem, Source
from sources._model import (
    CARRIED,
    CaseRecord,
    ComplainantRecord,
    ReferralRecord,
    TimelineEntry,
)
from sources._query import CaseFilter, CaseOrder, Position
from sources._settings import SourceSettings
from sources._stats import CaseStats, Dimension
from sources._writes import WritesWithWriter
from sources.sql import _notify, _together
from sources.sql._check import NoStatistics, probes
from sources.sql._dialects import KEYS, SqlDialect, strategy_for
from sources.sql._driver import DRIVER_ERRORS, DriverReads, connection_survives
from sources.sql._rows import LabelledRow, RowMapper
from sources.sql._settings import SqlSettings
from sources.sql._shape import resolve_shape, table_names
from sources.sql._statements import Statements
from sources.sql._stats import StatsQuery
from sources.sql._writes import SqlWriter

__all__ = ["SqlSettings", "SqlSource"]

log = logging.getLogger(__name__)

_PUSHED_DOWN = frozenset(
    {
        "status",
        "category",
        "provinceCode",
        "districtCode",
        "receivedFrom",
        "receivedBefore",
        "text",
        "overdue",
    }
)


CARRY_TIMELINES_AGAIN_AFTER = 60.0
"""Seconds a source's pages (and batches of cases) carry no timelines nor referrals after the
database refused a statement with them."""


class SqlSource(WritesWithWriter, Source):
    settings_model: type[SourceSettings] = SqlSettings
    kind = "sql"

    def __init__(self, settings: SourceSettings) -> None:
        assert isinstance(settings, SqlSettings)
        self.settings = settings
        self.id = settings.id
        self.agency: AgencyInfo = settings.agency.info()
        self.writer = SqlWriter(settings) if settings.writes is not None else None
        self._engine: AsyncEngine | None = None
        self._statements: Statements | None = None
        self._rows: RowMapper | None = None
        self._driver: DriverReads | None = None
        self._opening = asyncio.Lock()
        backend = strategy_for(_backend_name(settings.url))
        self.dialect: SqlDialect = strategy_for(settings.dialect) if settings.dialect else backend
        """What this database's SQL does its own way (sources/sql/_dialects.py)."""
        self._backend = backend
        """The database's own strategy, whatever SQL it speaks: its connection options, its
        reflection and its driver's errors."""
        self.budget = ConnectionBudget()
        """Connections in use at once across the gateway's sources (set by the gateway)."""
        self._carry_after = 0.0
        """``time.monotonic()`` before which pages and batches of cases carry no timelines nor
        referrals: the database refused a statement with them (see :meth:`search_cases`)."""

    @property
    def capabilities(self) -> Capabilities:
        referrals = self.settings.referrals
        return Capabilities(
            pushed_down_filters=_PUSHED_DOWN,
            finds_referrals_to=referrals is not None and referrals.their_reference is not None,
            lists_referrals=referrals is not None and referrals.their_reference is not None,
            finds_complainants=self.settings.complainant is not None
            and self.settings.complainant.citizen_key is not None,
            seeks_by_keyset=True,
        )

    async def open(self) -> None:
        await self._ready()

    async def close(self) -> None:
        await self.close_writer()
        if self._engine is not None:
            await self.budget.release(self._engine)
            self._engine = None
            self._statements = None
            self._driver = None

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        statements, rows = await self._ready()
        natives = statements.native_ids(local_ids)
        if not natives:
            return {}
        result = await self._fetch_values(statements.cases_by_ids, {KEYS: natives})
        records = (rows.case(values) for values in result)
        return {record.local_id: record for record in records}

    async def load_cases_carrying(
        self, local_ids: Sequence[str], carry: frozenset[str]
    ) -> Mapping[str, CaseRecord]:
        """The cases, each row carrying its timeline and referrals (as ``carry`` asks and
        the database can: ``Statements.carried_labels``) in the same statement: a case in
        full detail is one round trip, not three. Refused (or not mapped), as a page with
        them is in :meth:`search_cases`: the cases without them, and none carried for a
        while."""
        statements, rows = await self._ready()
        carried = statements.carried_labels(carry)
        if not carried or time.monotonic() < self._carry_after:
            return await self.load_cases(local_ids)
        natives = statements.native_ids(local_ids)
        if not natives:
            return {}
        statement = statements.cases_by_ids_carrying(carried)
        try:
            result = await self._fetch_values(statement, {KEYS: natives})
            read = rows.case_reader((*statements.labels, *carried))
            records = [read(values) for values in result]
        except SourceBadResponse:
            found = await self.load_cases(local_ids)
            self._carry_after = time.monotonic() + CARRY_TIMELINES_AGAIN_AFTER
            return found
        return {record.local_id: record for record in records}

    async def load_cases_by_reference(self, references: Sequence[str]) -> Mapping[str, CaseRecord]:
        statements, rows = await self._ready()
        natives = statements.native_references(references)
        if not natives:
            return {}
        result = await self._fetch_values(statements.cases_by_references, {KEYS: natives})
        records = (rows.case(values) for values in result)
        return {record.reference_number: record for record in records}

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        """Only the columns ``fields`` need are read: for a dashboard's page, three of four
        time columns (the costliest values to decode) and most text columns are neither
        sent, decoded nor mapped (bench/README.md)."""
        statements, rows = await self._ready()
        labels = statements.labels_for(fields, order)
        carrying = labels is not None and not CARRIED.isdisjoint(labels)
        if labels is not None and carrying and time.monotonic() < self._carry_after:
            labels, carrying = statements.without_carried(labels), False
        try:
            return await self._page(statements, rows, where, order, after, limit, labels)
        except SourceBadResponse:
            if labels is None or not carrying:
                raise
        # The page with its timelines or referrals was refused (their table gone, no
        # permission, a statement timeout) or did not map: the page without them, as any
        # other source's, so the cases still arrive and the loaders, asked for them, report
        # their errors at each case's field. When that page comes, the carried relations were
        # the trouble: pages carry none for a while, so the refusal is not sent again with
        # every page meanwhile (nor a slow database asked twice for each).
        labels = statements.without_carried(labels)
        records = await self._page(statements, rows, where, order, after, limit, labels)
        self._carry_after = time.monotonic() + CARRY_TIMELINES_AGAIN_AFTER
        return records

    async def _page(
        self,
        statements: Statements,
        rows: RowMapper,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        labels: tuple[str, ...] | None,
    ) -> list[CaseRecord]:
        page = statements.search(where, order, after, limit, labels)
        if page is None:
            return []
        read = rows.case if labels is None else rows.case_reader(labels)
        return [read(values) for values in await self._fetch_values(*page)]

    async def count_cases(self, where: CaseFilter) -> int:
        statements, _ = await self._ready()
        statement = statements.count(where)
        if statement is None:
            return 0
        result = await self._fetch(statement)
        return int(result[0][0])

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats:
        """One GROUP BY statement over the same WHERE as ``search`` (sources/sql/_stats.py)."""
        statements, _ = await self._ready()
        conditions = statements._conditions(where)
        if conditions is None:
            return CaseStats(tuple(dimensions))
        query = StatsQuery(self.settings, statements, dimensions, now)
        return query.fold(await self._fetch(self._stats_statement(query, conditions)))

    def _stats_statement(self, query: StatsQuery, conditions: list[Any]) -> Select[Any]:
        try:
            return query.statement(conditions)
        except NotImplementedError as exc:
            raise SourceConfigError(
                self.id,
                f"no statistics for SQL dialect {self.dialect.name!r} ({exc}); set the "
                "source's `dialect` to postgresql, mysql or sqlite if it speaks one of those",
            ) from exc

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        statements, rows = await self._ready()
        if statements.shape.timeline is None:
            return {}
        natives = statements.native_ids(local_ids)
        if not natives:
            return {}
        timelines: dict[str, list[TimelineEntry]] = {}
        for values in await self._fetch_values(statements.timelines, {KEYS: natives}):
            case_id, entry = rows.timeline(values)
            timelines.setdefault(case_id, []).append(entry)
        return timelines

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        statements, rows = await self._ready()
        if statements.shape.referrals is None:
            return {}
        natives = statements.native_ids(local_ids)
        if not natives:
            return {}
        found: dict[str, list[ReferralRecord]] = {}
        for values in await self._fetch_values(statements.referrals, {KEYS: natives}):
            found.setdefault(str(values["case_id"]), []).append(rows.referral(values))
        return found

    async def load_complainants(self, local_ids: Sequence[str]) -> Mapping[str, ComplainantRecord]:
        statements, rows = await self._ready()
        if statements.shape.complainant is None:
            return {}
        natives = statements.native_ids(local_ids)
        if not natives:
            return {}
        fetched = await self._fetch_values(statements.complainants, {KEYS: natives})
        found = (rows.complainant(values) for values in fetched)
        return {record.case_id: record for record in found}

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]:
        statements, rows = await self._ready()
        shape = statements.shape.complainant
        if shape is None or "citizen_key" not in shape.columns or not citizen_keys:
            return {}
        found: dict[str, list[CaseRecord]] = {}
        for values in await self._fetch_values(
            statements.cases_by_complainant, {KEYS: list(citizen_keys)}
        ):
            found.setdefault(str(values["citizen_key"]), []).append(rows.case(values))
        return found

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        statements, rows = await self._ready()
        natives = [n for n, code in self.settings.vocabulary.agencies.items() if code == agency]
        if not self.capabilities.finds_referrals_to or not natives or not references:
            return {}
        found: dict[str, list[ReferralRecord]] = {}
        for values in await self._fetch_values(statements.referrals_to(natives, list(references))):
            record = rows.referral(values)
            found.setdefault(record.their_reference or "", []).append(record)
        return found

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        statements, _ = await self._ready()
        if not self.capabilities.lists_referrals:
            return ()
        agencies = self.settings.vocabulary.agencies
        found = await self._fetch(statements.referred_references())
        pairs = ((str(row.to_agency), str(row.their_reference)) for row in found)
        return [(agencies[native], ref) for native, ref in pairs if native in agencies]

    async def listen_for_changes(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        channel = self.settings.notify_channel
        if channel is None:
            return await super().listen_for_changes(wake)
        try:
            return await _notify.listen(self.settings.url, channel, wake)
        except (OSError, asyncpg.PostgresError) as exc:
            raise SourceUnavailable(self.id, f"cannot LISTEN ({type(exc).__name__})") from exc

    async def install_triggers(self) -> list[str]:
        """Add NOTIFY triggers to the mapped tables; returns the tables it changed."""
        channel = self.settings.notify_channel
        if channel is None:
            raise SourceConfigError(self.id, "notify_channel is not set for this source")
        tables = [self.settings.cases.table]
        for extra in (self.settings.timeline, self.settings.referrals):
            if extra is not None:
                tables.append(extra.table)
        try:
            await _notify.install_triggers(self.settings.url, tables, channel)
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise SourceConfigError(self.id, f"cannot install triggers: {exc}") from exc
        return list(dict.fromkeys(tables))

    async def check(self) -> list[Problem]:
        try:
            tables = await self._reflect()
        except MissingDriver as exc:
            return [Problem(self.id, "url", exc.detail, exc.fix)]
        except SourceError as exc:
            return [Problem(self.id, "url", exc.detail, "check the URL and that the server runs")]
        shape, problems = resolve_shape(self.settings, tables)
        if shape is None:
            return problems
        try:
            statements, _ = await self._ready()  # as when serving: the same driver path
        except SourceError as exc:
            return [Problem(self.id, "url", exc.detail, "check the URL and that the server runs")]
        refused = await self._probe(statements)
        if refused:
            return refused
        return await self._unmapped_values(statements)

    async def _probe(self, statements: Statements) -> list[Problem]:
        """Each kind of statement sent once, reading no rows (sources/sql/_check.py): what
        the database refuses, it would refuse while serving."""
        problems: list[Problem] = []
        fix = (
            f"the statements are written for SQL dialect {self.dialect.name!r}: set the "
            "source's `dialect` if the database speaks another's SQL; otherwise map a view "
            "that provides what is missing, or grant what the database names"
        )
        try:
            for kind, statement, parameters in probes(statements, self.id):
                try:
                    await self._fetch_values(statement, parameters)
                except SourceQueryFailed as exc:
                    refused = f"the {kind} statement was refused: {exc.reason or exc.detail}"
                    problems.append(Problem(self.id, "dialect", refused, fix))
                except SourceUnavailable as exc:
                    down = "check the URL and that the server runs"
                    problems.append(Problem(self.id, "url", f"{kind}: {exc.detail}", down))
                except SourceError as exc:
                    failed = f"the {kind} statement failed: {exc.detail}"
                    problems.append(Problem(self.id, "dialect", failed, fix))
                except Exception as exc:  # a dialect's SQL the driver cannot even send
                    failed = f"the {kind} statement cannot be sent: {type(exc).__name__}: {exc}"
                    problems.append(Problem(self.id, "dialect", failed, fix))
        except NoStatistics as exc:
            problem = f"no statistics for SQL dialect {self.dialect.name!r} ({exc})"
            problems.append(Problem(self.id, "dialect", problem, fix))
        return problems

    async def _unmapped_values(self, statements: Statements) -> list[Problem]:
        """Every distinct native status/category/channel value the vocabulary does not map."""
        shape = statements.shape
        vocabulary = self.settings.vocabulary
        checks: list[tuple[str, Any, Mapping[str, object]]] = [
            ("statuses", shape.status, vocabulary.statuses),
            ("categories", shape.category_code, vocabulary.categories),
        ]
        if shape.channel is not None:
            checks.append(("channels", shape.channel, vocabulary.channels))
        if shape.timeline is not None and shape.timeline.status is not None:
            checks.append(("statuses", shape.timeline.status, vocabulary.statuses))
        if shape.referrals is not None:
            columns = shape.referrals.columns
            checks.append(("agencies", columns["to_agency"], vocabulary.agencies))
            if "kind" in columns:
                checks.append(("referral_kinds", columns["kind"], vocabulary.referral_kinds))
        problems: list[Problem] = []
        for key, column, mapping in checks:
            for (value,) in await self._fetch(select(column).distinct()):
                if value is not None and str(value) not in mapping:
                    problems.append(
                        Problem(
                            self.id,
                            f"vocabulary.{key}",
                            f"value {value!r} in column {getattr(column, 'name', key)!r} "
                            "is not mapped",
                            f"add {str(value)!r} under vocabulary.{key}",
                        )
                    )
        return problems

    async def _ready(self) -> tuple[Statements, RowMapper]:
        if self._statements is not None and self._rows is not None:
            return self._statements, self._rows
        async with self._opening:
            if self._statements is None or self._rows is None:
                tables = await self._reflect()
                shape, problems = resolve_shape(self.settings, tables)
                if shape is None:
                    detail = "; ".join(f"{p.key}: {p.problem}" for p in problems)
                    raise SourceConfigError(
                        self.id, f"mapping does not fit the database ({detail})"
                    )
                dialect = self._engine_or_create().dialect
                self._statements = Statements(self.settings, shape, self.dialect)
                self._rows = RowMapper(self.settings, self._statements)
                if dialect.driver == "asyncpg":
                    self._driver = DriverReads(dialect)
            return self._statements, self._rows

    def _engine_or_create(self) -> AsyncEngine:
        if self._engine is None:
            # Every statement here only reads, one at a time: in autocommit no BEGIN before it
            # and no ROLLBACK when the connection goes back to the pool (two round trips to the
            # database per source call otherwise).
            options: dict[str, Any] = {
                "isolation_level": "AUTOCOMMIT",
                **self._backend.engine_options(self.settings.url, ZoneInfo(self.settings.timezone)),
            }
            sizes = {
                "pool_size": self.settings.pool_size,
                "max_overflow": self.settings.pool_overflow,
                # The connection returned last is lent next: its prepared statements (a
                # group's union among them) are warm, and connections beyond what the load
                # needs stay idle rather than each being used in turn.
                "pool_use_lifo": True,
            }
            key = (self.settings.url, repr(sorted({**options, **sizes}.items())))

            def make() -> AsyncEngine:
                try:
                    return create_async_engine(self.settings.url, **sizes, **options)
                except TypeError:  # pools without a size (SQLite's NullPool on some versions)
                    return create_async_engine(self.settings.url, **options)

            try:  # shared with the sources reading the same database (sources/_budget.py)
                self._engine = self.budget.engine(key, make)
            except ModuleNotFoundError as exc:
                raise MissingDriver(self.id, self.settings.url, exc.name or str(exc)) from exc
            except (SQLAlchemyError, ImportError, ValueError) as exc:
                raise SourceConfigError(self.id, f"bad url: {exc}") from exc
        return self._engine

    async def _reflect(self) -> dict[str, Table | None]:
        """Every table and view name in the database; those the mapping names come reflected.
        A view serves wherever a table does (an agency often offers only views, or a view
        converts a column); so does a synonym where the dialect resolves them."""
        names = table_names(self.settings)

        def reflect(connection: Connection) -> dict[str, Table | None]:
            inspector = inspect(connection)
            existing = [*inspector.get_table_names(), *inspector.get_view_names()]
            metadata = MetaData()
            metadata.reflect(
                connection,
                only=[name for name in set(names) if name in existing],
                views=True,
                **self._backend.reflect_options(),
            )
            return {name: metadata.tables.get(name) for name in existing}

        try:
            async with self.budget.connect(self._engine_or_create()) as connection:
                return await connection.run_sync(reflect)
        except NoSuchTableError as exc:
            raise SourceConfigError(self.id, f"table {exc} does not exist") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise _translate(self.id, exc, self._backend) from exc

    async def _fetch_values(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[LabelledRow]:
        """The rows by column label, as the row mapper reads them: on PostgreSQL asyncpg's own
        records (sources/sql/_driver.py), elsewhere a dict per row (not a SQLAlchemy
        ``RowMapping`` each: building those showed in the dashboard page's profile).
        ``parameters`` are values for the statement's named bind parameters (``KEYS``)."""
        rendered = self._driver.render(statement, parameters) if self._driver is not None else None
        if rendered is None:
            rows = await self._fetch(statement, parameters)
            keys = rows[0]._fields if rows else ()
            return [dict(zip(keys, row, strict=True)) for row in rows]
        return await self._fetch_rendered(*rendered)

    async def _fetch_rendered(self, sql: str, arguments: Sequence[Any]) -> Sequence[LabelledRow]:
        """asyncpg's records for SQL rendered by :class:`~sources.sql._driver.DriverReads`."""
        async with self._driver_connection() as driver:
            return cast(list[LabelledRow], await driver.fetch(sql, *arguments))

    @contextlib.asynccontextmanager
    async def _driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's own asyncpg connection, for reads sent to the driver: one an
        error leaves unusable (lost, or a fetch cancelled halfway) does not go back into the
        pool, and driver and pool errors come out as this source's errors."""
        try:
            async with self.budget.connect(self._engine_or_create()) as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert isinstance(driver, asyncpg.Connection)
                try:
                    yield driver
                except BaseException as exc:
                    if not connection_survives(exc):
                        await connection.invalidate()  # not back into the pool
                    raise
        except (*DRIVER_ERRORS, SQLAlchemyError, OSError) as exc:
            raise _translate(self.id, exc, self._backend) from exc

    async def _fetch(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        try:
            async with self.budget.connect(self._engine_or_create()) as connection:
                result = await connection.execute(statement, parameters)
                return result.all()
        except (SQLAlchemyError, OSError) as exc:
            raise _translate(self.id, exc, self._backend) from exc

    # Asked with the sources on the same database, in one statement (sources/sql/_together.py)

    def together_key(self) -> TogetherKey | None:
        return _together.key_of(self)

    async def search_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None,
    ) -> list[list[CaseRecord]]:
        return await _together.search(self, _sql(members), where, order, after, limit, fields)

    async def count_together(self, members: Sequence[AsksTogether], where: CaseFilter) -> list[int]:
        return await _together.count(self, _sql(members), where)

    async def stats_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        dimensions: Sequence[Dimension],
        now: datetime,
    ) -> list[CaseStats]:
        return await _together.stats(self, _sql(members), where, dimensions, now)


def _sql(members: Sequence[AsksTogether]) -> list[SqlSource]:
    """Members of a group this source leads: sources of this kind (their key says so)."""
    found = [member for member in members if isinstance(member, SqlSource)]
    assert len(found) == len(members), "a group of SQL sources holds only SQL sources"
    return found


def _translate(source: str, exc: BaseException, dialect: SqlDialect) -> SourceError:
    """Driver errors as source errors: unreachable (retried later) or refused with the
    database's own reason (not retried: it would be refused again), as ``dialect`` tells them
    apart; no SQL text or connection string in the message."""
    log.warning("source %s: %s", source, type(exc).__name__)
    log.debug("source %s failed", source, exc_info=exc)
    if isinstance(exc, OSError):
        return SourceUnavailable(source, f"database unreachable ({type(exc).__name__})")
    if isinstance(exc, DRIVER_ERRORS):  # from reads sent straight to asyncpg
        if connection_survives(exc):
            return _refused(source, exc, dialect)
        return SourceUnavailable(source, f"database unreachable ({type(exc).__name__})")
    if isinstance(exc, DBAPIError):
        original = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
        if (
            exc.connection_invalidated
            or exc.statement is None  # failed while connecting: no query was sent
            or dialect.unavailable(exc.orig)
        ):
            return SourceUnavailable(source, f"database unreachable ({original})")
        return _refused(source, exc.orig, dialect)
    return SourceBadResponse(source, f"database error ({type(exc).__name__})")


def _refused(source: str, error: BaseException | None, dialect: SqlDialect) -> SourceQueryFailed:
    reason = dialect.message(error)
    log.warning("source %s: the database refused a statement: %s", source, reason)
    name = dialect.error_name(error)
    return SourceQueryFailed(source, f"database refused the query ({name})", reason)


def _backend_name(url: str) -> str:
    """The dialect name of a SQLAlchemy URL (``mysql`` of ``mysql+asyncmy://``)."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return ""


DRIVER_EXTRAS = {"asyncmy": "mysql", "aiomysql": "mysql", "pymysql": "mysql"}
"""Driver modules an extra of complaint-graph installs (pyproject.toml), by module name."""


class MissingDriver(SourceConfigError):
    """The URL names a driver that is not installed: the fix is an install, not the URL."""

    def __init__(self, source: str, url: str, module: str) -> None:
        scheme = url.split("://", 1)[0]
        top = module.split(".", 1)[0]
        extra = DRIVER_EXTRAS.get(top)
        if extra is not None:
            self.fix = (
                f"pip install 'complaint-graph[{extra}]' (installs asyncmy: mysql+asyncmy://)"
            )
            if top != "asyncmy":
                self.fix += f", or pip install {top}"
        else:
            self.fix = f"install the Python package that provides {top!r}"
        super().__init__(source, f"the driver of {scheme}:// is not installed (no module {top!r})")
