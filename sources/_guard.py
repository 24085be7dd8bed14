"""The guard around every source: deadline, concurrency bound, retries, circuit breaker, health.

Retries (tenacity) apply to reads that failed for availability (unreachable, timed out), with
jittered exponential backoff; a write is sent once (the outbox, gateway/outbox.py, resends it
later under the same idempotency key). The circuit breaker (circuitbreaker) opens after a run of
such failures and then refuses calls at once, with SOURCE_UNAVAILABLE, until its recovery time has
passed and a trial call succeeds. Every attempt is reported to the round-trip observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from circuitbreaker import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    CircuitBreaker,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from sources._abilities import AsksTogether, TogetherKey
from sources._bulkhead import Bulkhead
from sources._deadline import Deadline, current_caller, current_deadline
from sources._errors import (
    CircuitOpen,
    SourceBusy,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from sources._interface import Capabilities, Problem, Source, SourceHealth
from sources._model import (
    CanonicalStatus,
    CaseRecord,
    ComplainantRecord,
    ReferralRecord,
    TimelineEntry,
)
from sources._query import CaseFilter, CaseOrder, Position
from sources._settings import Resilience
from sources._stats import CaseStats, Dimension
from sources._writes import NewCase, OutgoingReferral

T = TypeVar("T")

_AVAILABILITY = (SourceUnavailable, SourceTimeout)


class _NoSlot(SourceBusy):
    """No slot of the bulkhead came free in time: the call was never made, so it is neither
    observed as a round trip nor counted against the source."""


_CIRCUIT_NAMES = {STATE_CLOSED: "CLOSED", STATE_OPEN: "OPEN", STATE_HALF_OPEN: "HALF_OPEN"}


class _Backoff(wait_base):
    """Exponential backoff with jitter (as tenacity's ``wait_exponential_jitter``), drawn from
    a generator of its own: the process-wide ``random`` stream stays untouched by retries in
    background pollers, so nothing else that seeds or replays it (a property test drawing its
    examples, say) sees it move."""

    _jitter = random.Random()

    def __init__(self, initial: float, most: float) -> None:
        self.initial = initial
        self.most = most

    def __call__(self, retry_state: RetryCallState) -> float:
        exponential: float = self.initial * 2.0 ** (retry_state.attempt_number - 1)
        return max(0.0, min(exponential + self._jitter.uniform(0, self.initial), self.most))


class RoundTripObserver(Protocol):
    def __call__(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None: ...


def _ignore(source: str, operation: str, seconds: float, batch_size: int, ok: bool) -> None:
    return None


async def _awaited(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


async def _settle(work: asyncio.Task[T], deadline: Deadline | None, again_after: float) -> None:
    """Give a cancelled call the time the request can spare to clean up (close its connection);
    past that it is left to finish alone, cancelled once more after ``again_after`` s."""
    loop = asyncio.get_running_loop()
    spare = 1.0 if deadline is None else max(0.0, deadline.last_moment() - loop.time())
    done, _ = await asyncio.wait({work}, timeout=spare)
    if not done:
        loop.call_later(again_after, work.cancel)
    work.add_done_callback(_retrieve)


def _retrieve(work: asyncio.Task[Any]) -> None:
    """An abandoned call's outcome is nobody's: read it so asyncio does not log it."""
    if not work.cancelled():
        work.exception()


_LEAST_FOR_RETRY = 0.05
"""Seconds a retry needs before the margin, at the least, to be worth starting."""


class _OutOfTime(stop_base):
    """Stop retrying when the backoff would not leave a retry time before the deadline.

    Checked before the backoff's sleep; a sleep that ends late (a busy event loop) is checked
    again by the retry itself (:meth:`Guarded._with_retries`)."""

    def __init__(self, deadline: Deadline | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return self.deadline.left() < retry_state.upcoming_sleep + _LEAST_FOR_RETRY


class Guarded(Source):
    """Delegates to ``inner`` under the source's timeout and resilience settings."""

    def __init__(
        self,
        inner: Source,
        timeout_seconds: float,
        resilience: Resilience | None = None,
        observe: RoundTripObserver = _ignore,
    ) -> None:
        self.inner = inner
        self.id = inner.id
        self.kind = inner.kind
        self.agency = inner.agency
        self.timeout_seconds = timeout_seconds
        self.resilience = resilience or Resilience()
        self.observe = observe
        per_caller = self.resilience.max_concurrency_per_caller
        self._gate = Bulkhead(
            self.resilience.max_concurrency,
            per_caller if per_caller is not None else max(1, self.resilience.max_concurrency // 2),
        )
        self._breaker = CircuitBreaker(
            failure_threshold=self.resilience.circuit_failure_threshold,
            recovery_timeout=self.resilience.circuit_recovery_seconds,
            expected_exception=_AVAILABILITY,
            name=f"source:{inner.id}",
        )
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_success_at: datetime | None = None
        self._last_latency: float | None = None
        self._last_ok: bool | None = None
        self._trial_connections = False
        self._together = inner if isinstance(inner, AsksTogether) else None

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def health(self) -> SourceHealth:
        circuit = _CIRCUIT_NAMES.get(self._breaker.state, str(self._breaker.state).upper())
        if circuit == "OPEN" or self._last_ok is False:
            status = "DOWN"
        elif self._last_ok is None:
            status = "UNKNOWN"
        else:
            status = "UP"
        return SourceHealth(
            status=status,
            circuit=circuit,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            last_success_at=self._last_success_at,
            last_latency_seconds=self._last_latency,
        )

    async def _call(
        self,
        operation: str,
        batch_size: int,
        call: Callable[[], Awaitable[T]],
        retries: int | None = None,
    ) -> T:
        """``call`` under the circuit, the deadline and the bulkhead, retried ``retries``
        times (None: ``resilience.retries``)."""
        state = self._breaker.state
        if state == STATE_OPEN:
            self._trial_connections = False
            remaining = max(self._breaker.open_remaining, 0)
            raise CircuitOpen(
                self.id,
                f"circuit open after {self.resilience.circuit_failure_threshold} failures in a "
                f"row (last: {self._last_error}); next trial in {remaining:.0f} s",
                retry_after=remaining,
            )
        if state == STATE_HALF_OPEN and not self._trial_connections:
            # The trial goes out on fresh connections, never on one the failures left behind.
            self._trial_connections = True
            self.inner.refresh_connections()
        # The breaker is told the outcome here rather than wrapping the call (call_async): it
        # would take a cancellation (the request's deadline, a client gone) or a wait for a
        # free slot as a success and close the circuit, so a source that hangs every request
        # until its deadline never had its circuit opened.
        deadline = current_deadline()
        if deadline is not None and self.id in deadline.timed_out:
            raise SourceBusy(
                self.id, f"no answer earlier in this request; not asked again ({operation})"
            )
        try:
            result = await self._with_retries(
                operation,
                batch_size,
                call,
                deadline,
                self.resilience.retries if retries is None else retries,
            )
        except SourceBusy:
            raise  # our own congestion: says nothing about the agency
        except _AVAILABILITY as failure:
            self._verdict(failure)
            if deadline is not None and isinstance(failure, SourceTimeout):
                deadline.timed_out.add(self.id)
            raise
        except SourceError:
            self._verdict(None)  # it answered, if wrongly
            raise
        self._verdict(None)
        return result

    def _verdict(self, failure: SourceError | None) -> None:
        """Count ``failure`` towards opening the circuit, or close it after an answer."""
        with contextlib.suppress(SourceError), self._breaker:
            if failure is not None:
                raise failure

    async def _with_retries(
        self,
        operation: str,
        batch_size: int,
        call: Callable[[], Awaitable[T]],
        deadline: Deadline | None,
        retries: int,
    ) -> T:
        """The first attempt straight away; tenacity takes over only once it has failed for
        availability (building its retry state for every round trip cost two percent of a
        dashboard page). Tenacity is handed that failure as its own first attempt, so the
        number of attempts and the waits between them are as if it had made every one.

        Under a request's deadline every attempt, and every wait between them, fits in what is
        left of it: no retry is started that could not end before the deadline. Retries never
        use the margin: when the backoff's sleep ends later than asked (a busy event loop) with
        too little left, the last attempt's failure is the answer, not a retry squeezed into
        the margin by :meth:`Deadline.for_call`."""
        try:
            return await self._attempt(operation, batch_size, call, deadline)
        except SourceBusy:
            raise
        except _AVAILABILITY as failure:
            if retries == 0:
                raise
            first: list[BaseException] = [failure]
            last: list[BaseException] = [failure]

        async def again() -> T:
            if first:
                raise first.pop()  # the attempt above, already made and observed
            if deadline is not None and deadline.left() < _LEAST_FOR_RETRY:
                raise last[0]  # woke too late for a retry: tenacity stops (_OutOfTime)
            try:
                return await self._attempt(operation, batch_size, call, deadline)
            except _AVAILABILITY as failure:
                last[0] = failure
                raise

        retrying = AsyncRetrying(
            stop=stop_after_attempt(retries + 1) | _OutOfTime(deadline),
            wait=_Backoff(self.resilience.retry_initial_seconds, self.resilience.retry_max_seconds),
            retry=retry_if_exception_type(_AVAILABILITY) & retry_if_not_exception_type(SourceBusy),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await again()
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _attempt(
        self,
        operation: str,
        batch_size: int,
        call: Callable[[], Awaitable[T]],
        deadline: Deadline | None,
    ) -> T:
        loop = asyncio.get_running_loop()
        limit = self.timeout_seconds
        if deadline is not None:
            limit = min(limit, deadline.for_call())
        if limit <= 0:
            raise SourceBusy(self.id, f"no time left before the request's deadline ({operation})")
        ends = loop.time() + limit
        started = time.perf_counter()
        no_slot = (
            f"no free slot before the request's deadline ({operation}): "
            f"{self._gate.size} round trips already in flight or waiting "
            "(resilience.max_concurrency)"
        )
        try:
            result = await self._in_slot(call, ends, deadline, no_slot)
        except _NoSlot:
            raise
        except TimeoutError:
            if deadline is not None and limit < self.timeout_seconds:
                said = (
                    f"no answer before the request's deadline ({deadline.seconds:g} s, "
                    f"{max(limit, 0):.1f} s of it left for this call; {operation})"
                )
            else:
                said = f"no answer within {self.timeout_seconds:g} s ({operation})"
            error: SourceError = SourceTimeout(self.id, said)
            self._failed(operation, started, batch_size, error)
            raise error from None
        except SourceError as exc:
            self._failed(operation, started, batch_size, exc)
            raise
        seconds = time.perf_counter() - started
        self._last_ok, self._last_latency = True, seconds
        self._last_success_at = datetime.now(UTC)
        self.observe(self.id, operation, seconds, batch_size, True)
        return result

    async def _in_slot(
        self, call: Callable[[], Awaitable[T]], ends: float, deadline: Deadline | None, busy: str
    ) -> T:
        """``call`` in one slot of the bulkhead, waited for until ``ends`` (loop time):
        :class:`_NoSlot` (``busy``) when no slot comes free by then, TimeoutError when no
        answer does.

        The call runs in a task of its own so that its answer, not its clean-up, is what the
        deadline bounds: a cancelled statement whose connection must be reset through a
        stalled network would otherwise hold the whole request past its deadline."""
        caller = current_caller()
        try:
            async with asyncio.timeout_at(ends):
                await self._gate.acquire(caller)
        except TimeoutError:
            raise _NoSlot(self.id, busy) from None
        work = asyncio.get_running_loop().create_task(_awaited(call))
        try:
            async with asyncio.timeout_at(ends):
                return await asyncio.shield(work)
        except BaseException:
            if not work.done():
                work.cancel()
                await _settle(work, deadline, self.timeout_seconds)
            raise
        finally:
            self._gate.release(caller)

    def _failed(self, operation: str, started: float, batch_size: int, error: SourceError) -> None:
        seconds = time.perf_counter() - started
        if isinstance(error, _AVAILABILITY):
            self._last_ok = False
        self._last_error, self._last_error_at = error.detail, datetime.now(UTC)
        self._last_latency = seconds
        self.observe(self.id, operation, seconds, batch_size, False)

    async def open(self) -> None:
        await self._call("open", 1, self.inner.open)

    async def close(self) -> None:
        await self.inner.close()

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        return await self._call(
            "load_cases", len(local_ids), lambda: self.inner.load_cases(local_ids)
        )

    async def load_cases_carrying(
        self, local_ids: Sequence[str], carry: frozenset[str]
    ) -> Mapping[str, CaseRecord]:
        return await self._call(  # one round trip of load_cases, as the metrics count it
            "load_cases", len(local_ids), lambda: self.inner.load_cases_carrying(local_ids, carry)
        )

    async def load_cases_by_reference(self, references: Sequence[str]) -> Mapping[str, CaseRecord]:
        return await self._call(
            "load_cases_by_reference",
            len(references),
            lambda: self.inner.load_cases_by_reference(references),
        )

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        return await self._call(
            "search_cases", 1, lambda: self.inner.search_cases(where, order, after, limit, fields)
        )

    async def count_cases(self, where: CaseFilter) -> int:
        return await self._call("count_cases", 1, lambda: self.inner.count_cases(where))

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats:
        return await self._call(
            "case_stats", 1, lambda: self.inner.case_stats(where, dimensions, now)
        )

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        return await self._call(
            "load_timelines", len(local_ids), lambda: self.inner.load_timelines(local_ids)
        )

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        return await self._call(
            "load_referrals", len(local_ids), lambda: self.inner.load_referrals(local_ids)
        )

    async def load_complainants(self, local_ids: Sequence[str]) -> Mapping[str, ComplainantRecord]:
        return await self._call(
            "load_complainants", len(local_ids), lambda: self.inner.load_complainants(local_ids)
        )

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]:
        return await self._call(
            "cases_by_complainant",
            len(citizen_keys),
            lambda: self.inner.cases_by_complainant(citizen_keys),
        )

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        return await self._call(
            "find_referrals_to",
            len(references),
            lambda: self.inner.find_referrals_to(agency, references),
        )

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        return await self._call("referred_references", 1, self.inner.referred_references)

    async def listen_for_changes(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        return await self.inner.listen_for_changes(wake)

    def observe_http(self, observer: Callable[[str], None]) -> None:
        self.inner.observe_http(observer)

    def refresh_connections(self) -> None:
        self.inner.refresh_connections()

    async def check(self) -> list[Problem]:
        return await self.inner.check()

    def takes(self, step: str) -> bool:
        return self.inner.takes(step)

    async def create_case(self, case: NewCase, key: str) -> str:
        return await self._call(
            "create_case", 1, lambda: self.inner.create_case(case, key), retries=0
        )

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        await self._call(
            "set_status",
            1,
            lambda: self.inner.set_status(local_id, status, note, at, key),
            retries=0,
        )

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        await self._call(
            "record_referral",
            1,
            lambda: self.inner.record_referral(local_id, referral, key),
            retries=0,
        )

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        await self._call(
            "add_note", 1, lambda: self.inner.add_note(local_id, note, at, key), retries=0
        )

    # -- asked with others in one statement (sources._abilities.AsksTogether) -----------------

    def together_key(self) -> TogetherKey | None:
        """The inner source's, while its circuit is closed and it has not timed out in this
        request: a source refusing calls, or on trial, is asked alone, as it would be."""
        if self._together is None or self._breaker.state != STATE_CLOSED:
            return None
        deadline = current_deadline()
        if deadline is not None and self.id in deadline.timed_out:
            return None
        return self._together.together_key()

    async def search_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None,
    ) -> list[list[CaseRecord]]:
        inner, inners = self._together, _inners(members)
        assert inner is not None
        return await self._call_together(
            "search_cases",
            members,
            lambda: inner.search_together(inners, where, order, after, limit, fields),
        )

    async def count_together(self, members: Sequence[AsksTogether], where: CaseFilter) -> list[int]:
        inner, inners = self._together, _inners(members)
        assert inner is not None
        return await self._call_together(
            "count_cases", members, lambda: inner.count_together(inners, where)
        )

    async def stats_together(
        self,
        members: Sequence[AsksTogether],
        where: CaseFilter,
        dimensions: Sequence[Dimension],
        now: datetime,
    ) -> list[CaseStats]:
        inner, inners = self._together, _inners(members)
        assert inner is not None
        return await self._call_together(
            "case_stats", members, lambda: inner.stats_together(inners, where, dimensions, now)
        )

    async def _call_together(
        self, operation: str, members: Sequence[AsksTogether], call: Callable[[], Awaitable[T]]
    ) -> T:
        """One statement for ``members``: within the shortest of their timeouts and half of
        what is left of the request (the other half is for asking each alone, should this
        fail: :class:`sources._federation.Federation` does), in one slot of this source's
        bulkhead, never retried. Its outcome counts for no member's circuit, as no member
        alone failed; an answer is each member's success. Observed as one round trip named
        ``together:<database>``, ``batch_size`` the members asked."""
        key = self.together_key()
        name = f"together:{key.database if key is not None else self.id}"
        guarded = [member for member in members if isinstance(member, Guarded)]
        limit = min([self.timeout_seconds, *(member.timeout_seconds for member in guarded)])
        deadline = current_deadline()
        if deadline is not None:
            limit = min(limit, deadline.for_call() / 2)
        if limit <= 0:
            raise SourceBusy(self.id, f"no time left to ask {len(members)} sources together")
        ends = asyncio.get_running_loop().time() + limit
        started = time.perf_counter()
        ok = sent = False
        try:
            result = await self._in_slot(
                call, ends, deadline, "no free slot to ask sources together"
            )
            sent = ok = True
        except _NoSlot:
            raise  # never sent: no round trip to observe
        except TimeoutError:
            sent = True
            raise SourceTimeout(
                self.id, f"no answer within {limit:.1f} s asking {len(members)} sources together"
            ) from None
        except BaseException:
            sent = True
            raise
        finally:
            if sent:
                self.observe(name, operation, time.perf_counter() - started, len(members), ok)
        seconds = time.perf_counter() - started
        for member in guarded:
            member._answered(seconds)
        return result

    def _answered(self, seconds: float) -> None:
        """This source answered within a statement asked of several: as a call of its own."""
        self._verdict(None)
        self._last_ok, self._last_latency = True, seconds
        self._last_success_at = datetime.now(UTC)


def _inners(members: Sequence[AsksTogether]) -> list[AsksTogether]:
    """The sources the guards of ``members`` wrap: one statement is sent for them all."""
    inners: list[AsksTogether] = []
    for member in members:
        inner = member._together if isinstance(member, Guarded) else member
        assert inner is not None, "a member without a key is never in a group"
        inners.append(inner)
    return inners
