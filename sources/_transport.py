"""An httpx transport whose connection pool is thrown away, never reused, after a cancelled or
timed-out request.

httpcore 1.0.9 (the latest release) can leave a connection in its pool that no request owns and
that is never reclaimed: a request cancelled after the pool assigned it a new connection but
before it used it (encode/httpcore#1093, #658, #830; the fixes are unreleased). Once every slot is
taken that way, every request to the agency waits for the pool and times out while the agency
itself answers at once; only a restart helped. A connection whose request was cancelled mid-read
may also hold an unread answer (CLOSE-WAIT with bytes pending).

Rather than reach into the pool's internals, this wrapper owns *generations* of an ordinary
:class:`httpx.AsyncHTTPTransport`: a request that is cancelled, times out or fails while its
answer is read retires the generation it used. New requests go to a fresh generation at once;
the retired one is closed, every connection in it, as soon as the requests still using it have
finished (or after ``grace_seconds``, whichever comes first). So a connection whose request was
cancelled or timed out is closed, never handed to another request. Only the public transport API
(``handle_async_request``, ``aclose``, :class:`httpx.AsyncByteStream`) is used.

Cancellations are rare (a request past its deadline, a client gone), so losing the other
keep-alive connections of that generation costs little: one TCP handshake each, on loopback or
LAN well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable

import httpx

log = logging.getLogger(__name__)

_SPOILING = (asyncio.CancelledError, httpx.TimeoutException, httpx.TransportError)
"""What leaves a connection in a state nobody should reuse: the request was abandoned half-way,
or the agency stopped talking. (A refused connection is a TransportError too; retiring a pool
with nothing in it costs nothing.)"""


class _Generation:
    """One pool and how many requests (sent, or with an answer not yet closed) still use it."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport
        self.users = 0
        self.retired = False
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.users += 1
        self.idle.clear()

    def leave(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.idle.set()


class HealingTransport(httpx.AsyncBaseTransport):
    """Sends through the current pool; retires a pool once a request on it was spoilt.

    ``make`` is called on the event loop each time a pool is retired, which an agency that
    fails every request does on every request: it must be cheap (one TLS context shared by
    every pool it makes, not a CA bundle read per pool)."""

    def __init__(
        self, make: Callable[[], httpx.AsyncBaseTransport], *, grace_seconds: float = 30.0
    ) -> None:
        self._make = make
        self._grace = grace_seconds
        self._current = _Generation(make())
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: set[_Generation] = set()
        self.renewals = 0
        """Pools retired so far (for tests and metrics)."""

    def renew(self) -> None:
        """Send the next requests on fresh connections; close the current ones once free.

        Called before a source's circuit lets its trial call through, so the trial never runs
        on a connection left over from the failures that opened the circuit."""
        self._retire(self._current)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        generation = self._current
        generation.enter()
        try:
            response = await generation.transport.handle_async_request(request)
        except BaseException as exc:
            if isinstance(exc, _SPOILING):
                self._retire(generation)
            generation.leave()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tracked(response.stream, generation, self._retire),
            extensions=response.extensions,
        )

    def _retire(self, generation: _Generation) -> None:
        if generation.retired:
            return
        generation.retired = True
        self.renewals += 1
        if generation is self._current:
            self._current = _Generation(self._make())
        self._retired.add(generation)
        # In a context of its own: created inside a request, the task would count as that
        # request's work and be cancelled with it at its deadline, leaving the pool unclosed.
        task = asyncio.get_running_loop().create_task(
            self._close_when_idle(generation), context=contextvars.Context()
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_when_idle(self, generation: _Generation) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._grace):
                await generation.idle.wait()
        if generation.users:
            log.warning("closing a retired HTTP pool with %d requests on it", generation.users)
        await _close(generation)
        self._retired.discard(generation)

    async def settled(self) -> None:
        """Wait until every retired pool has been closed (tests, and shutdown)."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every pool, the retired ones still in use included (the source is closing)."""
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._current.retired = True
        for generation in (*self._retired, self._current):
            await _close(generation)
        self._retired.clear()


async def _close(generation: _Generation) -> None:
    try:
        await generation.transport.aclose()
    except Exception:  # a socket already broken: it is being closed anyway
        log.debug("closing a retired HTTP pool failed", exc_info=True)


class _Tracked(httpx.AsyncByteStream):
    """An answer's body: its pool is in use until the body is closed; a body whose reading
    was cancelled or failed spoils the pool."""

    def __init__(
        self,
        stream: httpx.AsyncByteStream,
        generation: _Generation,
        retire: Callable[[_Generation], None],
    ) -> None:
        self._stream = stream
        self._generation = generation
        self._retire = retire
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as exc:
            if isinstance(exc, (*_SPOILING, GeneratorExit)):
                self._retire(self._generation)
                await self.aclose()  # the connection now, not when the response is collected
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._generation.leave()
