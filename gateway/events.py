"""Case events for subscribers: each source polled once per gateway, fanned out in process.

One poller per source follows its updated-at watermark (``sources._changes``) and publishes each
change once, whatever the number of subscribers. Each subscriber has a bounded queue; one that
falls further behind than ``queue_size`` events is cut off with an error naming its last event,
instead of growing memory. A subscriber that resumes with an event id first receives what the
sources changed since (their current state of each changed case), then live events, with no
duplicates. An agency subscriber also gets the events of cases its systems referred on after it
subscribed: such an event waits, in order, for its agency's referrals to be read again
(gateway/referrals.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.bus import BusUnavailable, RedisBus
from gateway.referrals import AgencyReferrals
from resolvers.subscription_groups import SHARED_BY, SubscriptionGroups
from sources import CaseFilter, Federation, Position, SourceError
from sources._changes import (
    CaseEvent,
    ChangeKind,
    EventsInterrupted,
    SubscriberTooSlow,
    changes_after,
    decode_token,
    encode_token,
    position_of,
    watermark_at,
)
from sources._model import CanonicalStatus, CaseRecord, Unmapped

log = logging.getLogger("complaint_graph.events")

REPLAY_LIMIT = 10_000
CLOCK_MARGIN = 5.0
_KNOWN_CASES = 200_000


class ResumeError(ValueError):
    """The ``after`` event id cannot be resumed from."""


@dataclass(frozen=True, slots=True)
class _Seen:
    status: CanonicalStatus | Unmapped
    updated_at: datetime
    notes: int | None
    referrals: int


@dataclass(frozen=True, slots=True)
class _Details:
    timeline_lengths: dict[str, int]
    referrals: dict[str, tuple[str, ...]]


@dataclass(eq=False)
class _Subscriber:
    where: CaseFilter
    agencies: frozenset[str] | None
    referred_to: frozenset[str] | None
    queue: asyncio.Queue[CaseEvent | None]
    overflowed: bool = False
    interrupted: bool = False
    ended: bool = False
    delivered: set[tuple[str, str, str]] = field(default_factory=set)
    held: deque[tuple[CaseEvent, int]] = field(default_factory=deque)
    """Events not yet queued, in order, each with the number of its agency's referrals refresh
    it waits for (0: none, it only waits for those before it)."""
    shared_by: Callable[[], int] | None = None
    """A group's shared subscription (resolvers/subscription_groups.py): its member count."""


class EventBroker:
    def __init__(
        self,
        federation: Federation,
        poll_seconds: dict[str, float],
        batch: int = 500,
        queue_size: int = 1000,
        bus: RedisBus | None = None,
    ) -> None:
        self.federation = federation
        self.bus = bus
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.queue_size = queue_size
        self.positions: dict[str, Position] = {}
        # Per case: what was last published of it (LRU-bounded).
        self._seen: OrderedDict[tuple[str, str], _Seen] = OrderedDict()
        self._started: dict[str, Position] = {}
        self._subscribers: set[_Subscriber] = set()
        self._referrals: dict[str, AgencyReferrals] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wakes: dict[str, asyncio.Event] = {}
        self._stop_listening: list[Callable[[], Awaitable[None]]] = []
        self._closing = False
        self.ready = asyncio.Event()
        self.subscription_groups = SubscriptionGroups(queue_size)
        """Subscribers sharing one resolution per event; each group is one subscriber here."""

    @property
    def subscriber_count(self) -> int:
        """Subscriptions open, each member of a group counted (/readyz, /metrics)."""
        return sum(1 if s.shared_by is None else s.shared_by() for s in self._subscribers)

    @property
    def watched(self) -> list[str]:
        """Sources that can say cheaply what changed; the others publish no events."""
        return [
            source.id
            for source in self.federation.sources.values()
            if source.capabilities.watches_changes
        ]

    async def start(self) -> None:
        if self.bus is not None:
            await self.bus.start(self._publish, self._interrupt_all)
        self._tasks = [
            asyncio.create_task(self._poll(source_id), name=f"poll:{source_id}")
            for source_id in self.watched
        ]
        if not self._tasks:
            self.ready.set()

    async def stop(self) -> None:
        # Pollers first: one still connecting its listener would otherwise leave it open.
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for stop_listening in self._stop_listening:
            await stop_listening()
        self._stop_listening = []
        if self.bus is not None:
            await self.bus.close()
        for referrals in self._referrals.values():
            await referrals.close()
        self.complete_all()

    def _interrupt_all(self) -> None:
        """Events may have been missed: every subscriber gets what it has queued, then an
        error telling it to resume with ``after`` (the replay fills the gap)."""
        for subscriber in list(self._subscribers):
            subscriber.interrupted = True
            self._end(subscriber)

    def complete_all(self) -> None:
        """End every subscription, and any made from now on, after what is already queued;
        at shutdown, so that a stream (Server-Sent Events) ends with ``complete``."""
        self._closing = True
        for subscriber in list(self._subscribers):
            self._end(subscriber)

    async def _poll(self, source_id: str) -> None:
        source = self.federation.sources[source_id]
        interval = self.poll_seconds.get(source_id, 2.0)
        # Changes from shortly before start-up count: clocks of gateway and agency differ a little.
        wake = self._wakes.setdefault(source_id, asyncio.Event())
        try:
            self._stop_listening.append(await source.listen_for_changes(wake.set))
        except SourceError as exc:
            log.warning("events: %s gives no change signals, polling only: %s", source_id, exc)
        # Changes from shortly before start-up count: clocks of gateway and agency differ a little.
        start = watermark_at(source_id, datetime.now(UTC) - timedelta(seconds=CLOCK_MARGIN))
        self._started[source_id] = start
        self.positions[source_id] = start
        if len(self._started) == len(self.watched):
            self.ready.set()
        leading = self.bus is None
        while True:
            records: list[CaseRecord] = []
            try:
                if self.bus is not None:
                    was_leading, leading = leading, await self.bus.lead(source_id)
                    if leading and not was_leading:  # take over where the last leader stopped
                        try:
                            self.positions[source_id] = await self.bus.position(source_id) or start
                        except BusUnavailable as exc:
                            log.warning("events: not taking over %s yet: %s", source_id, exc)
                            leading = False  # so the next round tries the takeover again
                if leading:
                    try:
                        found = await changes_after(source, self.positions[source_id], self.batch)
                        records = found
                    except SourceError as exc:
                        log.warning("events: polling %s failed: %s", source_id, exc.detail)
                details = await self._details(source_id, records)
                for record in records:
                    previous, self.positions[source_id] = (
                        self.positions[source_id],
                        position_of(record),
                    )
                    try:
                        await self._publish_change(record, start, details)
                    except BusUnavailable as exc:
                        # Not published: read again from here at the next poll, nothing skipped.
                        self.positions[source_id] = previous
                        log.warning("events: %s changes wait for the bus: %s", source_id, exc)
                        break
            except Exception:
                # A bug or an answer nobody foresaw must not end this source's events for
                # good (the watcher is one task per source, for the gateway's life): logged,
                # and the next poll goes on from where this one got to.
                log.exception("events: watching %s failed unexpectedly; trying again", source_id)
                records = []
            if len(records) < self.batch:
                # Until the next poll, or sooner when the source signals a change.
                # Waited for in this task: asyncio.wait_for made a task of each wait, a new
                # one every poll, which a check for leftover tasks could catch pending.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await wake.wait()
                wake.clear()

    async def _publish_change(
        self,
        record: CaseRecord,
        start: Position | None,
        details: _Details,
        kind: ChangeKind | None = None,
    ) -> bool:
        """Publish this version of ``record`` unless it was already; True when an event was
        made. If the bus cannot take it, it stays unpublished (raises BusUnavailable)."""
        key = (record.source, record.local_id)
        seen = self._seen.get(key)
        event = self._change_event(record, start, details, kind)
        try:
            await self._emit(event)
        except BusUnavailable:
            if seen is None:
                self._seen.pop(key, None)
            else:
                self._seen[key] = seen
            raise
        return event is not None

    async def _emit(self, event: CaseEvent | None) -> None:
        """Deliver here, or through the bus so that every replica delivers it."""
        if event is None:
            return
        if self.bus is None:
            self._publish(event)
        else:
            await self.bus.publish(event, position_of(event.record))

    async def _details(self, source_id: str, records: list[CaseRecord]) -> _Details:
        """Timeline lengths and referral targets of changed cases: one batch each per poll, so
        a note or a referral can be told from any other update."""
        if not records:
            return _Details({}, {})
        source = self.federation.sources[source_id]
        ids = [record.local_id for record in records]
        try:
            timelines, referrals = await asyncio.gather(
                source.load_timelines(ids), source.load_referrals(ids)
            )
        except SourceError as exc:
            log.warning("events: details of %s changes unavailable: %s", source_id, exc.detail)
            return _Details({}, {})
        return _Details(
            {i: len(entries) for i, entries in timelines.items()},
            {
                i: tuple(r.to_agency for r in found if isinstance(r.to_agency, str))
                for i, found in referrals.items()
            },
        )

    def _change_event(
        self,
        record: CaseRecord,
        start: Position | None,
        details: _Details,
        known: ChangeKind | None = None,
    ) -> CaseEvent | None:
        """The event for this version of ``record``, or None when it was published already
        (a webhook and the watcher may both report the same change)."""
        key = (record.source, record.local_id)
        seen = self._seen.get(key)
        if seen is not None and seen.updated_at >= record.updated_at:
            return None
        notes = details.timeline_lengths.get(record.local_id)
        referred_to = details.referrals.get(record.local_id, ())
        now = _Seen(record.status, record.updated_at, notes, len(referred_to))
        self._seen[key] = now
        self._seen.move_to_end(key)
        if len(self._seen) > _KNOWN_CASES:
            self._seen.popitem(last=False)
        previous = None if seen is None else seen.status
        if seen is None:
            is_new = start is not None and record.received_at > start.value
            kind = ChangeKind.CREATED if is_new else ChangeKind.UPDATED
        elif previous != record.status:
            kind = ChangeKind.STATUS_CHANGED
        elif now.referrals > seen.referrals:
            kind = ChangeKind.REFERRED
        elif notes is not None and seen.notes is not None and notes > seen.notes:
            kind = ChangeKind.NOTE_ADDED
        else:
            kind = ChangeKind.UPDATED
        if known is not None:
            kind = known  # the gateway made this change itself and knows what it was
        token = encode_token(self.positions)
        return CaseEvent(token, kind, record, previous, referred_to)

    async def publish_changed(
        self, source_id: str, local_ids: list[str], kind: ChangeKind | None = None
    ) -> int:
        """Cases an agency says it changed (a webhook), or the gateway's own writes changed
        (``kind`` then says how: REFERRED, STATUS_CHANGED, CREATED): read them now and publish
        each new version; returns how many events that made. Raises BusUnavailable when Redis
        cannot take them (what was not published is published when reported or polled again)."""
        found = await self.federation.sources[source_id].load_cases(local_ids)
        records = sorted(found.values(), key=lambda r: r.updated_at)
        details = await self._details(source_id, records)
        made = 0
        for record in records:
            made += await self._publish_change(record, self._started.get(source_id), details, kind)
        return made

    def _matches(self, subscriber: _Subscriber, event: CaseEvent) -> bool:
        return self._passes_filters(subscriber, event) and self._may_see(subscriber, event)

    def _passes_filters(self, subscriber: _Subscriber, event: CaseEvent) -> bool:
        record = event.record
        if subscriber.referred_to is not None and not subscriber.referred_to & set(
            event.referred_to
        ):
            return False
        owner = self.federation.sources[record.source].agency.code
        if subscriber.agencies is not None and owner not in subscriber.agencies:
            return False
        return subscriber.where.matches(record)

    def _may_see(self, subscriber: _Subscriber, event: CaseEvent) -> bool:
        """The subscriber's row-level access, as for `cases`, with what its agency's systems
        referred on as last read (at subscription or by a refresh since)."""
        access = subscriber.where.access
        if access is None:
            return True
        record = event.record
        owner = self.federation.sources[record.source].agency.code
        if access.allows(owner, record, event.referred_to):
            return True
        referrals = self._referrals.get(access.agency)
        return referrals is not None and referrals.allows(record.source, record.local_id)

    def _publish(self, event: CaseEvent) -> None:
        for subscriber in list(self._subscribers):
            if not (subscriber.overflowed or subscriber.ended):
                self._offer(subscriber, event)

    def _offer(self, subscriber: _Subscriber, event: CaseEvent) -> None:
        """Queue ``event`` if the subscriber may see it. If not, but its agency's systems may
        have referred the case on since their referrals were read, hold it (and every later
        event, to keep the order) until they are read again."""
        if not self._passes_filters(subscriber, event):
            return
        waits_for = 0
        if not self._may_see(subscriber, event):
            referrals = self._refresher(subscriber, event.record.source)
            if referrals is None:
                return
            waits_for = referrals.request()
        if not waits_for and not subscriber.held:
            _put(subscriber, event)
        elif len(subscriber.held) + subscriber.queue.qsize() >= self.queue_size:
            _cut_off(subscriber)
        else:
            subscriber.held.append((event, waits_for))

    def _refresher(self, subscriber: _Subscriber, source: str) -> AgencyReferrals | None:
        """The subscriber's agency's referrals, when reading them again could show a case of
        ``source``; None when it could not."""
        access = subscriber.where.access
        if access is None:
            return None
        referrals = self._referrals.get(access.agency)
        if referrals is None:
            referrals = AgencyReferrals(self.federation, access.agency, self._release)
            self._referrals[access.agency] = referrals
        return referrals if referrals.could_reveal(source) else None

    def _release(self, referrals: AgencyReferrals) -> None:
        """After a refresh of ``referrals``: queue, in order, what its agency's subscribers held
        for it, judged by the list as it now is (the previous one if the refresh failed)."""
        for subscriber in list(self._subscribers):
            access = subscriber.where.access
            if access is None or access.agency != referrals.agency:
                continue
            while subscriber.held and not subscriber.overflowed:
                event, waits_for = subscriber.held[0]
                if waits_for > referrals.finished:
                    break
                subscriber.held.popleft()
                if not waits_for or self._may_see(subscriber, event):
                    _put(subscriber, event)

    def _end(self, subscriber: _Subscriber) -> None:
        """End ``subscriber``'s stream after what it has queued. Events it holds for a refresh
        of its agency's referrals are judged by the list as it is: a resumed subscription reads
        them again."""
        subscriber.ended = True
        held, subscriber.held = subscriber.held, deque()
        for event, waits_for in held:
            if not waits_for or self._may_see(subscriber, event):
                _put(subscriber, event)
        _end(subscriber)

    def subscribe(
        self, where: CaseFilter, after: str | None, referred_to: frozenset[str] | None = None
    ) -> AsyncIterator[CaseEvent]:
        """Events matching ``where``, resumed after the event id ``after`` when given.

        The subscriber is registered before this returns, so no change made after the call is
        missed; a bad ``after`` raises ValueError here.
        """
        resume = decode_token(after) if after is not None else None
        queue: asyncio.Queue[CaseEvent | None] = asyncio.Queue(maxsize=self.queue_size)
        subscriber = _Subscriber(
            where, where.agencies, referred_to, queue, shared_by=SHARED_BY.get()
        )
        self._subscribers.add(subscriber)
        if self._closing:
            self._end(subscriber)
        return self._stream(subscriber, resume)

    async def _stream(
        self, subscriber: _Subscriber, resume: dict[str, Position] | None
    ) -> AsyncIterator[CaseEvent]:
        try:
            if resume is not None:
                async for replayed in self._replay(subscriber, resume):
                    yield replayed
            while True:
                event = await subscriber.queue.get()
                if event is None:
                    if subscriber.overflowed:
                        raise SubscriberTooSlow(
                            f"subscriber fell more than {self.queue_size} events behind and was "
                            "cut off; reconnect with after: the id of the last event received"
                        )
                    if subscriber.interrupted:
                        raise EventsInterrupted(
                            "this gateway lost its event bus connection and may have missed "
                            "events; subscribe again with after: the id of the last event received"
                        )
                    return
                key = (event.record.source, event.record.local_id, event.at.isoformat())
                if key in subscriber.delivered:
                    continue
                yield event
        finally:
            self._subscribers.discard(subscriber)

    async def _replay(
        self, subscriber: _Subscriber, resume: dict[str, Position]
    ) -> AsyncIterator[CaseEvent]:
        """What each source changed after the resumed watermark, up to now, oldest first."""
        positions = dict(resume)
        for source_id, since in resume.items():
            source = self.federation.get(source_id)
            if source is None:
                continue
            records = await changes_after(source, since, REPLAY_LIMIT + 1)
            if len(records) > REPLAY_LIMIT:
                raise ResumeError(
                    f"more than {REPLAY_LIMIT} changes in {source_id} since that event; "
                    "start a new subscription without after"
                )
            details = await self._details(source_id, records)
            for record in records:
                positions[source_id] = position_of(record)
                key = (record.source, record.local_id, record.updated_at.isoformat())
                subscriber.delivered.add(key)
                referred_to = details.referrals.get(record.local_id, ())
                event = CaseEvent(
                    encode_token(positions), ChangeKind.UPDATED, record, None, referred_to
                )
                if self._matches(subscriber, event):
                    yield event


def _put(subscriber: _Subscriber, event: CaseEvent) -> None:
    try:
        subscriber.queue.put_nowait(event)
    except asyncio.QueueFull:
        _cut_off(subscriber)


def _cut_off(subscriber: _Subscriber) -> None:
    """The subscriber fell too far behind: what it has not read is dropped, its stream ends
    with SubscriberTooSlow (it resumes with ``after`` and is sent that again)."""
    subscriber.overflowed = True
    subscriber.held.clear()
    subscriber.queue = asyncio.Queue(maxsize=1)
    subscriber.queue.put_nowait(None)


def _end(subscriber: _Subscriber) -> None:
    """Queue the end of ``subscriber``'s stream; when its queue is full, in place of what it
    has not read (it resumes with ``after`` and is sent that again)."""
    try:
        subscriber.queue.put_nowait(None)
    except asyncio.QueueFull:
        subscriber.queue = asyncio.Queue(maxsize=1)
        subscriber.queue.put_nowait(None)
