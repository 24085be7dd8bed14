"""Connections that heal: a request cancelled or timed out never leaves the agency's pool wedged
or holding sockets (issue 19, finding 1; encode/httpcore#1093). Against the 1111 sample served
for real on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111
from samples.serving import ThreadedServer
from sources import CaseFilter, SourceTimeout
from sources.rest import RestSettings, RestSource
from tests.conftest import REST_CASES, REST_SEED, DemoData
from tests.resolvers.expected import REST_SOURCE
from tests.sockets import open_to


class Agency:
    """The 1111 sample that can close each connection after answering (as many government
    servers do), hold answers until released, or trickle a long answer byte by byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.close_connections = False
        self.hold = False
        self.trickle = False
        self.received = threading.Event()
        self.release = threading.Event()
        self.trickling = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.received.set()
        if self.hold:
            await asyncio.to_thread(self.release.wait, 30)
        if self.trickle:
            await self._trickle(send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.close_connections:
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)

    async def _trickle(self, send: Send) -> None:
        """70 KB announced, a little sent, then nothing until released: an agency that stalls
        half-way through its answer."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"70000")],
            }
        )
        await send({"type": "http.response.body", "body": b" " * 1000, "more_body": True})
        self.trickling.set()
        await asyncio.to_thread(self.release.wait, 30)
        await send({"type": "http.response.body", "body": b" " * 69_000})


@pytest.fixture
def agency() -> Iterator[tuple[ThreadedServer, Agency]]:
    app = Agency(pmoc_1111.create_app(seed=REST_SEED, count=REST_CASES, api_key=DEMO_PMOC_KEY))
    server = ThreadedServer(app)
    server.start()
    yield server, app
    app.release.set()
    app.trickle = False
    server.stop()


@pytest.fixture
async def source(
    demo_data: DemoData, agency: tuple[ThreadedServer, Agency]
) -> AsyncIterator[RestSource]:
    (settings,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(settings, RestSettings)
    one_connection = settings.model_copy(
        update={"base_url": agency[0].url, "max_connections": 1, "timeout_seconds": 2.0}
    )
    opened = RestSource(one_connection)
    await opened.open()
    yield opened
    await opened.close()


CASE = "PMOC-000001"


async def settled(source: RestSource) -> None:
    transport = source._http.transport  # the test's own view of the source it built
    assert transport is not None
    await transport.settled()


async def test_a_request_cancelled_as_its_connection_is_assigned_does_not_wedge_the_pool(
    source: RestSource, agency: tuple[ThreadedServer, Agency]
) -> None:
    """One connection; a second request waits for it. The first answer closes the connection,
    so the pool opens a new one for the waiting request, which is cancelled at that moment (a
    deadline, a client gone). httpcore 1.0.9 keeps that new connection forever, unowned and
    never connected: every later request waited for the pool and timed out until a restart."""
    server, app = agency
    everything = CaseFilter()
    total = await source.count_cases(everything)  # one request, in the caller's own task
    app.close_connections = True
    app.hold = True
    app.received.clear()
    waiting: asyncio.Task[object] | None = None

    async def first() -> None:
        assert await source.count_cases(everything) == total
        assert waiting is not None
        waiting.cancel()  # in the same step as the first answer: before the waiter runs

    answering = asyncio.create_task(first())
    assert await asyncio.to_thread(app.received.wait, 10)  # the first holds the connection
    waiting = asyncio.create_task(source.count_cases(everything))
    await asyncio.to_thread(app.release.set)  # a thread hop: the waiter is queued by now
    await answering
    with pytest.raises(asyncio.CancelledError):
        await waiting
    app.hold = False

    async with asyncio.timeout(10):  # not a pool timeout: the agency is served
        assert await source.count_cases(everything) == total
    app.close_connections = False
    await settled(source)
    assert open_to(server.port) == {}  # each answer closed its connection; none left over


async def test_requests_cancelled_mid_answer_leave_no_socket_behind(
    source: RestSource, agency: tuple[ThreadedServer, Agency]
) -> None:
    """An agency that trickles its answers; every request is cut off part-way through reading
    (as the request deadline does). Afterwards the agency is served at once and no socket to it
    is left open, in CLOSE-WAIT with unread bytes or otherwise, beyond the one kept alive."""
    server, app = agency
    assert await source.load_cases([CASE])
    baseline = sum(open_to(server.port).values())
    app.trickle = True
    app.release.clear()
    for _ in range(5):
        app.trickling.clear()
        cut = asyncio.create_task(source.load_cases([CASE]))
        assert await asyncio.to_thread(app.trickling.wait, 10)  # reading the body now
        cut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut
    # and once through the client's read timeout (2 s here): a timeout, not a cancellation
    with pytest.raises(SourceTimeout):
        await source.load_cases([CASE])
    app.trickle = False
    app.release.set()

    async with asyncio.timeout(10):
        assert list(await source.load_cases([CASE])) == [CASE]
    await settled(source)
    left = open_to(server.port)
    assert sum(left.values()) <= baseline, left
    assert left["CLOSE_WAIT"] == 0


async def test_a_trial_after_an_open_circuit_uses_a_fresh_connection(
    source: RestSource, agency: tuple[ThreadedServer, Agency]
) -> None:
    """refresh_connections (called by the guard before a circuit's trial) sends the next
    request on a new connection and closes the pooled one."""
    server, _ = agency
    assert await source.load_cases([CASE])
    (before,) = [state for state, n in open_to(server.port).items() for _ in range(n)]
    assert before == "ESTABLISHED"
    source.refresh_connections()
    assert await source.load_cases([CASE])
    await settled(source)
    assert open_to(server.port) == {"ESTABLISHED": 1}
    transport = source._http.transport
    assert transport is not None and transport.renewals == 1
