"""``auditLog``: the personal-data audit trail, read through the graph by auditors.

Only callers with the ``audit:read`` scope may read it; the entries come from the gateway's own
append-only store (gateway/audit.py), oldest first, paged by entry id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

import strawberry

from resolvers.access import Forbidden
from resolvers.context import GraphInfo
from resolvers.errors import UserInputError
from resolvers.inputs import plain_input
from sources import moment_problem

AUDIT_READ = "audit:read"
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the trail as the store keeps it."""

    id: int
    at: datetime
    action: str  # "reveal" or "deny"
    subject: str
    method: str
    agency: str | None
    roles: tuple[str, ...]
    source: str
    case_id: str
    fields: tuple[str, ...]
    reason: str | None
    purpose: str | None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    first: int
    after: int | None = None
    action: str | None = None
    subject: str | None = None
    source: str | None = None
    case_id: str | None = None
    since: datetime | None = None


@runtime_checkable
class AuditTrail(Protocol):
    """What the request's audit recorder offers for reading (the gateway's store does)."""

    async def entries(self, query: AuditQuery) -> Sequence[AuditRecord]: ...


@strawberry.enum(description="What an audit entry records.")
class AuditAction(StrEnum):
    REVEAL = "reveal"
    DENY = "deny"
    REFER = "refer"  # a referral written through (resolvers/mutations.py): who, which systems
    PROGRESS = "progress"  # a progress report written through
    NOTE = "note"  # a note added through the graph
    FILE = "file"  # a new complaint filed through the graph (resolvers/intake.py)


@strawberry.type(description="One reveal of personal data, or one access the caller was denied.")
class AuditEntry:
    id: str = strawberry.field(description="Increasing; pass as `after` to read on.")
    at: datetime
    action: AuditAction
    subject: str = strawberry.field(description="Who: an API key id (key:…) or a token's sub.")
    method: str = strawberry.field(description="api_key, oidc or anonymous.")
    agency: str | None
    roles: list[str]
    source: str = strawberry.field(description="The source system holding the case.")
    case_id: str = strawberry.field(description="The case's id in that source.")
    fields: list[str] = strawberry.field(description="The fields revealed (GraphQL names).")
    reason: str | None = strawberry.field(description="Why access was denied.")
    purpose: str | None = strawberry.field(
        description="The purpose the client stated in its X-Purpose header."
    )

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEntry:
        return cls(
            id=str(record.id),
            at=record.at,
            action=AuditAction(record.action),
            subject=record.subject,
            method=record.method,
            agency=record.agency,
            roles=list(record.roles),
            source=record.source,
            case_id=record.case_id,
            fields=list(record.fields),
            reason=record.reason,
            purpose=record.purpose,
        )


@plain_input
@strawberry.input(description="Which audit entries to read; every condition must hold.")
class AuditFilter:
    action: AuditAction | None = None
    subject: str | None = None
    source: str | None = None
    case_id: str | None = None
    since: datetime | None = None


@strawberry.type
class AuditLogPage:
    entries: list[AuditEntry]
    end_cursor: str | None = strawberry.field(description="The last entry's id: `after` next.")
    has_next_page: bool


async def audit_log(
    info: GraphInfo, first: int, after: str | None, filter: AuditFilter | None
) -> AuditLogPage:
    access = info.context.case_access
    if not access.principal.has_scope(AUDIT_READ):
        raise Forbidden("auditLog needs the audit:read scope")
    if not 0 <= first <= MAX_PAGE:
        raise UserInputError(f"first must be between 0 and {MAX_PAGE}")
    try:
        position = int(after) if after is not None else None
    except ValueError:
        raise UserInputError("after must be an audit entry id") from None
    since = filter.since if filter is not None else None
    if since is not None:  # without an offset: UTC, as the store keeps its times
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        problem = moment_problem("filter.since", aware)
        if problem is not None:
            raise UserInputError(problem)
    trail = access.audit
    if not isinstance(trail, AuditTrail):
        return AuditLogPage(entries=[], end_cursor=None, has_next_page=False)
    wanted = filter or AuditFilter()
    records = await trail.entries(
        AuditQuery(
            first=first + 1,
            after=position,
            action=wanted.action.value if wanted.action is not None else None,
            subject=wanted.subject,
            source=wanted.source,
            case_id=wanted.case_id,
            since=wanted.since,
        )
    )
    page = [AuditEntry.of(r) for r in records[:first]]
    return AuditLogPage(
        entries=page,
        end_cursor=page[-1].id if page else after,
        has_next_page=len(records) > first,
    )
