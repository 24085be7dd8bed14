"""The guard around every source: deadline, concurrency bound, retries, circuit breaker, health.

Retries (tenacity) apply to reads that failed for availability (unreachable, timed out), with
jittered exponential backoff. The circuit breaker (circuitbreaker) opens after a run of such
failures and then refuses calls at once, with SOURCE_UNAVAILABLE, until its recovery time has
passed and a trial call succeeds. Every attempt is reported to the round-trip observer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from circuitbreaker import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    CircuitBreaker,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sources._errors import SourceError, SourceTimeout, SourceUnavailable
from sources._interface import Capabilities, Problem, Source, SourceHealth
from sources._model import CaseRecord, ComplainantRecord, ReferralRecord, TimelineEntry
from sources._query import CaseFilter, CaseOrder, Position
from sources._settings import Resilience
from sources._stats import CaseStats, Dimension

T = TypeVar("T")

_AVAILABILITY = (SourceUnavailable, SourceTimeout)
_CIRCUIT_NAMES = {STATE_CLOSED: "CLOSED", STATE_OPEN: "OPEN", STATE_HALF_OPEN: "HALF_OPEN"}


class RoundTripObserver(Protocol):
    def __call__(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None: ...


def _ignore(source: str, operation: str, seconds: float, batch_size: int, ok: bool) -> None:
    return None


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
        self._gate = asyncio.Semaphore(self.resilience.max_concurrency)
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

    async def _call(self, operation: str, batch_size: int, call: Callable[[], Awaitable[T]]) -> T:
        # call_async records outcomes but does not refuse calls itself: the refusal is ours.
        state = self._breaker.state
        if state == STATE_OPEN:
            self._trial_connections = False
            remaining = max(self._breaker.open_remaining, 0)
            raise SourceUnavailable(
                self.id,
                f"circuit open after {self.resilience.circuit_failure_threshold} failures in a "
                f"row (last: {self._last_error}); next trial in {remaining:.0f} s",
            )
        if state == STATE_HALF_OPEN and not self._trial_connections:
            # The trial goes out on fresh connections, never on one the failures left behind.
            self._trial_connections = True
            self.inner.refresh_connections()
        result: T = await self._breaker.call_async(self._with_retries, operation, batch_size, call)
        return result

    async def _with_retries(
        self, operation: str, batch_size: int, call: Callable[[], Awaitable[T]]
    ) -> T:
        """The first attempt straight away; tenacity takes over only once it has failed for
        availability (building its retry state for every round trip cost two percent of a
        dashboard page). Tenacity is handed that failure as its own first attempt, so the
        number of attempts and the waits between them are as if it had made every one."""
        try:
            return await self._attempt(operation, batch_size, call)
        except _AVAILABILITY as failure:
            if self.resilience.retries == 0:
                raise
            first: list[BaseException] = [failure]

        async def again() -> T:
            if first:
                raise first.pop()  # the attempt above, already made and observed
            return await self._attempt(operation, batch_size, call)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.resilience.retries + 1),
            wait=wait_exponential_jitter(
                multiplier=self.resilience.retry_initial_seconds,
                max=self.resilience.retry_max_seconds,
                jitter=self.resilience.retry_initial_seconds,
            ),
            retry=retry_if_exception_type(_AVAILABILITY),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await again()
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _attempt(
        self, operation: str, batch_size: int, call: Callable[[], Awaitable[T]]
    ) -> T:
        async with self._gate:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    result = await call()
            except TimeoutError:
                error: SourceError = SourceTimeout(
                    self.id, f"no answer within {self.timeout_seconds:g} s ({operation})"
                )
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
