"""Slots for a source's round trips, shared fairly between callers.

Each source takes at most ``max_concurrency`` round trips at once (the agency's own capacity,
and the gateway's pool for it). One caller may hold at most ``max_concurrency_per_caller`` of
them, so a caller who sends a document of thirty aliases, each reading a whole agency, cannot
take every slot: another caller's request still finds one free. Waiting for a slot is bounded
by whoever waits (the guard waits at most until the request's deadline).
"""

from __future__ import annotations

import asyncio
from collections import Counter


class Bulkhead:
    def __init__(self, size: int, per_caller: int | None = None) -> None:
        self.size = size
        self.per_caller = size if per_caller is None else max(1, min(per_caller, size))
        self._in_flight = 0
        self._by_caller: Counter[str | None] = Counter()
        self._waiters: list[asyncio.Future[None]] = []

    def _free(self, caller: str | None) -> bool:
        if self._in_flight >= self.size:
            return False
        # work of no caller's (event pollers, start-up checks) has only the overall bound
        return caller is None or self._by_caller[caller] < self.per_caller

    async def acquire(self, caller: str | None) -> None:
        """Take a slot for ``caller``, waiting until one it may take is free (a caller at its
        share waits even when others' slots are free; one under its share never waits behind
        it); cancel the wait to give up."""
        while not self._free(caller):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self._in_flight += 1
        self._by_caller[caller] += 1

    def release(self, caller: str | None) -> None:
        self._in_flight -= 1
        self._by_caller[caller] -= 1
        if self._by_caller[caller] <= 0:
            del self._by_caller[caller]
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def in_flight(self) -> int:
        return self._in_flight
