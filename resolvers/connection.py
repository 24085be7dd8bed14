"""The Relay connection over cases from every source at once."""

from __future__ import annotations

import strawberry
from strawberry import relay

from resolvers.case import Case
from resolvers.context import GraphInfo
from resolvers.cursor import encode_cursor
from resolvers.directory import Directory
from resolvers.errors import source_error
from sources import CaseFilter, CaseOrder, CaseRecord, Page, Position
from sources._federation import sort_value

_new_object = object.__new__


def _edge_cursor(self: CaseEdge) -> str:
    """Made when asked: a dashboard page asks for none of its hundred."""
    return _cursor(self.node.record, self.order)


@strawberry.type
class CaseEdge:
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: Case
    order: strawberry.Private[CaseOrder]

    @classmethod
    def of(cls, node: Case, order: CaseOrder) -> CaseEdge:
        """``CaseEdge(node=node, order=order)``, set at once as the instance's dict (as
        ``Case.of`` does: a page makes one per case, and the generated ``__init__`` with
        keyword arguments cost as much as the case; the tests compare the two)."""
        edge = _new_object(cls)
        edge.__dict__ = {"node": node, "order": order}
        return edge


@strawberry.type(description="A page of cases merged from every source that can match.")
class CaseConnection:
    edges: list[CaseEdge]
    page_info: relay.PageInfo
    _filter: strawberry.Private[CaseFilter]

    @strawberry.field(
        description=(
            "Cases matching the filter in every source that answered (one count each). "
            "estimate: true accepts each source's count of the same filter made a while ago "
            "(its count_estimate_seconds, 5 minutes unless configured): cheap on page after "
            "page, not exact; without it the count is as exact as the source's "
            "count_cache_seconds allow."
        )
    )
    async def total_count(self, info: GraphInfo, estimate: bool = False) -> int:
        federation = info.context.federation
        total, failures = await federation.count(self._filter, estimate)
        asked = [source.id for source in federation.matching(self._filter)]
        info.context.report_plan(
            ".".join(map(str, info.path.as_list())),
            "count",
            asked,
            len(federation.sources) - len(asked),
        )
        # A source whose page already failed is reported once, at `cases`, not again here.
        reported = {(error.extensions or {}).get("source") for error in info.context.partial_errors}
        path = info.path.as_list()
        info.context.partial_errors.extend(
            source_error(error, path) for error in failures if error.source not in reported
        )
        return total

    @classmethod
    def of(
        cls,
        page: Page,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        directory: Directory,
    ) -> CaseConnection:
        records = page.records
        return cls(
            edges=[CaseEdge.of(Case.of(r, directory), order) for r in records],
            page_info=relay.PageInfo(
                has_next_page=page.has_next,
                has_previous_page=after is not None,
                start_cursor=_cursor(records[0], order) if records else None,
                end_cursor=_cursor(records[-1], order) if records else None,
            ),
            _filter=where,
        )


def _cursor(record: CaseRecord, order: CaseOrder) -> str:
    return encode_cursor(Position(sort_value(record, order), record.source, record.local_id), order)
