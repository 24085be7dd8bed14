"""Referrals: one complaint handed from agency to agency, followed live across their systems."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers.agency import Agency
from resolvers.context import GraphInfo
from resolvers.errors import UnmappedValueError
from sources import ReferralKind, ReferralRecord, Unmapped, WriteEntry

if TYPE_CHECKING:
    from resolvers.case import Case
    from resolvers.write_results import Write

strawberry.enum(ReferralKind, name="ReferralKind", description="Why the case moved on.")

LazyCase = Annotated["Case", strawberry.lazy("resolvers.case")]
LazyWrite = Annotated["Write", strawberry.lazy("resolvers.write_results")]


@strawberry.type(description="A hand-over of a case from one agency to another.")
class Referral:
    at: datetime
    status: str | None = strawberry.field(description="The referring agency's own words.")
    receiving_reference: str | None = strawberry.field(
        description="The receiving agency's own id for the case."
    )
    secrecy: str | None = strawberry.field(description="Secrecy level, where the agency keeps one.")
    record: strawberry.Private[ReferralRecord]
    pending: strawberry.Private[WriteEntry | None] = None

    @classmethod
    def of(cls, record: ReferralRecord, pending: WriteEntry | None = None) -> Referral:
        return cls(
            at=record.at,
            status=record.status,
            receiving_reference=record.their_reference,
            secrecy=record.secrecy,
            record=record,
            pending=pending,
        )

    @strawberry.field(
        description=(
            "While the referral is not yet written into both agencies' systems (status "
            "PENDING), or once the outbox gave up on it (status ABANDONED): the outbox's "
            "write, with why its last attempt failed. Null once recorded."
        )
    )
    def write(self) -> LazyWrite | None:
        from resolvers.write_results import Write

        return Write.of(self.pending) if self.pending is not None else None

    @strawberry.field
    def kind(self) -> ReferralKind | None:
        if isinstance(self.record.kind, Unmapped):
            raise UnmappedValueError(self.record.kind)
        return self.record.kind

    @strawberry.field(description="The agency whose system recorded the referral.")
    def from_agency(self, info: GraphInfo) -> Agency:
        return Agency.of(info.context.federation.sources[self.record.from_source].agency)

    @strawberry.field(description="The receiving agency; null when it is not a known agency.")
    def to_agency(self, info: GraphInfo) -> Agency | None:
        code = self.record.to_agency
        if isinstance(code, Unmapped):
            raise UnmappedValueError(code)
        found = info.context.directory.agencies.get(code)
        return Agency.of(found) if found is not None else None

    @strawberry.field(
        description=(
            "The case as the receiving agency holds it, read live from its own system; null "
            "when that agency's system is not linked or does not know the reference."
        )
    )
    async def counterpart(self, info: GraphInfo) -> LazyCase | None:
        from resolvers.case import load_case_in

        code = self.record.to_agency
        reference = self.record.their_reference
        if isinstance(code, Unmapped) or reference is None:
            return None
        source = info.context.directory.source_for_agency(code)
        if source is None:
            return None
        # Visible by the one access rule: a referral the caller's own agency recorded opens
        # the counterpart when its system lists that referral, as the search does.
        return await load_case_in(info, source, reference)

    @strawberry.field(description="The referring case, in the referring agency's system.")
    async def origin(self, info: GraphInfo) -> LazyCase | None:
        from resolvers.case import load_case_in

        return await load_case_in(info, self.record.from_source, self.record.from_local_id)
