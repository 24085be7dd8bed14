"""What every resolver of one request can reach: the sources, the loaders, the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from graphql import GraphQLError
from strawberry.types import Info

from resolvers.access import ANONYMOUS, AccessAudit, CaseAccess, Principal
from resolvers.directory import Directory
from resolvers.limits import QueryLimits
from resolvers.loaders import Loaders
from resolvers.writes import Writes
from sources import CaseFilter, Federation
from sources._changes import CaseEvent


@dataclass
class Limits:
    max_page_size: int = 500
    default_page_size: int = 20
    query: QueryLimits = field(default_factory=QueryLimits)  # depth, cost, timeout: limits.py
    dataloader_batching: bool = True  # False: the benchmark's N+1 baseline (Loaders)


MAX_REPORTED = 100
"""Federated reads one request's ``extensions.federation`` lists at most."""

Clock = Callable[[], datetime]
"""Where a request reads "now": the moment ``overdue``, ``isOverdue`` and ages are measured at."""


def system_clock() -> datetime:
    """The real time, in UTC: every gateway's clock unless its configuration fixes one."""
    return datetime.now(UTC)


class EventStream(Protocol):
    """Where subscriptions get case events; the gateway provides it, the graph only reads it."""

    def subscribe(
        self, where: CaseFilter, after: str | None, referred_to: frozenset[str] | None = None
    ) -> AsyncIterator[CaseEvent]: ...


@dataclass
class Context:
    """Made fresh per request, so loaders never share a cache across callers."""

    federation: Federation
    directory: Directory
    limits: Limits
    loaders: Loaders
    events: EventStream | None = None
    clock: Clock = system_clock
    now: datetime = field(init=False)
    partial_errors: list[GraphQLError] = field(default_factory=list)
    access: CaseAccess | None = None  # who asks and what they may see (resolvers/access.py)
    auth_error: str | None = None  # why the credentials sent were refused
    connection_params: dict[str, object] | None = None  # a WebSocket's connection_init payload
    warnings: list[dict[str, str]] = field(default_factory=list)  # -> extensions.warnings
    federation_report: list[dict[str, object]] = field(default_factory=list)
    """Which sources each federated read asked: -> ``extensions.federation`` when the request's
    own ``extensions`` ask for it (``{"federation": true}``)."""
    writes: Writes | None = None  # the outbox mutations write through (resolvers/writes.py)

    def __post_init__(self) -> None:
        self.now = self.clock()  # one moment for the whole request: its figures agree

    @classmethod
    def for_request(
        cls,
        federation: Federation,
        directory: Directory,
        limits: Limits,
        events: EventStream | None = None,
        principal: Principal | None = ANONYMOUS,
        clock: Clock = system_clock,
    ) -> Context:
        """``principal=None`` when the caller authenticates the context next (the gateway's
        view always does): no access decisions are made twice."""
        loaders = Loaders(federation, batching=limits.dataloader_batching)
        context = cls(federation, directory, limits, loaders, events, clock)
        if principal is not None:
            context.authenticate(principal)
        return context

    def authenticate(
        self, principal: Principal, audit: AccessAudit | None = None, match_key: str | None = None
    ) -> None:
        """Who the request runs as; every case read from now on is checked against it."""
        self.access = (
            CaseAccess(principal, self.federation, match_key=match_key)
            if audit is None
            else CaseAccess(principal, self.federation, audit, match_key=match_key)
        )

    @property
    def authenticated(self) -> bool:
        """The caller proved who it is (a key or a token): what key-only introspection and
        trusted documents for anonymous callers ask (resolvers/limits.py)."""
        return self.access is not None and self.access.principal.authenticated

    @property
    def case_access(self) -> CaseAccess:
        """The request's access decisions (a context made without a principal sees nothing)."""
        if self.access is None:
            self.access = CaseAccess(ANONYMOUS, self.federation)
        return self.access

    def report_plan(
        self,
        path: str,
        operation: str,
        asked: Sequence[str],
        skipped: int,
        round_trips: int | None = None,
    ) -> None:
        """Note one federated read for ``extensions.federation`` (resolvers/errors.py);
        ``round_trips`` where known (a cached count makes none). Noted whether or not the
        request asks (resolvers do not see its ``extensions``), so only the first
        :data:`MAX_REPORTED` are kept: a CSV export runs thousands of pages in one context."""
        if len(self.federation_report) >= MAX_REPORTED:
            return
        report: dict[str, object] = {
            "path": path,
            "operation": operation,
            "asked": list(asked),
            "skipped": skipped,
        }
        if round_trips is not None:
            report["roundTrips"] = round_trips
        self.federation_report.append(report)

    def release(self) -> None:
        """The request is answered: drop what its loaders hold (see :meth:`Loaders.clear`)."""
        self.loaders.clear()

    def fresh_loaders(self) -> None:
        """New loaders and clock: each subscription event must see the sources as they are now."""
        self.loaders.clear()
        self.loaders = Loaders(self.federation, batching=self.limits.dataloader_batching)
        self.now = self.clock()
        if self.access is not None:
            self.access.forget_seen()  # visibility by id is decided afresh, like the data


GraphInfo = Info[Context, None]
"""What resolvers receive as ``info``: typed, so ``info.context`` is a :class:`Context`."""
