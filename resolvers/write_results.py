"""What every mutation shares: the write as the outbox holds it, the typed refusals, who may
write, and recording a write (resolvers/mutations.py, resolvers/intake.py use them); and the
referrals still in the outbox, which a case shows as PENDING beside those its system holds."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from weakref import WeakKeyDictionary

import strawberry
from aiodataloader import DataLoader
from graphql import GraphQLError

from resolvers.access import CaseAccess, Forbidden, Principal, Role, Unauthenticated
from resolvers.case import Case, load_case_in
from resolvers.context import Context, GraphInfo
from resolvers.loaders import Loaders
from resolvers.referral import Referral
from resolvers.writes import Writes
from sources import CaseRecord, KeyReused, ReferralKind, ReferralRecord, WriteEntry


@strawberry.enum(description="Where a write into agencies' systems stands.")
class WriteState(Enum):
    PENDING = "PENDING"
    DONE = "DONE"
    ABANDONED = "ABANDONED"


@strawberry.enum(description="Why a mutation was refused.")
class WriteErrorCode(Enum):
    CASE_NOT_FOUND = "CASE_NOT_FOUND"
    NOT_YOUR_CASE = "NOT_YOUR_CASE"
    STATUS_NOT_ALLOWED = "STATUS_NOT_ALLOWED"
    AGENCY_CANNOT_RECEIVE = "AGENCY_CANNOT_RECEIVE"
    AGENCY_CANNOT_WRITE = "AGENCY_CANNOT_WRITE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    INVALID_INPUT = "INVALID_INPUT"
    NO_ROUTE = "NO_ROUTE"


@strawberry.type(description="An expected refusal: nothing was written.")
class WriteError:
    code: WriteErrorCode
    message: str
    field: str | None = None


@strawberry.type(description="One write into agencies' systems, as the gateway's outbox holds it.")
class Write:
    id: str = strawberry.field(description="The outbox entry's id (a hash of caller and key).")
    action: str = strawberry.field(description="refer, progress, note or file.")
    state: WriteState
    step: str = strawberry.field(
        description="The step to take next: create, record, status, note, done."
    )
    attempts: int
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    receiving_reference: str | None = strawberry.field(
        description="The receiving agency's id for the case, once its system created it."
    )
    created_at: datetime
    updated_at: datetime
    entry: strawberry.Private[WriteEntry]

    @classmethod
    def of(cls, entry: WriteEntry) -> Write:
        return cls(
            id=entry.key,
            action=entry.action,
            state=WriteState(entry.state),
            step=entry.step,
            attempts=entry.attempts,
            last_error=entry.last_error,
            receiving_reference=entry.their_reference,
            created_at=entry.created_at,
            updated_at=entry.updated_at,
            entry=entry,
        )

    @strawberry.field(description="The case written about, in its own agency's system.")
    async def case(self, info: GraphInfo) -> Case | None:
        if not self.entry.case_id:
            return None  # a complaint being filed: no case until its agency creates it
        return await load_case_in(info, self.entry.source, self.entry.case_id)

    @strawberry.field(description="The case the receiving agency's system created, once it has.")
    async def receiving_case(self, info: GraphInfo) -> Case | None:
        if self.entry.to_source is None or self.entry.their_reference is None:
            return None
        return await load_case_in(info, self.entry.to_source, self.entry.their_reference)


@dataclass
class Refusal(Exception):
    code: WriteErrorCode
    message: str
    field: str | None = None

    def error(self) -> WriteError:
        return WriteError(code=self.code, message=self.message, field=self.field)


def writer_principal(info: GraphInfo) -> tuple[Writes, Principal]:
    """The outbox and the caller, when the caller may write at all; else a GraphQL error."""
    context = info.context
    access = context.case_access
    access.require_role()  # bad credentials: UNAUTHENTICATED, saying why
    principal = access.principal
    if not principal.authenticated:
        raise Unauthenticated("writes need an API key or a token; anonymous callers write nothing")
    if not principal.roles & {Role.AGENCY, Role.INSPECTOR}:
        raise Forbidden(f"{principal.subject} may not write: only agency keys and inspectors do")
    if context.writes is None:
        raise GraphQLError("this gateway has no outbox: writes are not configured")
    return context.writes, principal


def refresh_after_write(info: GraphInfo) -> None:
    """After a write the request reads the agencies' systems afresh: the cases it loaded,
    and the referrals the caller's agency recorded (what it may see), are out of date."""
    context = info.context
    old = context.case_access
    context.fresh_loaders()
    context.access = CaseAccess(
        old.principal, old.federation, old.audit, match_key=old.match_key, refusal=old.refusal
    )


async def submit_write(
    writes: Writes,
    action: str,
    principal: Principal,
    key: str,
    request: dict[str, Any],
    payload: dict[str, Any],
    step: str,
    source: str,
    case_id: str,
    to_source: str | None = None,
) -> WriteEntry:
    if not key.strip() or len(key) > 200:
        raise Refusal(
            WriteErrorCode.INVALID_INPUT,
            "idempotencyKey must be 1 to 200 characters",
            "idempotencyKey",
        )
    try:
        return await writes.submit(
            action, principal, key, request, payload, step, source, case_id, to_source
        )
    except KeyReused:
        raise Refusal(
            WriteErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this idempotencyKey was used for a different request; use a new key",
            "idempotencyKey",
        ) from None


_pending_loaders: WeakKeyDictionary[Loaders, DataLoader[tuple[str, str], list[WriteEntry]]] = (
    WeakKeyDictionary()
)
"""One loader per request's loaders (they are made afresh after a write, and so is this)."""


async def pending_referrals(context: Context, source: str, local_id: str) -> list[WriteEntry]:
    """The referrals of this case the outbox has not yet written into both systems: one
    query of the outbox for every case of a request, and none where the source records no
    referrals through the graph."""
    writes = context.writes
    if writes is None or not writes.can_write(source, "record"):
        return []
    loader = _pending_loaders.get(context.loaders)
    if loader is None:

        async def load(keys: list[tuple[str, str]]) -> list[list[WriteEntry]]:
            found = await writes.pending_referrals(keys)
            return [found.get(key, []) for key in keys]

        loader = DataLoader(load)
        _pending_loaders[context.loaders] = loader
    return await loader.load((source, local_id))


async def with_pending_referrals(
    context: Context, record: CaseRecord, recorded_referrals: Awaitable[Sequence[ReferralRecord]]
) -> list[Referral]:
    """The case's referrals as its system records them, then those still in the outbox as
    PENDING referrals: a referral is visible from the moment it is asked for, and becomes
    the recorded one when the outbox completes it (one recorded in the sender's system but
    not yet marked done in the outbox is shown once, as recorded)."""
    recorded = await recorded_referrals
    shown = [Referral.of(referral) for referral in recorded]
    references = {r.their_reference for r in recorded if r.their_reference is not None}
    for entry in await pending_referrals(context, record.source, record.local_id):
        if entry.their_reference is not None and entry.their_reference in references:
            continue
        pending = ReferralRecord(
            from_source=record.source,
            from_local_id=record.local_id,
            to_agency=str(entry.request.get("toAgency")),
            at=entry.created_at,
            kind=ReferralKind(entry.request.get("kind", ReferralKind.FORWARD.value)),
            status=entry.state,
            their_reference=entry.their_reference,
        )
        shown.append(Referral.of(pending, pending=entry))
    return shown
