"""The Case node: one complaint as held by one agency system."""

from __future__ import annotations

import asyncio
from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from types import NoneType
from typing import ClassVar, TypeVar, cast

import strawberry
from strawberry import relay

from resolvers.agency import Agency, Category, SourceSystem, shared_agency, shared_category
from resolvers.batched import batched
from resolvers.complainant import Complainant, complainant_of
from resolvers.context import Context, GraphInfo
from resolvers.directory import Directory
from resolvers.enums import CaseChannel, CaseStatus
from resolvers.errors import UnmappedValueError
from resolvers.geography import Area, area
from resolvers.loaders import mapped
from resolvers.plan import NEVER_PLANNED, column_read, reads
from resolvers.projection import carried_reads
from resolvers.referral import Referral
from sources import (
    CanonicalStatus,
    CaseRecord,
    Channel,
    ReferralRecord,
    TimelineEntry,
    Unmapped,
)


@strawberry.type(description="Where the complaint is about.")
class Location:
    province: Area | None
    district: Area | None
    subdistrict: Area | None
    address: str | None
    latitude: float | None
    longitude: float | None


def _entry_status(self: TimelineEntry) -> CaseStatus | None:
    status = self.status
    if status.__class__ is Unmapped:  # _mapped, inline: asked of every entry of a page
        raise UnmappedValueError(status)
    return status  # type: ignore[return-value]


@strawberry.type(
    name="TimelineEntry",
    description="A status change or a note, oldest first.",
)
class TimelineItem:
    """The GraphQL face of the source layer's :class:`~sources.TimelineEntry`: answered from
    those objects as they come from the sources (the fields read their attributes), so a page's
    hundreds of entries are not copied into objects of their own."""

    at: datetime
    source_status: str | None = strawberry.field(description="The agency's own label, verbatim.")
    note: str | None
    status: CaseStatus | None = strawberry.field(
        resolver=_entry_status,
        description="Null for a note that changed no status, or an unmapped value.",
        metadata=column_read(attrgetter("status"), CanonicalStatus, NoneType),
    )


T = TypeVar("T", CanonicalStatus, Channel)
V = TypeVar("V")


def _mapped(value: T | Unmapped | None) -> T | None:
    if isinstance(value, Unmapped):
        raise UnmappedValueError(value)
    return value


_UNANSWERED = (
    " Null, with an error naming the source, when an agency system could not answer: the"
    " rest of the response still arrives."
)
"""Why the relations that ask a source again are nullable: a non-null list would pass one
source's failure up to the whole page (its edges are non-null)."""


_new_object = object.__new__


def global_key(source: str, local_id: str) -> str:
    return f"{source}:{local_id}"


@batched("Case", "id")
def _ids(cases: Sequence[Case], _context: object) -> list[str]:
    """Case.id for a list of cases at once (resolvers/batched.py): relay's own resolver asks
    the type for its name and id through resolve info, per case. The answer is the global id
    as the response gives it (``str(GlobalID("Case", key))``, base64 of ``Case:<key>``),
    encoded here rather than as a ``GlobalID`` object per case that the ``ID`` scalar's
    coercion then turns into text (bench/README.md). Every step is a loop in C: each key's
    ``b2a_base64`` (what ``base64.b64encode`` calls) ends in a newline, so the column's are
    joined, decoded once and split at those newlines (base64 has none of its own)."""
    if not cases:
        return []
    keys = map(_CASE_PREFIX.__add__, map(_key_of, cases))
    encoded = b"".join(map(b2a_base64, map(str.encode, keys))).decode()
    return encoded.split("\n")[:-1]


_CASE_PREFIX = "Case:"
_key_of = attrgetter("key")


@batched("Case", "isOverdue")
def _overdue(cases: Sequence[Case], context: Context) -> list[bool]:
    """Case.isOverdue for a list of cases at once, at the request's one moment: the
    field's resolver asks resolve info for the context, so graphql-core (and a plan
    without this) made resolve info per case to read ``context.now``."""
    now = context.now
    return [case.record.is_overdue(now) for case in cases]


@batched("Case", "timeline")
def _timelines(cases: Sequence[Case], context: Context) -> list[object]:
    """Case.timeline for a list of cases at once: the timeline a case's record carries (a
    page read with its timelines, ``CaseRecord.timeline``) as it is; for the others, each
    source's loader asked for its cases' futures in one call (``ListLoader.load_list``),
    awaited together."""
    answers: list[object] = [None] * len(cases)
    positions: dict[str, list[int]] = {}  # by source: where its cases stand in the list
    for index, case in enumerate(cases):
        record = case.record
        carried = record.timeline
        if carried is not None:
            answers[index] = carried
        else:
            positions.setdefault(record.source, []).append(index)
    for source, indexes in positions.items():
        loader = context.loaders.timelines(source)
        futures = loader.load_list([cases[i].record.local_id for i in indexes])
        for index, future in zip(indexes, futures, strict=True):
            answers[index] = future
    return answers


@batched("Case", "referrals")
def _referrals(cases: Sequence[Case], context: Context) -> list[object]:
    """Case.referrals for a list of cases at once: the referrals a case's record carries (a
    page or a case read with them, ``CaseRecord.referrals``) as they are; for the others,
    each source's loader asked for its cases' futures in one call, each made into a future
    of ``Referral`` objects by a callback (``mapped``), not a coroutine per case."""
    from resolvers.write_results import with_pending_referrals  # it imports this module

    answers: list[object] = [None] * len(cases)
    positions: dict[str, list[int]] = {}  # by source: where its cases stand in the list
    writes = context.writes
    for index, case in enumerate(cases):
        record = case.record
        carried = record.referrals
        if carried is None:
            positions.setdefault(record.source, []).append(index)
        elif writes is not None and writes.can_write(record.source, "record"):
            answers[index] = with_pending_referrals(context, record, _settled(carried))
        else:
            answers[index] = _referrals_of(carried)
    for source, indexes in positions.items():
        loader = context.loaders.referrals(source)
        futures = loader.load_list([cases[i].record.local_id for i in indexes])
        # Where the gateway writes referrals for this source, those its outbox has not yet
        # written follow (one coroutine per case there; a callback elsewhere).
        if writes is not None and writes.can_write(source, "record"):
            for index, future in zip(indexes, futures, strict=True):
                answers[index] = with_pending_referrals(context, cases[index].record, future)
        else:
            for index, future in zip(indexes, futures, strict=True):
                answers[index] = mapped(future, _referrals_of)
    return answers


def _referrals_of(records: Sequence[ReferralRecord]) -> list[Referral]:
    return [Referral.of(record) for record in records]


async def _settled(value: V) -> V:
    """``value``, to await where a loader's future is awaited (pending referrals follow)."""
    return value


@strawberry.type(description="A complaint case, read live from the agency system that holds it.")
class Case(relay.Node):
    key: relay.NodeID[str]
    reference_number: str = strawberry.field(
        description="The agency's own case number.", metadata=reads("reference_number")
    )
    title: str = strawberry.field(metadata=reads("title"))
    description: str = strawberry.field(metadata=reads("description"))
    source_status: str = strawberry.field(
        description="The agency's own status label, verbatim.", metadata=reads("source_status")
    )
    received_at: datetime = strawberry.field(metadata=reads("received_at"))
    updated_at: datetime = strawberry.field(metadata=reads("updated_at"))
    due_at: datetime | None = strawberry.field(metadata=reads("due_at"))
    closed_at: datetime | None = strawberry.field(metadata=reads("closed_at"))
    record: strawberry.Private[CaseRecord]
    directory: strawberry.Private[Directory]
    """The gateway's reference data, so that category and agency need no resolve info: plain
    fields are read without it by an execution plan (:mod:`resolvers.plan`)."""

    INHERITED_READS: ClassVar[dict[str, frozenset[str]]] = {"id": frozenset()}
    """What relay's ``id`` reads of the record: ``source`` and ``local_id``, which every record
    holds. Each field below declares its own reads (``metadata=reads(...)``): a page of cases
    is read for those of the fields selected (:mod:`resolvers.projection`)."""

    @classmethod
    def of(cls, record: CaseRecord, directory: Directory) -> Case:
        """The case of ``record``: what its generated ``__init__`` would set, set at once as
        the instance's dict (a page makes one per case; the tests compare the two)."""
        case = _new_object(cls)
        case.__dict__ = {
            "key": f"{record.source}:{record.local_id}",  # global_key(), without the call
            "reference_number": record.reference_number,
            "title": record.title,
            "description": record.description,
            "source_status": record.source_status,
            "received_at": record.received_at,
            "updated_at": record.updated_at,
            "due_at": record.due_at,
            "closed_at": record.closed_at,
            "record": record,
            "directory": directory,
        }
        return case

    @strawberry.field(
        description="Canonical status; null only when the agency's value is unmapped.",
        metadata={
            **reads("status"),
            **column_read(attrgetter("record.status"), CanonicalStatus, NoneType),
        },
    )
    def status(self) -> CaseStatus | None:
        status = self.record.status
        if status.__class__ is Unmapped:  # _mapped, inline: asked of every case of a page
            raise UnmappedValueError(status)
        return status  # type: ignore[return-value]

    @strawberry.field(
        metadata={
            **reads("channel"),
            **column_read(attrgetter("record.channel"), Channel, NoneType),
        }
    )
    def channel(self) -> CaseChannel | None:
        return _mapped(self.record.channel)

    @strawberry.field(
        description="Unified category; null only when the agency's code is unmapped.",
        metadata=reads("category"),
    )
    def category(self) -> Category | None:
        code = self.record.category
        if code.__class__ is Unmapped:
            raise UnmappedValueError(code)
        return shared_category(self.directory.categories[code])  # type: ignore[index]

    @strawberry.field(
        description="The agency's own category code, verbatim.",
        metadata={
            **reads("source_category"),
            **column_read(attrgetter("record.source_category"), str),
        },
    )
    def source_category(self) -> str:
        return self.record.source_category

    @strawberry.field(
        description=(
            "Open (a known status that is not finished) and past dueAt at the time of the "
            "request: the rule caseStats counts overdue cases by. dueAt is the agency's own "
            "due date, or receivedAt plus the configured SLA days for the category."
        ),
        metadata=reads("status", "due_at"),
    )
    def is_overdue(self, info: GraphInfo) -> bool:
        return self.record.is_overdue(info.context.now)

    @strawberry.field(metadata=reads("location"))
    def location(self) -> Location:
        place = self.record.location
        return Location(
            province=area(place.province_code),
            district=area(place.district_code),
            subdistrict=area(place.subdistrict_code),
            address=place.address,
            latitude=place.latitude,
            longitude=place.longitude,
        )

    @strawberry.field(
        description="Who the holding agency says is responsible, in its words (free text).",
        metadata={
            **reads("responsible"),
            **column_read(attrgetter("record.responsible"), str, NoneType),
        },
    )
    def responsible_agencies(self) -> str | None:
        return self.record.responsible

    @strawberry.field(
        description="The holding agency's explanation of the current status, in its words "
        "(Open311 status_notes); null where the agency keeps none.",
        metadata={
            **reads("status_notes"),
            **column_read(attrgetter("record.status_notes"), str, NoneType),
        },
    )
    def status_notes(self) -> str | None:
        return self.record.status_notes

    @strawberry.field(
        description="Photos sent with the complaint, where the agency keeps them.",
        metadata=reads("media_urls"),
    )
    def photo_urls(self) -> list[str]:
        return list(self.record.media_urls)

    @strawberry.field(description="The agency system that holds this case.", metadata=reads())
    def source(self, info: GraphInfo) -> SourceSystem:
        return SourceSystem.of(info.context.federation.sources[self.record.source])

    @strawberry.field(
        description="The agency that owns the source system holding this case.", metadata=reads()
    )
    def owning_agency(self) -> Agency:
        return shared_agency(self.directory.agency_of_source[self.record.source])

    @strawberry.field(
        description=(
            "Who filed the case: masked unless the caller has pii:read and may see the case "
            "(reveals are audited); null where the agency's system keeps no personal data."
        ),
        metadata={**reads(), **NEVER_PLANNED},  # an audited reveal: once per request
    )
    async def complainant(self, info: GraphInfo) -> Complainant | None:
        return await complainant_of(info, self.record)

    @strawberry.field(
        description="Status changes and notes, oldest first." + _UNANSWERED,
        metadata=reads("timeline"),  # a page may carry it (CaseRecord.timeline)
    )
    def timeline(self, info: GraphInfo) -> list[TimelineItem] | None:
        # The loader's future itself, for graphql-core to await: no coroutine per case, and
        # the entries are answered as they are (see TimelineItem). Outside a list; in one,
        # _timelines answers for every case at once.
        return cast("list[TimelineItem] | None", _timelines([self], info.context)[0])

    @strawberry.field(
        description=(
            "Where this agency sent the case, oldest first; then those the gateway's outbox "
            "is still writing (status PENDING) or gave up on (status ABANDONED, its write "
            "saying why)." + _UNANSWERED
        ),
        metadata=reads("referrals"),  # a page or a case may carry them (CaseRecord.referrals)
    )
    def referrals(self, info: GraphInfo) -> list[Referral] | None:
        # A future, as timeline's: in a list, _referrals answers for every case at once.
        return cast("list[Referral] | None", _referrals([self], info.context)[0])

    @strawberry.field(
        description=(
            "Referrals other agencies' systems recorded to this case, oldest first. Asked of "
            "every source that can look referrals up by their target (SQL sources can)."
            + _UNANSWERED
        ),
        metadata=reads(),
    )
    async def referred_from(self, info: GraphInfo) -> list[Referral] | None:
        records = await incoming_referrals(info, self.record)
        return [Referral.of(record) for record in records]

    @strawberry.field(
        description=(
            "The same complaint as held in other systems: this case's referral partners and "
            "where those partners referred it on (one hop further, batched)." + _UNANSWERED
        ),
        metadata=reads(),
    )
    async def related_cases(self, info: GraphInfo) -> list[Case] | None:
        loaders = info.context.loaders
        outgoing: Sequence[ReferralRecord] | None = self.record.referrals  # carried, or:
        if outgoing is None:
            outgoing = await loaders.referrals(self.record.source).load(self.record.local_id)
        incoming = await incoming_referrals(info, self.record)
        keys: dict[tuple[str, str], None] = dict.fromkeys(_targets(info, outgoing))
        for referral in incoming:
            keys[(referral.from_source, referral.from_local_id)] = None
        # A referral recorded only where nobody can search it (an Open311 server's, say) is
        # still found from the partner that handed the case there.
        onward = await asyncio.gather(*(loaders.referrals(s).load(i) for s, i in list(keys)))
        for referrals in onward:
            keys.update(dict.fromkeys(_targets(info, referrals)))
        keys.pop((self.record.source, self.record.local_id), None)
        carry = carried_reads(info)
        cases = await asyncio.gather(*(load_case_in(info, s, i, carry) for s, i in keys))
        return [case for case in cases if case is not None]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: GraphInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Case | None]:
        carry = carried_reads(info)
        return list(await asyncio.gather(*(load_case(info, key, carry) for key in node_ids)))


def _targets(info: GraphInfo, referrals: Sequence[ReferralRecord]) -> list[tuple[str, str]]:
    """(source, local id) of each referral's receiving case, where one source holds it."""
    found = []
    for referral in referrals:
        target = referral.to_agency
        if isinstance(target, str) and referral.their_reference is not None:
            source = info.context.directory.source_for_agency(target)
            if source is not None:
                found.append((source, referral.their_reference))
    return found


async def load_case(info: GraphInfo, key: str, carry: frozenset[str] | None = None) -> Case | None:
    """The case for a node key ``source:local id``; None when the source or case is unknown."""
    source_id, separator, local_id = key.partition(":")
    if not separator:
        return None
    return await load_case_in(info, source_id, local_id, carry)


async def load_case_in(
    info: GraphInfo, source_id: str, local_id: str, carry: frozenset[str] | None = None
) -> Case | None:
    """The case, or None when no source holds it or the caller may not see it (the same
    answer either way, so a guessed id tells nothing); see :mod:`resolvers.access`.

    Read with the relations the operation selects on it (``carry``; None: as the plan says
    at ``info``'s path, :func:`~resolvers.projection.carried_reads`), where its source can
    bring them in the same round trip: one case in full detail is then one."""
    context = info.context
    context.case_access.require_role()
    if context.federation.get(source_id) is None:
        return None
    if carry is None:
        carry = carried_reads(info)
    record = await context.loaders.case(source_id, local_id, carry)
    if record is None:
        return None
    visible = await context.case_access.visible(record, context.loaders)
    return Case.of(record, context.directory) if visible else None


async def incoming_referrals(info: GraphInfo, record: CaseRecord) -> list[ReferralRecord]:
    """Referrals to ``record`` from every other source that can look them up: one batch each."""
    federation = info.context.federation
    agency = federation.sources[record.source].agency.code
    askers = [
        source.id
        for source in federation.sources.values()
        if source.id != record.source and source.capabilities.finds_referrals_to
    ]
    found = await asyncio.gather(
        *(info.context.loaders.incoming(s).load((agency, record.local_id)) for s in askers)
    )
    return sorted((r for records in found for r in records), key=lambda r: r.at)
