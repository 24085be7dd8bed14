"""Rows read from PostgreSQL through asyncpg itself, with SQLAlchemy's compiled SQL.

SQLAlchemy builds and compiles every statement; for the reads that turn rows into records
(pages, batches of cases, timelines, referrals) the compiled text and its parameters then go
straight to the pooled connection's asyncpg driver, and the driver's own ``Record``s (read by
column label, as the row mapper does) come back. Executing them through SQLAlchemy's asyncpg
adapter instead cost a greenlet switch, an execution context, a cursor emulation, a ``Row`` per
row and a dict per row again: about 5% of the dashboard page's instructions (``bench/README.md``).

The compiled form is kept per statement object (:class:`DriverReads`). Statements this cannot
send as they are (``IN`` lists expanded at execution time, literal-rendered values) return None
from :meth:`DriverReads.render`, and the caller lets SQLAlchemy run them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TupleType, TypeEngine

from sources._errors import SourceBadResponse, SourceError, SourceUnavailable

# SQLSTATE classes of a server that is there but not serving: connection exceptions, out of
# resources (too many connections), operator intervention (shut down, session terminated).
UNAVAILABLE_STATES = ("08", "53", "57P")


MAX_STATEMENTS = 256
"""Statements whose compiled form is kept per source; a filtered page's statement is built per
request, so more than this empties the memo rather than growing it."""


class _Rendering(NamedTuple):
    """A statement object's compiled form: its SQL, and per position the bind parameter's name
    and processor; no SQL (None) when asyncpg cannot be sent it as it is."""

    statement: Executable  # held, so that no other statement takes its id while it is here
    compiled: SQLCompiler
    sql: str | None
    positions: tuple[tuple[str, Any], ...]


class DriverReads:
    """SQLAlchemy statements rendered for asyncpg's ``fetch`` through SQLAlchemy's public API:
    the compiled string, its parameters in position order, each through its type's bind
    processor for the dialect (what SQLAlchemy's execution applies).

    The compiled form is kept per statement object: the statements sources/sql/_statements.py
    builds once and reuses (the first page per order and columns, each batch by ``KEYS``) are
    compiled once per source. SQLAlchemy's own cache key, which would let equal statements
    built apart share one compiled form too, is reachable only through a private method."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._rendered: dict[int, _Rendering] = {}
        self._processors: WeakKeyDictionary[TypeEngine[Any], Any] = WeakKeyDictionary()

    def render(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | None = None,
        keep_bound: bool = True,
    ) -> tuple[str, list[Any]] | None:
        """The SQL text and positional arguments, or None for SQLAlchemy to execute it.
        ``parameters`` give values to named bind parameters (a keyed statement's batch).
        ``keep_bound=False``: a statement with bound values is not kept (built for one
        request, as a filtered group's union is: kept, 256 of them held hundreds of MB)."""
        rendering = self._rendered.get(id(statement))
        if rendering is None or rendering.statement is not statement:
            if not isinstance(statement, ClauseElement):
                return None
            made = statement.compile(dialect=self.dialect)
            if not isinstance(made, SQLCompiler):
                return None
            rendering = self._rendering(statement, made)
            if keep_bound or not rendering.positions:
                if len(self._rendered) >= MAX_STATEMENTS:
                    self._rendered.clear()
                self._rendered[id(statement)] = rendering
        if rendering.sql is None:
            return None
        values = rendering.compiled.construct_params(parameters)
        arguments = [
            values[name] if process is None else process(values[name])
            for name, process in rendering.positions
        ]
        return rendering.sql, arguments

    def _rendering(self, statement: Executable, compiled: SQLCompiler) -> _Rendering:
        unsendable = _Rendering(statement, compiled, None, ())
        if not compiled.positional or compiled.post_compile_params:
            return unsendable
        if compiled.literal_execute_params:
            return unsendable
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        positions = []
        for name in compiled.positiontup or ():
            kind = binds[name].type
            if isinstance(kind, TupleType):
                return unsendable  # a processor per element: SQLAlchemy's execution does that
            positions.append((name, self._processor(kind)))
        return _Rendering(statement, compiled, compiled.string, tuple(positions))

    def _processor(self, kind: TypeEngine[Any]) -> Any:
        """The dialect's bind processor for ``kind`` (None when values go as they are), made
        once per type object: building one is a closure per call."""
        try:
            return self._processors[kind]
        except KeyError:
            process = kind.dialect_impl(self.dialect).bind_processor(self.dialect)
            self._processors[kind] = process
            return process


DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
"""What asyncpg raises: the server's refusals and lost connections (``PostgresError``), misuse
of a connection (``InterfaceError``), a connection left in a state it cannot go on from
(``InternalClientError``)."""


def driver_error(source: str, exc: BaseException) -> SourceError:
    """asyncpg's errors as source errors, named by class, without SQL text or addresses."""
    name = type(exc).__name__
    if connection_survives(exc):
        return SourceBadResponse(source, f"database refused the query ({name})")
    # The connection broke, or the socket did: the database is not there to answer.
    return SourceUnavailable(source, f"database unreachable ({name})")


def connection_survives(exc: BaseException) -> bool:
    """Whether the pooled connection can serve again after ``exc``: only when the server
    refused the statement and said so. After anything else (a lost connection, a fetch
    cancelled by the source's timeout halfway through its reply) it is discarded."""
    return isinstance(exc, asyncpg.PostgresError) and not means_unavailable(exc)


def means_unavailable(error: BaseException | None) -> bool:
    """Whether the SQLSTATE a database error carries says the server is not serving."""
    return str(getattr(error, "sqlstate", None) or "").startswith(UNAVAILABLE_STATES)
