"""One budget of database connections, shared by every SQL source of a gateway.

A hundred SQL sources each with a pool of five may open five hundred connections, more than a
PostgreSQL server accepts (100 by default), and a hundred idle pools would hold them all day.
So the gateway, not each source, owns the connection pools:

- sources reading the same database (the same URL and pool settings) share one engine and
  its pool, as a hundred provincial schemas on one server would;
- a pool grows under demand and gives its connections back once it has been idle for
  ``idle_seconds`` (its engine is disposed; the next read opens a connection again);
- with a ``limit``, at most that many connections are in use at once, and at most that many
  are open at once: a read that needs a new connection while the budget is full first closes
  the idle connections of the pool used longest ago, or waits for one to come free (within
  its source's deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

DEFAULT_IDLE_SECONDS = 60.0


@dataclass(eq=False)
class _Pool:
    """One shared engine: who uses it, its connections in use, when it was last used."""

    engine: AsyncEngine
    key: Hashable
    users: int = 0
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)
    disposing: asyncio.Event | None = None
    closing: int = 0
    """Connections being closed by a disposal: open until the server has let them go."""
    expiry: asyncio.TimerHandle | None = None

    def idle(self) -> int:
        """Connections open in the pool and not in use (a pool without a queue keeps none)."""
        pool = self.engine.sync_engine.pool
        return pool.checkedin() if isinstance(pool, QueuePool) else 0


class ConnectionBudget:
    """At most ``limit`` connections in use and open at once (None: no bound but each pool's
    own), pools shared by database, idle ones closed; ``peak`` is the most in use seen."""

    def __init__(self, limit: int | None = None, idle_seconds: float = DEFAULT_IDLE_SECONDS):
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.in_use = 0
        self.peak = 0
        self.peak_open = 0
        self._pools: dict[Hashable, _Pool] = {}
        self._by_engine: dict[int, _Pool] = {}
        self._slots: asyncio.Semaphore | None = None
        self._freed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disposals: set[asyncio.Task[None]] = set()

    def engine(self, key: Hashable, make: Callable[[], AsyncEngine]) -> AsyncEngine:
        """The engine for ``key`` (a database URL with its pool settings): made by ``make``
        for its first user, shared with every later one until all have released it."""
        pool = self._pools.get(key)
        if pool is None:
            pool = _Pool(make(), key)
            self._pools[key] = pool
            self._by_engine[id(pool.engine)] = pool
        pool.users += 1
        return pool.engine

    async def release(self, engine: AsyncEngine) -> None:
        """A user is done with ``engine``; the last one closes its connections."""
        pool = self._by_engine.get(id(engine))
        if pool is None or pool.engine is not engine:
            await engine.dispose()  # not from this budget
            return
        pool.users -= 1
        if pool.users > 0:
            return
        del self._pools[pool.key], self._by_engine[id(engine)]
        if pool.expiry is not None:
            pool.expiry.cancel()
        while pool.disposing is not None:
            await pool.disposing.wait()
        await engine.dispose()

    @property
    def pools(self) -> int:
        """Shared pools (databases with their pool settings) in use by some source."""
        return len(self._pools)

    def open_connections(self) -> int:
        """Connections open now across the shared pools: in use (or being opened) and idle."""
        return sum(pool.in_use + pool.idle() + pool.closing for pool in self._pools.values())

    @contextlib.asynccontextmanager
    async def connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A connection of ``engine`` within the budget, given back to its pool after."""
        pool = self._by_engine.get(id(engine))
        if pool is None or pool.engine is not engine:
            async with self.slot(), engine.connect() as connection:
                yield connection
            return
        self._bind_loop()
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        self._enter()
        try:
            if slots is not None or pool.disposing is not None:
                await self._room_for(pool)
            # No await from the check above to the pool's checkout: what it saw still holds.
            if pool.idle() == 0:  # summed over every pool only when this one opens one
                self.peak_open = max(self.peak_open, self.open_connections() + 1)
            pool.in_use += 1
            try:
                async with engine.connect() as connection:
                    yield connection
            finally:
                pool.in_use -= 1
                pool.last_used = time.monotonic()
                if pool.expiry is None and pool.key in self._pools:
                    loop = asyncio.get_running_loop()
                    pool.expiry = loop.call_later(self.idle_seconds, self._expire, pool)
                if slots is not None:
                    self._signal_freed()
        finally:
            self.in_use -= 1
            if slots is not None:
                slots.release()

    async def _room_for(self, pool: _Pool) -> None:
        """Wait until ``pool`` may hand out a connection: not while it is being closed, and,
        when it would have to open one, not beyond the limit of open connections."""
        while True:
            if pool.disposing is not None:
                await pool.disposing.wait()
                continue
            if self.limit is None or pool.idle() > 0 or self.open_connections() < self.limit:
                return
            victim = self._least_recently_used_idle(pool)
            if victim is not None:
                await self._dispose(victim)
            else:
                await self._wait_freed()

    def _least_recently_used_idle(self, wanting: _Pool) -> _Pool | None:
        idle = [
            pool
            for pool in self._pools.values()
            if pool is not wanting and pool.in_use == 0 and pool.disposing is None and pool.idle()
        ]
        return min(idle, key=lambda pool: pool.last_used, default=None)

    async def _dispose(self, pool: _Pool) -> None:
        """Close the idle pool's connections; its users wait meanwhile, then open anew. The
        closing runs in a task of its own: a read cancelled while it waits (its deadline)
        does not leave a pool half closed."""
        self._disposing(pool)
        await asyncio.shield(self._closing(pool))

    def _closing(self, pool: _Pool) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._close_idle(pool))
        self._disposals.add(task)
        task.add_done_callback(self._disposals.discard)
        return task

    def _disposing(self, pool: _Pool) -> None:
        """From now on, reads of ``pool`` wait (set before any await: a read that got its
        connection in between would hand it back to the pool replaced, never closed)."""
        if pool.expiry is not None:
            pool.expiry.cancel()
            pool.expiry = None
        pool.disposing = asyncio.Event()
        pool.closing = pool.idle()

    async def _close_idle(self, pool: _Pool) -> None:
        assert pool.disposing is not None
        try:
            await pool.engine.dispose()
        finally:
            pool.closing = 0
            pool.disposing.set()
            pool.disposing = None
            self._signal_freed()

    def _expire(self, pool: _Pool) -> None:
        """Once idle for ``idle_seconds``, the pool's connections are closed (in a task of the
        budget's); used meanwhile, it is looked at again when that time has passed since."""
        pool.expiry = None
        if pool.disposing is not None or pool.key not in self._pools:
            return
        loop = asyncio.get_running_loop()
        unused = time.monotonic() - pool.last_used
        if pool.in_use or unused < self.idle_seconds:
            wait = self.idle_seconds - unused if not pool.in_use else self.idle_seconds
            pool.expiry = loop.call_later(max(wait, 0.0), self._expire, pool)
            return
        self._disposing(pool)
        self._closing(pool)

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
        self._bind_loop()
        assert self._slots is not None
        return self._slots

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.limit) if self.limit is not None else None
            self._freed = None
            for pool in self._pools.values():  # timers of a loop that has ended never fire
                pool.expiry = None

    async def _wait_freed(self) -> None:
        self._bind_loop()
        if self._freed is None:
            self._freed = asyncio.Event()
        await self._freed.wait()

    def _signal_freed(self) -> None:
        """Wake every read waiting for room: each checks again whether it may go."""
        if self._freed is not None:
            self._freed.set()
            self._freed = None


@runtime_checkable
class UsesConnections(Protocol):
    """A source that holds database connections, and so takes part in the gateway's budget."""

    budget: ConnectionBudget
