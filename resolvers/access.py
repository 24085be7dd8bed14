"""Who is asking, and which cases they may see: one place that every entry point goes through.

A request's :class:`Principal` (from an API key, an OIDC token, or the configured anonymous role)
becomes a restriction on the :class:`~sources.CaseFilter` that every source compiles into its own
query (:func:`CaseAccess.restrict`), so counts, pages and events are right for the caller. Loads
by id (``node``, ``case``, ``counterpart``, ``origin``, ``relatedCases``, the Open311 endpoint)
check each case with :meth:`CaseAccess.visible` instead, batched through the request's loaders.
Both decide with one predicate, :meth:`sources.AgencyAccess.allows`, over the same facts, so a
case appears in a search exactly when it opens by id.

Roles: ``inspector`` and ``analyst`` see every case (an analyst never personal data: that is a
matter of scopes, not rows); ``agency`` sees what its agency owns, what was referred to it, and
what its own systems referred elsewhere; a principal with no role sees nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from resolvers.loaders import Loaders
from sources import AgencyAccess, CaseFilter, CaseRecord, Federation


class Role(StrEnum):
    INSPECTOR = "inspector"
    AGENCY = "agency"
    ANALYST = "analyst"


ALL_CASES = frozenset({Role.INSPECTOR, Role.ANALYST})
"""Roles that see every case; ``agency`` sees a subset, no role sees nothing."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, however it proved who it is.

    ``subject`` names it in logs and the audit trail (an API key id, a token's ``sub``).
    ``scopes`` are fine-grained permissions beyond the role (``pii:read`` for personal data);
    a role never implies a scope.
    """

    subject: str
    roles: frozenset[Role] = frozenset()
    agency: str | None = None
    scopes: frozenset[str] = frozenset()
    method: str = "anonymous"  # "api_key", "oidc" or "anonymous"

    @property
    def authenticated(self) -> bool:
        return self.method != "anonymous"

    @property
    def sees_every_case(self) -> bool:
        return bool(self.roles & ALL_CASES)

    @property
    def agency_scope(self) -> str | None:
        """The agency whose view applies, when the principal sees only part of the cases."""
        if self.sees_every_case or Role.AGENCY not in self.roles:
            return None
        return self.agency

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal("anonymous")


class AccessError(Exception):
    """A request the caller may not make; ``code`` is its GraphQL ``extensions.code``."""

    code = "FORBIDDEN"


class Unauthenticated(AccessError):
    code = "UNAUTHENTICATED"


class Forbidden(AccessError):
    code = "FORBIDDEN"


class AuditUnavailable(AccessError):
    """The audit log cannot record a reveal (or a denial) now, so it is refused: nothing is
    shown unaudited. The message names the store's problem; the rest of the response stands."""

    code = "AUDIT_UNAVAILABLE"


class AccessAudit(Protocol):
    """Told of every case withheld from a caller and every reveal of personal data: the
    gateway's append-only audit log (gateway/audit.py) plugs in here. Both are awaited before
    the answer is given, so nothing is revealed that was not recorded."""

    async def denied(
        self, principal: Principal, source: str, local_id: str, reason: str
    ) -> None: ...

    async def revealed(
        self, principal: Principal, source: str, local_id: str, fields: Sequence[str]
    ) -> None: ...


class _NoAudit:
    async def denied(self, principal: Principal, source: str, local_id: str, reason: str) -> None:
        return None

    async def revealed(
        self, principal: Principal, source: str, local_id: str, fields: Sequence[str]
    ) -> None:
        return None


PII_READ = "pii:read"
"""The scope that reveals complainants' personal data on the cases a caller may see."""


@dataclass
class CaseAccess:
    """One request's access decisions; results are cached for the request's lifetime."""

    principal: Principal
    federation: Federation
    audit: AccessAudit = field(default_factory=_NoAudit)
    match_key: str | None = None
    """The HMAC key complainants are matched by across agencies (``auth.personal_data``)."""
    _referred_by: frozenset[tuple[str, str]] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _known: set[tuple[str, str]] = field(default_factory=set)
    refusal: str | None = None
    """Why the credentials sent were refused: then nothing may be read, whatever anonymous may."""

    def require_role(self) -> None:
        """Raise unless the caller may read cases at all."""
        if self.refusal is not None:
            raise Unauthenticated(self.refusal)
        if not self.principal.roles:
            if self.principal.authenticated:
                raise Forbidden(f"{self.principal.subject} has no role that may read cases")
            raise Unauthenticated(
                "authentication required: send Authorization: Bearer <API key or token>"
            )
        principal = self.principal
        if not principal.sees_every_case and principal.agency_scope is None:
            raise Forbidden("an agency principal without an agency sees nothing")

    async def restrict(self, where: CaseFilter) -> CaseFilter:
        """``where`` narrowed to what the caller may see: THE function every search, count and
        subscription goes through."""
        self.require_role()
        agency = self.principal.agency_scope
        if agency is None:
            return where
        return replace(where, access=AgencyAccess(agency, await self.referred_by_agency()))

    async def referred_by_agency(self) -> frozenset[tuple[str, str]]:
        """(source, local id) of every case the caller's agency's own systems referred on: one
        round trip per such system that can list its referrals, once per request."""
        async with self._lock:
            if self._referred_by is None:
                self._referred_by = await self._gather_referred_by()
            return self._referred_by

    async def _gather_referred_by(self) -> frozenset[tuple[str, str]]:
        agency = self.principal.agency_scope
        return frozenset() if agency is None else await self.federation.referred_by(agency)

    def forget_seen(self) -> None:
        """Drop what earlier checks found visible (a long-lived WebSocket context, per event)."""
        self._known.clear()

    def mark_visible(self, records: Sequence[CaseRecord]) -> None:
        """Cases a restricted search returned: known visible, no further check needed. (A
        caller without an agency scope sees every case: nothing to remember.)"""
        if self.principal.agency_scope is not None:
            self._known.update((r.source, r.local_id) for r in records)

    async def visible(self, record: CaseRecord, loaders: Loaders) -> bool:
        """Whether the caller may see this one case (loaded by id, by ``node``, followed as a
        referral's ``counterpart``, asked for by Open311).

        THE same rule as every search: :meth:`sources.AgencyAccess.allows` with the same
        inputs, the case's referrals as its own source records them and what the caller's
        agency's own systems list as referred on (:meth:`referred_by_agency`, the list the
        search is restricted with). So a case opens by id exactly when a search lists it.
        """
        self.require_role()
        agency = self.principal.agency_scope
        key = (record.source, record.local_id)
        if agency is None or key in self._known:
            return True
        owner = self.federation.sources[record.source].agency.code
        referred_to: list[str] = []
        referred_by: frozenset[tuple[str, str]] = frozenset()
        if owner != agency:  # an agency's own case needs neither list
            referrals, referred_by = await asyncio.gather(
                loaders.referrals(record.source).load(record.local_id),
                self.referred_by_agency(),
            )
            referred_to = [r.to_agency for r in referrals if isinstance(r.to_agency, str)]
        if AgencyAccess(agency, referred_by).allows(owner, record, referred_to):
            self._known.add(key)
            return True
        await self.audit.denied(self.principal, record.source, record.local_id, "not this agency's")
        return False


class AnonymousGate(SchemaExtension):
    """Callers without a role may run introspection and ``__typename``, nothing else: the
    operation is refused before it runs, with ``UNAUTHENTICATED`` (or why credentials failed)."""

    def on_execute(self) -> Iterator[None]:
        refusal = self._refusal()
        if refusal is not None:
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(str(refusal), extensions={"code": refusal.code})]
            )
        yield

    def _refusal(self) -> AccessError | None:
        context = self.execution_context.context
        problem: str | None = getattr(context, "auth_error", None)
        if problem is not None:
            return Unauthenticated(problem)
        access: CaseAccess | None = getattr(context, "access", None)
        document = self.execution_context.graphql_document
        if access is None or access.principal.roles or document is None:
            return None
        if _introspection_only(document, self.execution_context.operation_name):
            return None
        if access.principal.authenticated:
            return Forbidden(
                f"{access.principal.subject} has no role; only introspection is allowed"
            )
        return Unauthenticated(
            "authentication required: send Authorization: Bearer <API key or token>; "
            "without it only introspection is allowed"
        )


_INTROSPECTION = frozenset({"__schema", "__type", "__typename"})


def _introspection_only(document: DocumentNode, operation_name: str | None) -> bool:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name is not None and o.name.value == operation_name)
    ]
    return all(
        name in _INTROSPECTION
        for operation in chosen
        for name in _root_fields(operation.selection_set, fragments, set())
    )


def _root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[str]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            seen.add(name)
            yield from _root_fields(fragment.selection_set, fragments, seen)
