"""The root Query: the complaint graph's entry points."""

from __future__ import annotations

import strawberry
from strawberry import relay

from resolvers.agency import Agency, Category, SourceSystem
from resolvers.audit import AuditFilter, AuditLogPage, audit_log
from resolvers.case import Case, load_case
from resolvers.connection import CaseConnection
from resolvers.context import GraphInfo
from resolvers.cursor import decode_cursor
from resolvers.errors import UserInputError, source_error
from resolvers.filters import CaseFilterInput, CaseOrderInput, case_filter
from resolvers.mutations import Write, pending_writes
from resolvers.projection import fields_read
from resolvers.stats import CaseStats, StatsDimension, case_stats
from sources import CaseOrder
from sources._model import CARRIED


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(description="Any object by its global id.")

    @strawberry.field(description="One case by its global id; null when no source holds it.")
    async def case(self, info: GraphInfo, id: relay.GlobalID) -> Case | None:
        if id.type_name != "Case":
            raise UserInputError(f"id is a {id.type_name} id, not a Case id")
        return await load_case(info, id.node_id)

    @strawberry.field(
        description=(
            "Cases from every agency system at once, filtered and ordered inside each source, "
            "merged, and paged by keyset: a deep page costs what the first page costs. "
            "Null only when the arguments are invalid (the error says which)."
        )
    )
    async def cases(
        self,
        info: GraphInfo,
        filter: CaseFilterInput | None = None,
        order_by: CaseOrderInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> CaseConnection | None:
        limits = info.context.limits
        size = limits.default_page_size if first is None else first
        if not 0 <= size <= limits.max_page_size:
            raise UserInputError(f"first must be between 0 and {limits.max_page_size}")
        order = (order_by or CaseOrderInput()).to_order()
        position = decode_cursor(after, order) if after is not None else None
        where = await case_filter(info, filter)
        fields = fields_read(info)
        if fields is not None and not info.context.loaders.batching:
            fields = fields - CARRIED  # the N+1 baseline: each timeline, each case's referrals
            # its own round trip
        page = await info.context.federation.page(where, order, position, size, fields)
        path = info.path.as_list()
        info.context.partial_errors.extend(source_error(error, path) for error in page.failures)
        info.context.report_plan(
            ".".join(map(str, path)), "page", page.asked, page.skipped, page.reads
        )
        info.context.case_access.mark_visible(page.records)
        info.context.loaders.prime_cases(page.records)  # those read whole
        return CaseConnection.of(page, where, order, position, info.context.directory)

    @strawberry.field(
        description=(
            "Statistics over the cases `cases` would return for the same filter, grouped by "
            "groupBy (at most 4 dimensions; [] gives only the total), computed inside each "
            "source (one GROUP BY per SQL source; API sources without a stats endpoint are "
            "scanned up to a bound, with a warning in extensions.warnings) and merged exactly."
        )
    )
    async def case_stats(
        self,
        info: GraphInfo,
        group_by: list[StatsDimension],
        filter: CaseFilterInput | None = None,
    ) -> CaseStats:
        return await case_stats(info, await case_filter(info, filter), group_by)

    @strawberry.field
    def agencies(self, info: GraphInfo) -> list[Agency]:
        return [Agency.of(agency) for agency in info.context.directory.agencies.values()]

    @strawberry.field
    def agency(self, info: GraphInfo, code: str) -> Agency | None:
        found = info.context.directory.agencies.get(code)
        return Agency.of(found) if found is not None else None

    @strawberry.field
    def categories(self, info: GraphInfo) -> list[Category]:
        return [Category.of(category) for category in info.context.directory.categories.values()]

    @strawberry.field(description="The agency systems this gateway reads.")
    def sources(self, info: GraphInfo) -> list[SourceSystem]:
        return [SourceSystem.of(source) for source in info.context.federation.sources.values()]

    @strawberry.field(
        description=(
            "The personal-data audit trail (every reveal and every denied access), oldest "
            "first: for callers with the audit:read scope."
        )
    )
    async def audit_log(
        self,
        info: GraphInfo,
        first: int = 50,
        after: str | None = None,
        filter: AuditFilter | None = None,
    ) -> AuditLogPage:
        return await audit_log(info, first, after, filter)

    pending_writes: list[Write] = strawberry.field(
        resolver=pending_writes,
        description="Writes into agencies' systems not yet done, or given up.",
    )


__all__ = ["CaseOrder", "Query"]
