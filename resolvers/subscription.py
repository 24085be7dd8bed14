"""Subscriptions: partner agencies are told when a case they follow changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from graphql import GraphQLError

from resolvers.access import AccessError
from resolvers.agency import SourceSystem
from resolvers.case import Case
from resolvers.context import GraphInfo
from resolvers.errors import UserInputError, with_code
from resolvers.filters import CaseFilterInput, check_known_codes
from sources import CanonicalStatus, CaseFilter, SourceError, Unmapped, start_deadline
from sources._changes import CaseEvent, ChangeKind, EventsInterrupted, SubscriberTooSlow

strawberry.enum(ChangeKind, name="CaseEventType", description="What happened to the case.")


@strawberry.type(name="CaseEvent", description="A change to a case, as its agency system shows it.")
class CaseEventItem:
    id: str = strawberry.field(
        description="Opaque, ordered per source; pass it as `after` to resume from here."
    )
    type: ChangeKind
    at: datetime = strawberry.field(description="When the agency system recorded the change.")
    previous_status: CanonicalStatus | None = strawberry.field(
        description="Before the change, when this gateway saw it (null after a resume)."
    )
    new_status: CanonicalStatus | None
    event: strawberry.Private[CaseEvent]

    @classmethod
    def of(cls, event: CaseEvent) -> CaseEventItem:
        previous = event.previous_status
        current = event.record.status
        return cls(
            id=event.token,
            type=event.kind,
            at=event.at,
            previous_status=None if isinstance(previous, Unmapped) else previous,
            new_status=None if isinstance(current, Unmapped) else current,
            event=event,
        )

    @strawberry.field(description="Agency codes the case has been referred to, as of this event.")
    def referred_to(self) -> list[str]:
        return list(self.event.referred_to)

    @strawberry.field(description="The agency system holding the case.")
    def source(self, info: GraphInfo) -> SourceSystem:
        return SourceSystem.of(info.context.federation.sources[self.event.record.source])

    @strawberry.field(description="The case as it is after the change; relations read live.")
    def case(self, info: GraphInfo) -> Case:
        return Case.of(self.event.record, info.context.directory)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Changes to cases matching the filter, from every source: CREATED, STATUS_CHANGED, "
            "REFERRED, NOTE_ADDED, UPDATED. `referredTo`: only cases referred to one of these "
            "agencies. With `after` (an event id), first what changed since that event."
        )
    )
    async def case_events(
        self,
        info: GraphInfo,
        filter: CaseFilterInput | None = None,
        referred_to: list[str] | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[CaseEventItem, None]:
        events = info.context.events
        if events is None:
            raise with_code(UserInputError("this gateway does not publish events"))
        try:
            where = filter.to_filter() if filter is not None else CaseFilter()
            if filter is not None:
                check_known_codes(filter, info.context.directory)
            where = await info.context.case_access.restrict(where)
            targets = frozenset(referred_to) if referred_to is not None else None
            stream = events.subscribe(where, after, targets)
        except AccessError as exc:
            raise with_code(exc) from exc
        except UserInputError as exc:
            raise with_code(exc) from exc
        except ValueError as exc:
            raise with_code(UserInputError(f"after: {exc}")) from exc
        per_event = info.context.limits.query.timeout_seconds
        try:
            async for event in stream:
                info.context.fresh_loaders()
                # The event's own work (its fields, read live from the sources) has the
                # request's time limit from now: set here, it is seen by the resolvers the
                # event runs, which run in this subscription's context.
                start_deadline(per_event)
                yield CaseEventItem.of(event)
        except (SubscriberTooSlow, SourceError) as exc:
            raise with_code(exc) from exc
        except EventsInterrupted as exc:
            raise GraphQLError(str(exc), extensions={"code": "EVENTS_INTERRUPTED"}) from exc
