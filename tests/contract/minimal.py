"""The least a kind can be: a :class:`sources.Backend` that pushes down nothing.

Its search ignores the filter, the access, the order, the position and the fields, and answers
its cases in an order of its own; its count ignores the filter. It maps referrals (an optional
ability, by implementing :class:`sources.MapsReferrals`) but no complainants. Wrapped by
:func:`sources.complete`, it must answer the contract suite as every real kind does: the core
(sources/_pushdown.py) applies all it leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sources import (
    AgencyInfo,
    Backend,
    Capabilities,
    CaseFilter,
    CaseOrder,
    CaseRecord,
    Location,
    Position,
    Problem,
    ReferralRecord,
    TimelineEntry,
)
from tests.contract.agency import (
    AGENCIES,
    AGENCY,
    BANGKOK,
    CASES,
    CATEGORIES,
    CHANNELS,
    REFERRAL_KINDS,
    SOURCE,
    STATUSES,
    Case,
)


def record_of(case: Case) -> CaseRecord:
    return CaseRecord(
        source=SOURCE,
        local_id=case.local_id,
        reference_number=case.local_id,
        title=case.title,
        description=case.description,
        channel=CHANNELS[case.channel],
        category=CATEGORIES[case.category],
        source_category=case.category,
        status=STATUSES[case.status],
        source_status=case.status,
        received_at=case.received_at,
        updated_at=case.updated_at,
        due_at=case.due_at,
        closed_at=None if case.closed is None else case.closed.replace(tzinfo=BANGKOK),
        location=Location(province_code=case.province, district_code=case.district),
    )


class MinimalBackend(Backend):
    """The fixture agency in memory, served as naively as a backend may; with ``orders`` it
    sorts and cuts by keyset (and still filters nothing), as a plain paged table would."""

    kind = "minimal"

    def __init__(self, *, orders: bool = False) -> None:
        self.orders = orders
        self.id = SOURCE
        self.agency = AgencyInfo(AGENCY, "สำนักงานเขตทดสอบ", "Contract office")
        # an order of its own: by id, but odd ids first
        self.cases = sorted(CASES, key=lambda c: (c.id % 2 == 0, c.id))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            pushed_down_filters=frozenset(),
            applies_access=False,
            orders_pages=self.orders,
            watches_changes=False,
        )

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def check(self) -> list[Problem]:
        return []

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        wanted = set(local_ids)
        return {c.local_id: record_of(c) for c in self.cases if c.local_id in wanted}

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        records = [record_of(c) for c in self.cases]
        if self.orders:
            records.sort(key=order.key, reverse=order.descending)
            records = [r for r in records if order.is_after(r, after)]
        return records[:limit]

    async def count_cases(self, where: CaseFilter) -> int:
        return len(self.cases)

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        wanted = set(local_ids)
        return {
            c.local_id: [
                TimelineEntry(
                    e.at.replace(tzinfo=BANGKOK),
                    STATUSES[e.status] if e.status else None,
                    e.status,
                    e.note,
                )
                for e in c.timeline
            ]
            for c in self.cases
            if c.local_id in wanted
        }

    # -- the optional ability of referrals (sources.MapsReferrals) ------------------------------

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        wanted = set(local_ids)
        return {
            c.local_id: [
                ReferralRecord(
                    from_source=SOURCE,
                    from_local_id=c.local_id,
                    to_agency=AGENCIES[r.to],
                    at=r.at.replace(tzinfo=BANGKOK),
                    kind=REFERRAL_KINDS[r.kind],
                    status=r.status,
                    their_reference=r.their_reference,
                )
                for r in c.referrals
            ]
            for c in self.cases
            if c.local_id in wanted and c.referrals
        }

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        return {}

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        return ()
