"""Agencies, the source systems they run, and the unified categories."""

from __future__ import annotations

import functools
from datetime import datetime

import strawberry

from resolvers.context import GraphInfo
from resolvers.directory import CategoryInfo
from sources import AgencyInfo, Source, SourceHealth


@strawberry.type(description="A unified complaint category; agencies' own codes map onto these.")
class Category:
    code: str
    name_th: str
    name_en: str

    @classmethod
    def of(cls, info: CategoryInfo) -> Category:
        """The one ``Category`` of ``info``. Reference data from the config: the object
        holds nothing of a request and nothing changes it, so every case of every request is
        answered with the same one (a page asks for a hundred); a config reload makes new
        infos, hence new objects."""
        return shared_category(info)


_MAX_SHARED = 4096
"""Category and agency objects kept (a config reload adds its own entries)."""


@functools.lru_cache(maxsize=_MAX_SHARED)
def shared_category(info: CategoryInfo) -> Category:
    """:meth:`Category.of`, for callers that answer a field per case (no method call)."""
    return Category(code=info.code, name_th=info.name_th, name_en=info.name_en)


@strawberry.type(description="What the gateway last saw of a source system.")
class SourceHealthInfo:
    status: str = strawberry.field(description="UP, DOWN, or UNKNOWN before the first call.")
    circuit: str = strawberry.field(description="CLOSED, OPEN (calls refused) or HALF_OPEN.")
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    last_latency_ms: float | None

    @classmethod
    def of(cls, health: SourceHealth) -> SourceHealthInfo:
        latency = health.last_latency_seconds
        return cls(
            status=health.status,
            circuit=health.circuit,
            last_error=health.last_error,
            last_error_at=health.last_error_at,
            last_success_at=health.last_success_at,
            last_latency_ms=None if latency is None else round(latency * 1000, 3),
        )


@strawberry.type(description="An agency's complaint system that the graph reads on demand.")
class SourceSystem:
    id: str
    kind: str = strawberry.field(
        description="The kind of backend: sql, rest, open311, graphql, or an installed plugin's."
    )
    pushed_down_filters: list[str] = strawberry.field(
        description="CaseFilter fields this source evaluates itself; others apply after fetching."
    )
    _agency: strawberry.Private[AgencyInfo]
    _source: strawberry.Private[Source]

    @strawberry.field
    def agency(self) -> Agency:
        return Agency.of(self._agency)

    @strawberry.field(description="Health, circuit state, last error and latency.")
    def health(self) -> SourceHealthInfo | None:
        health = self._source.health()
        return SourceHealthInfo.of(health) if health is not None else None

    @strawberry.field(
        description="Whether the graph writes into this system (referrals, progress, notes)."
    )
    def accepts_writes(self, info: GraphInfo) -> bool:
        writes = info.context.writes
        return writes is not None and writes.can_write(self.id)

    @strawberry.field(
        description=(
            "Writes into or out of this system not yet done (PENDING): the gateway retries "
            "them until the system takes them (see Query.pendingWrites)."
        )
    )
    async def pending_writes(self, info: GraphInfo) -> int:
        writes = info.context.writes
        return 0 if writes is None else await writes.pending_count(self.id)

    @classmethod
    def of(cls, source: Source) -> SourceSystem:
        return cls(
            id=source.id,
            kind=source.kind,
            pushed_down_filters=sorted(source.capabilities.pushed_down_filters),
            _agency=source.agency,
            _source=source,
        )


@strawberry.type(description="A government agency that receives complaints.")
class Agency:
    code: str
    name_th: str
    name_en: str

    @strawberry.field(description="The complaint systems this agency runs.")
    def sources(self, info: GraphInfo) -> list[SourceSystem]:
        federation = info.context.federation
        ids = info.context.directory.sources_by_agency.get(self.code, [])
        return [SourceSystem.of(federation.sources[source_id]) for source_id in ids]

    @classmethod
    def of(cls, agency: AgencyInfo) -> Agency:
        """The one ``Agency`` of ``agency``, as :meth:`Category.of` (``sources`` asks the
        request's own context)."""
        return shared_agency(agency)


@functools.lru_cache(maxsize=_MAX_SHARED)
def shared_agency(info: AgencyInfo) -> Agency:
    """:meth:`Agency.of`, for callers that answer a field per case (no method call)."""
    return Agency(code=info.code, name_th=info.name_th, name_en=info.name_en)
