"""The outbox: every write the graph makes into agencies' systems, recorded before it is sent.

A referral spans two systems (the receiver creates a case, the sender records the hand-over
with the receiver's reference) and no transaction spans both. So each write is a row in the
gateway's own store (SQLite by default, PostgreSQL when the URL says so) before anything is
sent; each step is committed as attempted before it goes out and as done after it answered.
A step that fails because the agency cannot be reached is retried with exponential backoff by
a background worker, also after a restart, until it succeeds or ``max_attempts`` is spent;
a step the agency refuses is abandoned at once. Either way the row says why, and the graph
shows it (``Query.pendingWrites``, each mutation's ``write``).

Nothing twice: the row's key is the caller's idempotency key (per caller), so the same
mutation sent again, or concurrently, finds the same row; and each step is sent to the agency
with a key derived from it, which the agency's system deduplicates (gateway/../sources/_writes.py).
A gateway killed between sending a step and recording its answer sends it again on restart,
and the agency answers what it did the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditLog, entry_row
from gateway.routing import RoutingSettings
from gateway.store_engine import store_engine
from resolvers.access import Principal
from resolvers.writes import Route
from sources import CanonicalStatus, Channel, ReferralKind, Source
from sources._changes import ChangeKind
from sources._errors import CircuitOpen, SourceError, SourceTimeout, SourceUnavailable
from sources._settings import SourceSettings, Strict
from sources._writes import (
    CaseWriter,
    KeyReused,
    NewCase,
    OutgoingReferral,
    WriteEntry,
    vocabulary_problem,
    writer_for,
)

log = logging.getLogger("complaint_graph.outbox")

Publish = Callable[[str, list[str], ChangeKind | None], Awaitable[int]]

PENDING, DONE, ABANDONED = "PENDING", "DONE", "ABANDONED"


class WriteSettings(Strict):
    """``writes:``: where the outbox is kept and how failed steps are retried."""

    store: str | None = Field(
        default=None,
        description="SQLAlchemy async URL of the outbox; absent: the key store's database.",
    )
    retry_base_seconds: float = Field(default=2.0, gt=0, description="First retry's delay.")
    retry_max_seconds: float = Field(default=600.0, gt=0, description="Longest retry delay.")
    max_attempts: int = Field(default=50, ge=1, description="Attempts before a step is abandoned.")
    poll_seconds: float = Field(
        default=1.0, gt=0, description="How often due retries are looked for."
    )
    routing: RoutingSettings = Field(
        default_factory=RoutingSettings,
        description="Which agency a new complaint (fileComplaint, Open311 POST) goes to.",
    )
    anonymous_filing: bool = Field(
        default=False,
        description=(
            "Callers without credentials may file complaints (a public intake form); off: "
            "only inspectors, agency keys and keys with the complaints:file scope file."
        ),
    )
    test_fault_after_send: Literal["create", "record", "status", "note"] | None = Field(
        default=None,
        description=(
            "Tests only: the process exits at once after this step was sent and answered, "
            "before the answer is recorded (how the crash-and-restart tests kill it)."
        ),
    )


_metadata = MetaData()
_entries = Table(
    "complaint_graph_outbox",
    _metadata,
    Column("key", String(64), primary_key=True),  # sha256 of caller and idempotency key
    Column("action", String(20), nullable=False),  # refer | progress | note | file
    Column("subject", String(200), nullable=False),
    Column("request", Text, nullable=False),  # JSON: what was asked, to compare a resend
    Column("payload", Text, nullable=False),  # JSON: what each step sends
    Column("state", String(20), nullable=False),
    Column("step", String(20), nullable=False),
    Column("source", String(100), nullable=False),
    Column("case_id", String(200), nullable=False),  # a filing's: "" until created
    Column("to_source", String(100)),
    Column("their_reference", String(200)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("last_error", Text),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _entry(values: RowMapping) -> WriteEntry:
    return WriteEntry(
        key=values["key"],
        action=values["action"],
        subject=values["subject"],
        state=values["state"],
        step=values["step"],
        source=values["source"],
        case_id=values["case_id"],
        to_source=values["to_source"],
        their_reference=values["their_reference"],
        attempts=int(values["attempts"]),
        last_error=values["last_error"],
        created_at=datetime.fromisoformat(values["created_at"]),
        updated_at=datetime.fromisoformat(values["updated_at"]),
        request=json.loads(str(values["request"])),
    )


class Outbox:
    """The store, the writers of every source that has ``writes:``, and the retry worker."""

    def __init__(
        self,
        settings: WriteSettings,
        store_url: str,
        sources: tuple[SourceSettings, ...],
        audit: AuditLog | None = None,
        backends: Mapping[str, Source] | None = None,
    ) -> None:
        self.publish: Publish | None = None
        """Publishes the cases a finished write changed (the event broker's
        ``publish_changed``), so that subscribers hear of them at once, not at the next poll."""
        self.settings = settings
        self.url = settings.store or store_url
        self.writers: dict[str, CaseWriter] = {}
        for source in sources:
            writer = writer_for(source, (backends or {}).get(source.id))  # guarded, if given
            if writer is not None:
                self.writers[source.id] = writer
        self.audit = audit
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def can_write(self, source: str, step: str | None = None) -> bool:
        writer = self.writers.get(source)
        return writer is not None and (step is None or writer.takes(step))

    def personal_fields(self, source: str) -> tuple[str, ...]:
        writer = self.writers.get(source)
        writes = getattr(writer.settings, "writes", None) if writer is not None else None
        return tuple(getattr(writes, "personal_data", ()) or ())

    @property
    def anonymous_filing(self) -> bool:
        return self.settings.anonymous_filing

    def route(self, category: str, province: str | None) -> Route | None:
        return self.settings.routing.route(category, province)

    def problem(self, source: str, **values: Any) -> str | None:
        """Why ``source`` could not be written these canonical values (sources/_writes.py)."""
        writer = self.writers.get(source)
        if writer is None:
            return f"source '{source}' has no writes: section"
        return vocabulary_problem(writer.settings, **values)

    async def _ready(self) -> AsyncEngine:
        async with self._opening:
            if self._engine is None:
                engine = store_engine(self.url)
                try:
                    async with engine.begin() as connection:
                        await connection.run_sync(_metadata.create_all)
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
            return self._engine

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """The retry worker: it also finishes what a stopped or killed gateway left pending.
        A gateway no source of which takes writes starts none, and never opens the store
        (a key store on a read-only mount stays untouched)."""
        if self._worker is None and self.writers:
            self._worker = asyncio.create_task(self._work(), name="outbox")

    async def stop(self) -> None:
        if self._worker is not None:
            # Not cancelled mid-round: a round cut inside a store or agency call would leave
            # its connection unclosed. The round in progress ends (each step is bounded by
            # its source's timeout) and the worker stops before the next.
            self._stopping = True
            self._wake.set()
            await self._worker
            self._worker = None
        for writer in self.writers.values():
            await writer.close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _work(self) -> None:
        while not self._stopping:
            try:
                await self.run_due()
            except Exception:  # the store down: try again at the next round
                log.exception("outbox round failed")
            if self._stopping:
                break
            # asyncio.timeout, not wait_for: wait_for makes a task of every wait (Python 3.11),
            # which a leak check can catch pending between two rounds.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def run_due(self) -> None:
        engine = await self._ready()
        statement = (
            select(_entries.c.key)
            .where(_entries.c.state == PENDING, _entries.c.next_at <= time.time())
            .order_by(_entries.c.next_at)
            .limit(100)
        )
        async with engine.connect() as connection:
            keys = [row[0] for row in (await connection.execute(statement)).all()]
        for key in keys:
            try:
                await self.advance(key)
            except Exception:  # the store failing mid-write: this row waits, the others go on
                log.exception("outbox entry %s could not be advanced", key)

    # -- submitting ---------------------------------------------------------------------------

    @staticmethod
    def row_key(subject: str, idempotency_key: str) -> str:
        return hashlib.sha256(f"{subject}\x1f{idempotency_key}".encode()).hexdigest()

    async def submit(
        self,
        action: str,
        principal: Principal,
        idempotency_key: str,
        request: Mapping[str, Any],
        payload: Mapping[str, Any],
        first_step: str,
        source: str,
        case_id: str,
        to_source: str | None = None,
    ) -> WriteEntry:
        """Record the write (or find the one this key recorded) and take it as far as it goes
        now; :class:`KeyReused` when the key was used for another request."""
        key = self.row_key(principal.subject, idempotency_key)
        engine = await self._ready()
        now = _now()
        row = {
            "key": key,
            "action": action,
            "subject": principal.subject,
            "request": json.dumps(request, sort_keys=True),
            "payload": json.dumps(payload, sort_keys=True),
            "state": PENDING,
            "step": first_step,
            "source": source,
            "case_id": case_id,
            "to_source": to_source,
            "attempts": 0,
            "next_at": time.time(),
            "created_at": now,
            "updated_at": now,
        }
        created = True
        try:
            async with engine.begin() as connection:
                await connection.execute(_entries.insert().values(row))
        except IntegrityError:
            created = False
        entry = await self.get(key)
        assert entry is not None
        if dict(entry.request) != json.loads(json.dumps(request)) or entry.action != action:
            raise KeyReused(idempotency_key)
        if created:
            await self._audit(principal, entry, "submitted")
        return await self.advance(key, principal, fresh=created)

    async def get(self, key: str) -> WriteEntry | None:
        engine = await self._ready()
        async with engine.connect() as connection:
            found = (
                await connection.execute(select(_entries).where(_entries.c.key == key))
            ).first()
        return None if found is None else _entry(found._mapping)

    async def pending_count(self, source: str) -> int:
        if not self.writers:
            return 0  # nothing can have been written: the store is never opened
        engine = await self._ready()
        statement = (
            select(func.count())
            .select_from(_entries)
            .where(
                _entries.c.state == PENDING,
                or_(_entries.c.source == source, _entries.c.to_source == source),
            )
        )
        async with engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def entries(
        self, state: str | None = None, subject: str | None = None, first: int = 100
    ) -> list[WriteEntry]:
        if not self.writers:
            return []
        engine = await self._ready()
        statement = select(_entries).order_by(_entries.c.created_at).limit(first)
        if state is not None:
            statement = statement.where(_entries.c.state == state)
        if subject is not None:
            statement = statement.where(_entries.c.subject == subject)
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_entry(row._mapping) for row in rows]

    async def pending_referrals(
        self, cases: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[WriteEntry]]:
        wanted = set(cases)
        if not self.writers or not wanted:
            return {}
        engine = await self._ready()
        statement = (
            select(_entries)
            .where(
                _entries.c.state.in_((PENDING, ABANDONED)),
                _entries.c.action == "refer",
                _entries.c.case_id.in_(sorted({case_id for _, case_id in wanted})),
            )
            .order_by(_entries.c.created_at)
        )
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        found: dict[tuple[str, str], list[WriteEntry]] = {}
        for row in rows:
            entry = _entry(row._mapping)
            if (entry.source, entry.case_id) in wanted:
                found.setdefault((entry.source, entry.case_id), []).append(entry)
        return found

    # -- running ------------------------------------------------------------------------------

    async def advance(
        self, key: str, principal: Principal | None = None, fresh: bool = False
    ) -> WriteEntry:
        """Take the write through its remaining steps, one at a time, while they succeed.
        One task per key at a time in this process; every step is idempotent at the agency,
        so another process working the same row still makes nothing twice.

        ``fresh``: the request that has just recorded the write, for its first attempt. The
        worker may find the new row due and attempt it while that request waits for the
        row's lock; the request then answers with that attempt instead of making a second
        one at once (a resend of the request, not fresh, is an attempt of its own)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock, self._claim(key) as mine:
            entry = await self.get(key)
            assert entry is not None
            if not mine:
                return entry  # another replica is working it: it stays as that one leaves it
            if fresh and entry.attempts > 0:
                return entry  # the worker made the first attempt meanwhile
            while entry.state == PENDING and entry.attempts < self.settings.max_attempts:
                entry = await self._step(key, entry, principal)
                if entry.state == PENDING and entry.last_error is not None:
                    break  # waits for its retry
            if entry.state == PENDING and entry.attempts >= self.settings.max_attempts:
                entry = await self._update(
                    key,
                    state=ABANDONED,
                    last_error=f"abandoned after {entry.attempts} attempts: {entry.last_error}",
                )
                await self._audit(principal, entry, "abandoned")
        return entry

    @contextlib.asynccontextmanager
    async def _claim(self, key: str) -> AsyncIterator[bool]:
        """Whether this gateway may work the row now. Replicas sharing an outbox in
        PostgreSQL each take a session advisory lock on the row's key: one works it, the
        others leave it alone, and a replica that dies releases it with its connection (no
        lease to wait out after a crash). A SQLite outbox is one host's: the in-process lock
        is enough."""
        engine = await self._ready()
        if engine.dialect.name != "postgresql":
            yield True
            return
        number = int(key[:15], 16)  # 60 bits of the sha256: a bigint lock key
        async with engine.connect() as connection:
            taken = bool(
                (
                    await connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": number}
                    )
                ).scalar()
            )
            try:
                yield taken
            finally:
                if taken:
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": number}
                    )

    async def _update(self, key: str, **values: Any) -> WriteEntry:
        engine = await self._ready()
        async with engine.begin() as connection:
            await connection.execute(
                _entries.update().where(_entries.c.key == key).values(updated_at=_now(), **values)
            )
        entry = await self.get(key)
        assert entry is not None
        return entry

    async def _step(self, key: str, entry: WriteEntry, principal: Principal | None) -> WriteEntry:
        payload = await self._payload(key)
        # Recorded as attempted before it is sent: a crash now leaves a step to send again.
        entry = await self._update(key, attempts=entry.attempts + 1)
        try:
            answer = await self._send(entry, payload)
        except CircuitOpen as exc:
            # Nothing was sent, so not an attempt (a circuit open for longer than the retries'
            # backoff would otherwise use them all up): tried again at the circuit's next trial.
            delay = max(exc.retry_after, self.settings.retry_base_seconds)
            self._wake_later(delay)
            return await self._update(
                key,
                attempts=entry.attempts - 1,
                last_error=str(exc),
                next_at=time.time() + delay,
            )
        except (SourceUnavailable, SourceTimeout) as exc:
            delay = min(
                self.settings.retry_base_seconds * 2 ** (entry.attempts - 1),
                self.settings.retry_max_seconds,
            )
            self._wake_later(delay)
            return await self._update(key, last_error=str(exc), next_at=time.time() + delay)
        except SourceError as exc:
            entry = await self._update(key, state=ABANDONED, last_error=str(exc))
            await self._audit(principal, entry, "abandoned")
            return entry
        if self.settings.test_fault_after_send == entry.step:
            os._exit(70)  # the crash tests: the answer is never recorded
        return await self._after(key, entry, answer, principal)

    async def _payload(self, key: str) -> dict[str, Any]:
        engine = await self._ready()
        async with engine.connect() as connection:
            found = (
                await connection.execute(select(_entries.c.payload).where(_entries.c.key == key))
            ).scalar_one()
        payload: dict[str, Any] = json.loads(found)
        return payload

    def _wake_later(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _writer(self, source: str) -> CaseWriter:
        writer = self.writers.get(source)
        if writer is None:
            raise SourceError(source, "its configuration has no writes: section")
        return writer

    async def _send(self, entry: WriteEntry, payload: dict[str, Any]) -> str | None:
        agency_key = f"cg-{entry.key[:40]}-{entry.step}"
        if entry.step == "create":
            assert entry.to_source is not None
            case = payload["case"]
            new_case = NewCase(
                **{
                    **case,
                    "received_at": datetime.fromisoformat(case["received_at"]),
                    "channel": Channel(case.get("channel") or Channel.REFERRAL),
                    # A filing has no sender's case: its reference is the outbox row's, so a
                    # receiver that deduplicates by the sender's reference tells filings apart.
                    "sender_reference": case["sender_reference"] or f"CG-{entry.key[:16]}",
                }
            )
            return await self._writer(entry.to_source).create_case(new_case, agency_key)
        if entry.step == "record":
            assert entry.their_reference is not None
            referral = OutgoingReferral(
                to_agency=payload["to_agency"],
                kind=ReferralKind(payload["kind"]),
                their_reference=entry.their_reference,
                at=datetime.fromisoformat(payload["at"]),
                note=payload.get("note"),
            )
            await self._writer(entry.source).record_referral(entry.case_id, referral, agency_key)
            return None
        if entry.step == "note":
            await self._writer(entry.source).add_note(
                entry.case_id, payload["note"], datetime.fromisoformat(payload["at"]), agency_key
            )
            return None
        if entry.step == "status":
            await self._writer(entry.source).set_status(
                entry.case_id,
                CanonicalStatus(payload["status"]),
                payload.get("note"),
                datetime.fromisoformat(payload["at"]),
                agency_key,
            )
            return None
        raise AssertionError(f"unknown outbox step {entry.step!r}")

    async def _after(
        self, key: str, entry: WriteEntry, answer: str | None, principal: Principal | None
    ) -> WriteEntry:
        if entry.step == "create" and entry.action == "file":
            # A filing is done once its agency created the case: the case is the write's own.
            entry = await self._update(
                key,
                state=DONE,
                step="done",
                case_id=answer,
                their_reference=answer,
                last_error=None,
                payload=json.dumps(_without_complainant(await self._payload(key)), sort_keys=True),
            )
            await self._audit(principal, entry, "done")
            await self._announce(entry)
            return entry
        if entry.step == "create":
            # The complainant's data was for the receiver: once it has it, the outbox keeps
            # none of it (the request keeps only which fields were sent, for the audit log).
            payload = await self._payload(key)
            if payload["case"].get("complainant"):
                payload["case"]["complainant"] = None
            return await self._update(
                key,
                step="record",
                their_reference=answer,
                last_error=None,
                next_at=time.time(),
                payload=json.dumps(payload, sort_keys=True),
            )
        entry = await self._update(key, state=DONE, step="done", last_error=None)
        await self._audit(principal, entry, "done")
        await self._announce(entry)
        return entry

    async def _announce(self, entry: WriteEntry) -> None:
        """The events of a finished write: the receiver's new case CREATED and the sender's
        REFERRED, or the case's STATUS_CHANGED. A bus that cannot take them now loses
        nothing: the watcher publishes the change when it next polls."""
        if self.publish is None:
            return
        kind = ChangeKind.NOTE_ADDED if entry.action == "note" else ChangeKind.STATUS_CHANGED
        changes: list[tuple[str, str, ChangeKind]] = [(entry.source, entry.case_id, kind)]
        if entry.action == "file":
            changes = [(entry.source, entry.case_id, ChangeKind.CREATED)]
        if entry.action == "refer" and entry.to_source and entry.their_reference:
            changes = [
                (entry.to_source, entry.their_reference, ChangeKind.CREATED),
                (entry.source, entry.case_id, ChangeKind.REFERRED),
            ]
        for source, local_id, kind in changes:
            try:
                await self.publish(source, [local_id], kind)
            except Exception:
                log.warning("events of write %s not published now", entry.key, exc_info=True)

    async def _audit(self, principal: Principal | None, entry: WriteEntry, outcome: str) -> None:
        """Who (the caller; the worker finishes in their name), what, which systems, outcome."""
        if self.audit is None:
            return
        who = principal or Principal(entry.subject, method="outbox")
        systems = list(dict.fromkeys(s for s in (entry.to_source, entry.source) if s))
        reason = f"{outcome}: {entry.state}"
        if entry.their_reference is not None:
            reason += f", receiver's reference {entry.their_reference}"
        if entry.last_error is not None:
            reason += f" ({entry.last_error})"
        personal = ",".join(entry.request.get("personalData") or ()) or "none"
        fields = [
            f"systems={','.join(systems)}",
            f"personal_data={personal}",
            *sorted(entry.request),
        ]
        row = entry_row(entry.action, who, entry.source, entry.case_id, fields, reason=reason)
        try:
            await self.audit.append_rows([row])
        except Exception:
            log.exception("the audit log could not record write %s", entry.key)


def _without_complainant(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload once delivered: the complainant's data was for the receiver only."""
    case = payload.get("case")
    if isinstance(case, dict) and case.get("complainant"):
        case["complainant"] = None
    return payload
