"""One budget of database connections in use at once, shared by every source of a gateway.

A hundred SQL sources each with a pool of five may open five hundred connections under load,
more than a PostgreSQL server accepts (100 by default) when they share one; the page that
asks them all at once is where that happens. The budget bounds the connections checked out
at the same time across all of them: a read waits for a free slot (within its source's
deadline) rather than open one more. Pools themselves stay small (``pool_size`` kept idle,
``pool_overflow`` more under demand, closed when returned).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable


class ConnectionBudget:
    """At most ``limit`` connections in use at once (None: no bound), and the most seen."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one connection's place while the block uses a connection."""
        if self.limit is None:
            self._enter()
            try:
                yield
            finally:
                self.in_use -= 1
            return
        slots = self._semaphore()
        async with slots:
            self._enter()
            try:
                yield
            finally:
                self.in_use -= 1

    def _enter(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def _semaphore(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop (a test runs several loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            assert self.limit is not None
            self._slots, self._loop = asyncio.Semaphore(self.limit), loop
        return self._slots


@runtime_checkable
class UsesConnections(Protocol):
    """A source that holds database connections, and so takes part in the gateway's budget."""

    budget: ConnectionBudget
