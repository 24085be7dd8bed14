"""``kind: sql`` writes: a case created, its status moved on, a referral recorded, each in one
transaction on the agency's own tables, through the columns its read mapping already names.

Idempotency is the database's: the key kept in a column (``writes.key_column``, best with a
UNIQUE index, so that two concurrent sends of one key make one row and the loser finds the
winner's) or the sender's reference looked up before creating. Status changes and referrals
look for the row they would add before adding it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, MetaData, Table, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from sources._errors import SourceBadResponse, SourceConfigError, SourceError, SourceUnavailable
from sources._model import CanonicalStatus
from sources._settings import SourceSettings
from sources._writes import NewCase, OutgoingReferral, native_of
from sources.sql._dialects import SqlDialect, strategy_for
from sources.sql._settings import Constant, SqlSettings
from sources.sql._write_settings import IdStrategy, SqlWrites

CLASH_RETRIES = 5
"""Inserts retried when a made id (max + 1) clashes with a concurrent writer's."""


class SqlWriter:
    """Writes for one SQL source, on an engine of its own (a write never waits behind reads).

    What differs between databases (the session's time zone and character set, how an insert
    answers the id it made, which driver errors mean "not there") is the database's
    strategy's (sources/sql/_dialects.py), as for reads: nothing here asks which it is."""

    def __init__(self, settings: SourceSettings) -> None:
        assert isinstance(settings, SqlSettings) and settings.writes is not None
        self.settings = settings
        self.writes: SqlWrites = settings.writes
        self.source_id = settings.id
        self.zone = ZoneInfo(settings.timezone)
        self.backend: SqlDialect = strategy_for(_backend_name(settings.url))
        self._engine: AsyncEngine | None = None
        self._tables: dict[str, Table] = {}
        self._opening = asyncio.Lock()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _ready(self) -> AsyncEngine:
        async with self._opening:
            if self._engine is None:
                options = self.backend.engine_options(self.settings.url, self.zone)
                engine = create_async_engine(self.settings.url, **options)
                names = [self.settings.cases.table]
                for part in (
                    self.settings.location,
                    self.settings.timeline,
                    self.settings.complainant,
                ):
                    table = getattr(part, "table", None)
                    if table:
                        names.append(table)
                for lookup in (self.settings.category_lookup, self.settings.status_lookup):
                    if lookup is not None:
                        names.append(lookup.table)
                if self.settings.referrals is not None:
                    names.append(self.settings.referrals.table)
                metadata = MetaData()
                try:
                    async with engine.connect() as connection:
                        await connection.run_sync(lambda c: metadata.reflect(c, only=names))
                except SQLAlchemyError as exc:
                    await engine.dispose()
                    raise self._error(exc) from exc
                self._tables = dict(metadata.tables)
                self._engine = engine
            return self._engine

    def _error(self, exc: SQLAlchemyError) -> SourceError:
        """Not there (retried by the outbox) or refused (abandoned), as the database's
        strategy reads the driver's error: MySQL's OperationalError is both."""
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        if getattr(exc, "connection_invalidated", False) or self.backend.unavailable(cause):
            return SourceUnavailable(self.source_id, f"cannot write: {exc.__class__.__name__}")
        return SourceBadResponse(
            self.source_id,
            f"the database refused the write ({self.backend.error_name(cause)}): "
            f"{self.backend.message(cause)}",
        )

    def _refused(self, what: str, exc: IntegrityError) -> SourceBadResponse:
        """A constraint the database holds to: its error's name and first line only. The
        exception's own text carries the statement and its parameters (the agency's columns,
        a complainant's name), which would reach lastError, the outbox and the audit log."""
        return SourceBadResponse(
            self.source_id,
            f"the database refused the {what} ({self.backend.error_name(exc.orig)}): "
            f"{self.backend.message(exc.orig)}",
        )

    async def _run(self, work: Any) -> Any:
        """``work(connection)`` in one transaction, database errors as source errors."""
        try:
            engine = await self._ready()
        except (OSError, ConnectionError) as exc:
            raise SourceUnavailable(self.source_id, f"cannot connect: {exc}") from exc
        try:
            async with engine.begin() as connection:
                return await work(connection)
        except SourceError:
            raise
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc
        except (OSError, ConnectionError) as exc:
            raise SourceUnavailable(self.source_id, f"cannot connect: {exc}") from exc

    def _time(self, table: Table, column: str, at: datetime) -> datetime:
        """Aware for a column with a time zone, else local time in the source's zone."""
        kind = table.c[column].type
        if isinstance(kind, DateTime) and kind.timezone:
            return at
        return at.astimezone(self.zone).replace(tzinfo=None)

    async def _new_id(
        self, connection: AsyncConnection, table: Table, column: str, how: IdStrategy
    ) -> dict[str, Any]:
        if how == "database":
            return {}
        if how == "uuid":
            return {column: uuid.uuid4().hex}
        top = (await connection.execute(select(func.max(table.c[column])))).scalar()
        return {column: int(top or 0) + 1}

    # -- create ---------------------------------------------------------------------------------

    async def create_case(self, case: NewCase, key: str) -> str:
        for _ in range(CLASH_RETRIES):
            found = await self._run(lambda c: self._existing(c, case, key))
            if found is not None:
                return str(found)
            try:
                return str(await self._run(lambda c: self._insert(c, case, key)))
            except IntegrityError as exc:
                clash = exc  # a concurrent send of this key, or a made id taken: look again
        raise self._refused("new case", clash)

    async def _existing(self, connection: AsyncConnection, case: NewCase, key: str) -> Any:
        cases = self._tables[self.settings.cases.table]
        id_column = cases.c[self.settings.cases.id]
        if self.writes.key_column is not None:
            wanted = cases.c[self.writes.key_column] == key
        elif self.writes.sender_reference_column is not None:
            reference = f"{case.sender_agency}:{case.sender_reference}"
            wanted = cases.c[self.writes.sender_reference_column] == reference
        else:
            return None
        return (await connection.execute(select(id_column).where(wanted).limit(1))).scalar()

    async def _insert(self, connection: AsyncConnection, case: NewCase, key: str) -> Any:
        mapping, vocabulary = self.settings.cases, self.settings.vocabulary
        cases = self._tables[mapping.table]
        row: dict[str, Any] = dict(self.writes.defaults)
        row.update(await self._new_id(connection, cases, mapping.id, self.writes.case_id))
        row[mapping.title] = case.title
        if isinstance(mapping.description, str):
            row[mapping.description] = case.description
        if isinstance(mapping.channel, str):
            row[mapping.channel] = native_of(
                self.source_id, "channels", vocabulary.channels, case.channel
            )
        if isinstance(mapping.category, str):
            row[mapping.category] = await self._category(connection, case.category)
        elif isinstance(mapping.category, Constant) and mapping.category.value != case.category:
            pass  # an agency that takes one category takes every case under it
        row[mapping.status] = await self._status(connection, case.status)
        row[mapping.received_at] = self._time(cases, mapping.received_at, case.received_at)
        if mapping.updated_at is not None:
            row[mapping.updated_at] = self._time(cases, mapping.updated_at, case.received_at)
        if self.writes.key_column is not None:
            row[self.writes.key_column] = key
        if self.writes.sender_reference_column is not None:
            row[self.writes.sender_reference_column] = (
                f"{case.sender_agency}:{case.sender_reference}"
            )
        location = self._location(case)
        if self.settings.location.table is None:
            row.update(location)
        person = self._complainant(case)
        if (
            person
            and self.settings.complainant is not None
            and self.settings.complainant.table is None
        ):
            row.update(person)
        if self.writes.reference_pattern is not None and mapping.id in row:
            row[mapping.reference_number] = self._reference(row[mapping.id], case)
        id_column = cases.c[mapping.id]
        statement = self.backend.inserting(cases.insert().values(row), id_column)
        new_id = self.backend.inserted_value(await connection.execute(statement), id_column)
        if self.writes.reference_pattern is not None and mapping.reference_number not in row:
            await connection.execute(
                cases.update()
                .where(cases.c[mapping.id] == new_id)
                .values({mapping.reference_number: self._reference(new_id, case)})
            )
        if self.settings.location.table is not None and location:
            places = self._tables[self.settings.location.table]
            assert self.settings.location.case_id is not None
            await connection.execute(
                places.insert().values({self.settings.location.case_id: new_id, **location})
            )
        people = self.settings.complainant
        if person and people is not None and people.table is not None:
            assert people.case_id is not None
            table = self._tables[people.table]
            await connection.execute(table.insert().values({people.case_id: new_id, **person}))
        await self._timeline_row(connection, new_id, case.status, case.note, case.received_at)
        return new_id

    def _complainant(self, case: NewCase) -> dict[str, Any]:
        """The complainant's columns for what this agency may receive (``personal_data``),
        flagged neither anonymous nor confidential; nothing when nothing is allowed or sent."""
        columns = self.settings.complainant
        allowed = set(self.writes.personal_data)
        sent = {k: v for k, v in (case.complainant or {}).items() if k in allowed and v}
        if columns is None or not sent:
            return {}
        row: dict[str, Any] = {}
        for name, value in sent.items():
            column = getattr(columns, name, None)
            if column is not None:
                row[column] = value
        for flag in (columns.is_anonymous, columns.is_confidential):
            if flag is not None and row:
                row[flag] = False
        return row

    def _reference(self, new_id: Any, case: NewCase) -> str:
        assert self.writes.reference_pattern is not None
        return self.writes.reference_pattern.format(id=new_id, year=case.received_at.year)

    def _location(self, case: NewCase) -> dict[str, Any]:
        columns = self.settings.location
        values = {
            columns.province_code: case.province_code,
            columns.district_code: case.district_code,
            columns.subdistrict_code: case.subdistrict_code,
            columns.address: case.address,
            columns.latitude: case.latitude,
            columns.longitude: case.longitude,
        }
        return {column: value for column, value in values.items() if column is not None}

    async def _category(self, connection: AsyncConnection, category: str) -> Any:
        native = native_of(
            self.source_id, "categories", self.settings.vocabulary.categories, category
        )
        lookup = self.settings.category_lookup
        if lookup is None:
            return native
        return await self._key_of(
            connection, "category", native, lookup.table, lookup.key, lookup.code
        )

    async def _status(self, connection: AsyncConnection, status: CanonicalStatus) -> Any:
        native = native_of(self.source_id, "statuses", self.settings.vocabulary.statuses, status)
        lookup = self.settings.status_lookup
        if lookup is None:
            return native
        return await self._key_of(
            connection, "status", native, lookup.table, lookup.key, lookup.label
        )

    async def _key_of(
        self,
        connection: AsyncConnection,
        what: str,
        native: Any,
        table_name: str,
        key: str,
        by: str,
    ) -> Any:
        """The key the agency's lookup table gives ``native`` (a category code or a status
        label): what its case rows hold."""
        table = self._tables[table_name]
        statement = select(table.c[key]).where(table.c[by] == native)
        found = (await connection.execute(statement)).scalar()
        if found is None:
            raise SourceConfigError(
                self.source_id, f"{what} {native!r} is not in the table {table_name}"
            )
        return found

    async def _timeline_row(
        self,
        connection: AsyncConnection,
        case_id: Any,
        status: CanonicalStatus,
        note: str | None,
        at: datetime,
    ) -> None:
        columns = self.settings.timeline
        if columns is None:
            return
        table = self._tables[columns.table]
        row: dict[str, Any] = {
            columns.case_id: case_id,
            columns.at: self._time(table, columns.at, at),
        }
        if columns.status is not None:
            row[columns.status] = await self._status(connection, status)
        if columns.note is not None:
            row[columns.note] = note
        if columns.tie_breaker is not None:
            row.update(
                await self._new_id(connection, table, columns.tie_breaker, self.writes.timeline_id)
            )
        await connection.execute(table.insert().values(row))

    # -- status ---------------------------------------------------------------------------------

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        for _ in range(CLASH_RETRIES):
            try:
                await self._run(lambda c: self._move(c, local_id, status, note, at))
                return
            except IntegrityError as exc:
                clash = exc
        raise self._refused("change", clash)

    async def _move(
        self,
        connection: AsyncConnection,
        local_id: str,
        status: CanonicalStatus,
        note: str | None,
        at: datetime,
    ) -> None:
        mapping = self.settings.cases
        cases = self._tables[mapping.table]
        native = await self._status(connection, status)
        case_id = self._native_id(cases, mapping.id, local_id)
        current = (
            await connection.execute(
                select(cases.c[mapping.status]).where(cases.c[mapping.id] == case_id)
            )
        ).first()
        if current is None:
            raise SourceBadResponse(self.source_id, f"no case {local_id!r} to update")
        if current[0] == native and await self._last_note(connection, case_id) == note:
            return  # this change is already written (a retry of the same report)
        values: dict[str, Any] = {mapping.status: native}
        if mapping.updated_at is not None:
            values[mapping.updated_at] = self._time(cases, mapping.updated_at, at)
        if mapping.closed_at is not None and status.is_finished:
            values[mapping.closed_at] = self._time(cases, mapping.closed_at, at)
        await connection.execute(
            cases.update().where(cases.c[mapping.id] == case_id).values(values)
        )
        await self._timeline_row(connection, case_id, status, note, at)

    async def _last_note(self, connection: AsyncConnection, case_id: Any) -> str | None:
        columns = self.settings.timeline
        if columns is None or columns.note is None:
            return None
        table = self._tables[columns.table]
        order = [table.c[columns.at].desc()]
        if columns.tie_breaker is not None:
            order.append(table.c[columns.tie_breaker].desc())
        statement = (
            select(table.c[columns.note])
            .where(table.c[columns.case_id] == case_id)
            .order_by(*order)
            .limit(1)
        )
        value = (await connection.execute(statement)).scalar()
        return None if value is None else str(value)

    @staticmethod
    def _native_id(table: Table, column: str, local_id: str) -> Any:
        try:
            python_type = table.c[column].type.python_type
        except NotImplementedError:
            return local_id
        return int(local_id) if python_type is int else local_id

    # -- note ---------------------------------------------------------------------------------

    def takes(self, step: str) -> bool:
        if step == "record":
            referrals = self.settings.referrals
            return referrals is not None and referrals.their_reference is not None
        if step == "note":
            timeline = self.settings.timeline
            return timeline is not None and timeline.note is not None
        return True

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        if not self.takes("note"):
            raise SourceConfigError(self.source_id, "maps no timeline note column: cannot add one")
        for _ in range(CLASH_RETRIES):
            try:
                await self._run(lambda c: self._note(c, local_id, note, at))
                return
            except IntegrityError as exc:
                clash = exc
        raise self._refused("note", clash)

    async def _note(
        self, connection: AsyncConnection, local_id: str, note: str, at: datetime
    ) -> None:
        """A timeline row with the case's current status, as the agency's own staff add one."""
        mapping = self.settings.cases
        columns = self.settings.timeline
        assert columns is not None and columns.note is not None
        cases = self._tables[mapping.table]
        case_id = self._native_id(cases, mapping.id, local_id)
        current = (
            await connection.execute(
                select(cases.c[mapping.status]).where(cases.c[mapping.id] == case_id)
            )
        ).first()
        if current is None:
            raise SourceBadResponse(self.source_id, f"no case {local_id!r} to add a note to")
        if await self._last_note(connection, case_id) == note:
            return  # written by an earlier send of this note
        table = self._tables[columns.table]
        row: dict[str, Any] = {
            columns.case_id: case_id,
            columns.at: self._time(table, columns.at, at),
            columns.note: note,
        }
        if columns.status is not None:
            row[columns.status] = current[0]
        if columns.tie_breaker is not None:
            row.update(
                await self._new_id(connection, table, columns.tie_breaker, self.writes.timeline_id)
            )
        await connection.execute(table.insert().values(row))
        if mapping.updated_at is not None:
            moment = {mapping.updated_at: self._time(cases, mapping.updated_at, at)}
            await connection.execute(
                cases.update().where(cases.c[mapping.id] == case_id).values(moment)
            )

    # -- referral -------------------------------------------------------------------------------

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        columns = self.settings.referrals
        if columns is None or columns.their_reference is None:
            raise SourceConfigError(
                self.source_id, "maps no referrals table with their_reference: cannot record one"
            )
        for _ in range(CLASH_RETRIES):
            try:
                await self._run(lambda c: self._refer(c, local_id, referral))
                return
            except IntegrityError as exc:
                clash = exc
        raise self._refused("referral", clash)

    async def _refer(
        self, connection: AsyncConnection, local_id: str, referral: OutgoingReferral
    ) -> None:
        columns = self.settings.referrals
        assert columns is not None and columns.their_reference is not None
        vocabulary = self.settings.vocabulary
        table = self._tables[columns.table]
        cases = self._tables[self.settings.cases.table]
        case_id = self._native_id(cases, self.settings.cases.id, local_id)
        target = native_of(self.source_id, "agencies", vocabulary.agencies, referral.to_agency)
        already = select(table.c[columns.case_id]).where(
            table.c[columns.case_id] == case_id,
            table.c[columns.to_agency] == target,
            table.c[columns.their_reference] == referral.their_reference,
        )
        if (await connection.execute(already.limit(1))).first() is not None:
            return  # recorded by an earlier send of this step
        row: dict[str, Any] = {
            columns.case_id: case_id,
            columns.to_agency: target,
            columns.at: self._time(table, columns.at, referral.at),
            columns.their_reference: referral.their_reference,
        }
        if columns.kind is not None:
            row[columns.kind] = native_of(
                self.source_id, "referral_kinds", vocabulary.referral_kinds, referral.kind
            )
        if columns.tie_breaker is not None:
            row.update(
                await self._new_id(connection, table, columns.tie_breaker, self.writes.referral_id)
            )
        await connection.execute(table.insert().values(row))
        updated = self.settings.cases.updated_at
        if updated is not None:  # the hand-over is a change of the case: watchers see it
            column = cases.c[self.settings.cases.id]
            moment = {updated: self._time(cases, updated, referral.at)}
            await connection.execute(cases.update().where(column == case_id).values(moment))


def _backend_name(url: str) -> str:
    """The database a URL names (``mysql`` of ``mysql+asyncmy://``): its strategy is the
    writer's, whatever SQL the source's reads speak."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return ""
