"""Agencies, the source systems they run, and the unified categories."""

from __future__ import annotations

import strawberry

from resolvers.context import GraphInfo
from resolvers.directory import CategoryInfo
from sources import AgencyInfo, Source


@strawberry.type(description="A unified complaint category; agencies' own codes map onto these.")
class Category:
    code: str
    name_th: str
    name_en: str

    @classmethod
    def of(cls, info: CategoryInfo) -> Category:
        return cls(code=info.code, name_th=info.name_th, name_en=info.name_en)


@strawberry.type(description="An agency's complaint system that the graph reads on demand.")
class SourceSystem:
    id: str
    kind: str = strawberry.field(description="The kind of backend: sql, rest, open311.")
    pushed_down_filters: list[str] = strawberry.field(
        description="CaseFilter fields this source evaluates itself; others apply after fetching."
    )
    _agency: strawberry.Private[AgencyInfo]

    @strawberry.field
    def agency(self) -> Agency:
        return Agency.of(self._agency)

    @classmethod
    def of(cls, source: Source) -> SourceSystem:
        return cls(
            id=source.id,
            kind=source.kind,
            pushed_down_filters=sorted(source.capabilities.pushed_down_filters),
            _agency=source.agency,
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
        return cls(code=agency.code, name_th=agency.name_th, name_en=agency.name_en)
