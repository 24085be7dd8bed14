"""The personal-data audit log: every reveal and every denied access, append-only.

Kept in the gateway's own store beside the API keys (a SQLite file by default, PostgreSQL when
the URL says so). The table refuses UPDATE and DELETE by trigger (and, on PostgreSQL, TRUNCATE),
so not even the gateway's own code can rewrite history; this module offers no API to try.
Each entry is written, and committed, before the data it records is answered.

The store must not block (gateway/store_engine.py: WAL and a busy timeout on SQLite, a lock
timeout on PostgreSQL). When it cannot record all the same (its file cannot be opened, another
writer holds the lock beyond ``wait_seconds``, the server is down), the reveal is refused with
:class:`~resolvers.access.AuditUnavailable` (``AUDIT_UNAVAILABLE``), never answered unaudited.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiodataloader import DataLoader
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store_engine import DEFAULT_WAIT_SECONDS, store_engine
from resolvers.access import AuditUnavailable, Principal
from resolvers.audit import AuditQuery, AuditRecord
from sources import current_deadline

log = logging.getLogger("complaint_graph.audit")

_metadata = MetaData()
_entries = Table(
    "complaint_graph_audit",
    _metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", String(40), nullable=False),
    Column("action", String(20), nullable=False),  # "reveal" or "deny"
    Column("subject", String(200), nullable=False),
    Column("method", String(20), nullable=False),
    Column("agency", String(100)),
    Column("roles", String(200), nullable=False),
    Column("source", String(100), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("fields", Text, nullable=False),  # JSON list of GraphQL field names
    Column("reason", Text),
    Column("purpose", Text),
)

_REFUSAL = "complaint_graph_audit is append-only"
_APPEND_ONLY = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS complaint_graph_audit_no_update BEFORE UPDATE ON "
        f"complaint_graph_audit BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
        f"CREATE TRIGGER IF NOT EXISTS complaint_graph_audit_no_delete BEFORE DELETE ON "
        f"complaint_graph_audit BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION complaint_graph_audit_refuse() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$",
        "DROP TRIGGER IF EXISTS complaint_graph_audit_no_change ON complaint_graph_audit",
        "CREATE TRIGGER complaint_graph_audit_no_change BEFORE UPDATE OR DELETE ON "
        "complaint_graph_audit FOR EACH ROW EXECUTE FUNCTION complaint_graph_audit_refuse()",
        "DROP TRIGGER IF EXISTS complaint_graph_audit_no_truncate ON complaint_graph_audit",
        "CREATE TRIGGER complaint_graph_audit_no_truncate BEFORE TRUNCATE ON "
        "complaint_graph_audit FOR EACH STATEMENT EXECUTE FUNCTION complaint_graph_audit_refuse()",
    ],
}


class AuditLog:
    """The store; :meth:`for_request` gives the per-request recorder the resolvers call."""

    def __init__(self, url: str, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self.url = url
        self.wait_seconds = wait_seconds
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()
        self._writes: set[asyncio.Task[None]] = set()

    async def _ready(self) -> AsyncEngine:
        async with self._opening:
            if self._engine is None:
                engine = store_engine(self.url, self.wait_seconds)
                try:
                    async with engine.begin() as connection:
                        await connection.run_sync(_metadata.create_all)
                        await _append_only(connection)
                except BaseException:
                    await engine.dispose()  # opened again by the next entry
                    raise
                self._engine = engine
            return self._engine

    async def close(self) -> None:
        """Close the store once the writes still running have ended (those abandoned by
        their requests included: each ends within ``wait_seconds``)."""
        if self._writes:
            await asyncio.wait(self._writes, timeout=self.wait_seconds + 1)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def for_request(self, purpose: str | None) -> RequestAudit:
        return RequestAudit(self, purpose)

    async def append_rows(self, rows: Sequence[Row]) -> None:
        """Several entries in one transaction (one statement), in the order given; committed
        when this returns, else :class:`AuditUnavailable` says why nothing was shown.

        Under a request's deadline the write is waited for only until the request's source
        calls must have ended (sources/_deadline.py): a store locked for longer than the
        request has is a refused reveal (AUDIT_UNAVAILABLE) and the rest of the answer, not
        the request's hard stop with no data. The write runs in a task of its own, left to
        finish alone: cancelling it would not free the request either, since its rollback
        waits for the driver's thread, itself waiting for the lock. If it commits after
        all, the log holds an entry for a reveal never shown: the safe side."""
        deadline = current_deadline()
        if deadline is None:
            await self._append(rows)
            return
        # In a context of its own: not one of the request's tasks, which its hard stop would
        # cancel half-way, leaving a pooled connection that nobody returns.
        loop = asyncio.get_running_loop()
        write = contextvars.Context().run(loop.create_task, self._append(rows))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        try:
            async with asyncio.timeout_at(deadline.last_moment()):
                await asyncio.shield(write)
        except BaseException as exc:
            write.add_done_callback(_retrieve)
            if isinstance(exc, TimeoutError):
                raise AuditUnavailable(self._out_of_time(deadline.seconds)) from None
            raise

    async def _append(self, rows: Sequence[Row]) -> None:
        try:
            engine = await self._ready()
            async with engine.begin() as connection:
                await connection.execute(_entries.insert(), [dict(row) for row in rows])
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailable(self._unavailable(exc)) from exc

    def _out_of_time(self, seconds: float) -> str:
        log.error("the audit log did not record an access within the request's %g s", seconds)
        return (
            "the personal-data audit log cannot record this access, so it is refused: its "
            f"database did not take the entry within the request's {seconds:g} s "
            "(limits.timeout_seconds; another writer holds its lock)"
        )

    def _unavailable(self, exc: BaseException) -> str:
        """The store's problem in words a client may read (no path, host or SQL: the full
        error goes to the gateway log)."""
        log.error("the audit log cannot record an access", exc_info=exc)
        cause = str(getattr(exc, "orig", None) or exc).lower()
        if "locked" in cause or "lock timeout" in cause or "busy" in cause:
            problem = (
                f"another writer has held its lock for longer than {self.wait_seconds:g} s "
                "(auth.personal_data.audit_wait_seconds)"
            )
        elif "unable to open" in cause or "readonly" in cause or "read-only" in cause:
            problem = "its database cannot be opened for writing"
        else:
            problem = f"its database refused the entry ({type(exc).__name__})"
        return f"the personal-data audit log cannot record this access, so it is refused: {problem}"

    async def entries(self, query: AuditQuery) -> list[AuditRecord]:
        """Up to ``query.first`` entries, oldest first, with ids greater than ``query.after``."""
        statement = select(_entries).order_by(_entries.c.id).limit(query.first)
        if query.after is not None:
            statement = statement.where(_entries.c.id > query.after)
        for column, value in (
            (_entries.c.action, query.action),
            (_entries.c.subject, query.subject),
            (_entries.c.source, query.source),
            (_entries.c.case_id, query.case_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            since = query.since if query.since.tzinfo else query.since.replace(tzinfo=UTC)
            statement = statement.where(_entries.c.at >= since.astimezone(UTC).isoformat())
        engine = await self._ready()
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_entry(row._mapping) for row in rows]


def _retrieve(write: asyncio.Task[None]) -> None:
    """An abandoned write's outcome is nobody's: read it so asyncio does not log it."""
    if not write.cancelled():
        write.exception()


async def _append_only(connection: AsyncConnection) -> None:
    for statement in _APPEND_ONLY.get(connection.dialect.name, []):
        await connection.execute(text(statement))


Row = tuple[tuple[str, object], ...]
"""One entry's column values, hashable: what the per-request writer batches."""


def entry_row(
    action: str,
    principal: Principal,
    source: str,
    case_id: str,
    fields: Sequence[str] = (),
    reason: str | None = None,
    purpose: str | None = None,
) -> Row:
    return (
        ("at", datetime.now(UTC).isoformat()),
        ("action", action),
        ("subject", principal.subject),
        ("method", principal.method),
        ("agency", principal.agency),
        ("roles", ",".join(sorted(principal.roles))),
        ("source", source),
        ("case_id", case_id),
        ("fields", json.dumps(list(fields))),
        ("reason", reason),
        ("purpose", purpose),
    )


class RequestAudit:
    """One request's recorder, carrying the purpose its client stated (``X-Purpose``).

    Entries recorded in the same tick (a page of 500 reveals) are written as one batch, through
    a data loader, and every caller waits until its entry is committed.
    """

    def __init__(self, log: AuditLog, purpose: str | None) -> None:
        self.log = log
        self.purpose = purpose
        self._loader: DataLoader[Row, None] | None = None

    @property
    def _writer(self) -> DataLoader[Row, None]:
        """Made on the first entry: most requests record none."""
        if self._loader is None:
            self._loader = DataLoader(batch_load_fn=self._write, cache=False)
        return self._loader

    async def _write(self, rows: list[Row]) -> list[None]:
        await self.log.append_rows(rows)
        return [None] * len(rows)

    async def denied(self, principal: Principal, source: str, local_id: str, reason: str) -> None:
        await self._writer.load(
            entry_row("deny", principal, source, local_id, reason=reason, purpose=self.purpose)
        )

    async def revealed(
        self, principal: Principal, source: str, local_id: str, fields: Sequence[str]
    ) -> None:
        await self._writer.load(
            entry_row("reveal", principal, source, local_id, fields=fields, purpose=self.purpose)
        )

    async def entries(self, query: AuditQuery) -> list[AuditRecord]:
        return await self.log.entries(query)


def _entry(values: RowMapping) -> AuditRecord:
    return AuditRecord(
        id=int(values["id"]),
        at=datetime.fromisoformat(values["at"]),
        action=values["action"],
        subject=values["subject"],
        method=values["method"],
        agency=values["agency"],
        roles=tuple(r for r in values["roles"].split(",") if r),
        source=values["source"],
        case_id=values["case_id"],
        fields=tuple(json.loads(values["fields"])),
        reason=values["reason"],
        purpose=values["purpose"],
    )
