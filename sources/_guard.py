"""A wrapper that gives every source a deadline and reports each round trip to an observer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from sources._errors import SourceTimeout
from sources._interface import Capabilities, Problem, Source
from sources._model import CaseRecord, TimelineEntry
from sources._query import CaseFilter, CaseOrder, Position

T = TypeVar("T")


class RoundTripObserver(Protocol):
    def __call__(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None: ...


def _ignore(source: str, operation: str, seconds: float, batch_size: int, ok: bool) -> None:
    return None


class Guarded(Source):
    """Delegates to ``inner`` under its timeout; one observer call per delegated call."""

    def __init__(
        self, inner: Source, timeout_seconds: float, observe: RoundTripObserver = _ignore
    ) -> None:
        self.inner = inner
        self.id = inner.id
        self.kind = inner.kind
        self.agency = inner.agency
        self.timeout_seconds = timeout_seconds
        self.observe = observe

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    async def _call(self, operation: str, batch_size: int, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        ok = False
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await call()
            ok = True
            return result
        except TimeoutError:
            raise SourceTimeout(
                self.id, f"no answer within {self.timeout_seconds:g} s ({operation})"
            ) from None
        finally:
            self.observe(self.id, operation, time.perf_counter() - started, batch_size, ok)

    async def open(self) -> None:
        await self._call("open", 1, self.inner.open)

    async def close(self) -> None:
        await self.inner.close()

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        return await self._call(
            "load_cases", len(local_ids), lambda: self.inner.load_cases(local_ids)
        )

    async def search_cases(
        self, where: CaseFilter, order: CaseOrder, after: Position | None, limit: int
    ) -> list[CaseRecord]:
        return await self._call(
            "search_cases", 1, lambda: self.inner.search_cases(where, order, after, limit)
        )

    async def count_cases(self, where: CaseFilter) -> int:
        return await self._call("count_cases", 1, lambda: self.inner.count_cases(where))

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        return await self._call(
            "load_timelines", len(local_ids), lambda: self.inner.load_timelines(local_ids)
        )

    async def check(self) -> list[Problem]:
        return await self.inner.check()
