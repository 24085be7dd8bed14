"""A source's writes go through its own HTTP client (sources/_http.py), as its reads do: one
pool, so one connection limit and one TLS context, and a write that times out heals the pool
as a read would (its connection is never handed to another request). Against the 1111 sample
(``kind: rest``) and the city platform (``kind: open311``) served for real on loopback; the
server sees which connection each request came on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.demo import DEMO_PMOC_KEY, DEMO_TRAFFY_KEY, demo_config
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer
from sources import CaseFilter, CaseOrder, SourceTimeout, source_class
from sources._http import HttpSource
from sources._writes import NewCase

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
CASE = NewCase(
    title="ถนนทรุดหน้าโรงเรียน",
    description="ถนนทรุดเป็นหลุมลึก",
    category="ROADS",
    received_at=NOW,
    sender_agency="MOI-DDC",
    sender_reference="DDC-2569-000001",
    province_code="40",
    district_code="4001",
    address="หน้าโรงเรียนบ้านโนนทัน",
    latitude=16.4419,
    longitude=102.8359,
)


class Connections:
    """The agency, noting the client port of every request (one port: one connection); with
    ``hold_writes``, a write is answered only once released."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ports: list[tuple[str, int]] = []
        self.hold_writes = False
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope["client"]
            assert client is not None
            self.ports.append((scope["method"], client[1]))
            if self.hold_writes and scope["method"] != "GET":
                receive = await self._held(receive)
        await self.app(scope, receive, send)

    async def _held(self, receive: Receive) -> Receive:
        """The request read whole, then nothing until released; the app reads it after."""
        messages: list[Message] = []
        while not messages or messages[-1].get("more_body"):
            messages.append(await receive())
        await asyncio.to_thread(self.release.wait, 30)
        queued = iter(messages)

        async def replay() -> Message:
            return next(queued, None) or await receive()

        return replay


@pytest.fixture(params=["pmoc-1111", "traffy-city"])
def agency(request: pytest.FixtureRequest) -> Iterator[tuple[str, ThreadedServer, Connections]]:
    if request.param == "pmoc-1111":
        app = pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY, intake=pmoc_1111.Intake())
    else:
        app = traffy.create_app(count=30, api_key=DEMO_TRAFFY_KEY, intake=traffy.Intake())
    connections = Connections(app)
    server = ThreadedServer(connections)
    server.start()
    yield request.param, server, connections
    connections.release.set()
    server.stop()


@pytest.fixture
async def source(
    agency: tuple[str, ThreadedServer, Connections], tmp_path: Path
) -> AsyncIterator[HttpSource]:
    source_id, server, _ = agency
    config = demo_config(
        "postgresql://x@127.0.0.1/x", tmp_path / "p.sqlite", server.url, server.url
    )
    (settings,) = [s for s in config.sources if s.id == source_id]
    assert settings.writes is not None  # type: ignore[attr-defined]
    made = source_class(settings.kind)(settings.model_copy(update={"timeout_seconds": 1.0}))
    assert isinstance(made, HttpSource)
    await made.open()
    yield made
    await made.close()


async def first_case(source: HttpSource) -> str:
    (record,) = await source.search_cases(CaseFilter(), CaseOrder(), None, 1)
    return record.local_id


async def test_reads_and_writes_share_one_connection(
    source: HttpSource, agency: tuple[str, ThreadedServer, Connections]
) -> None:
    """A read, a write, a read of what was written: one keep-alive connection for all three,
    every request counted. A writer with a client of its own opened a second connection, past
    the source's limit, and its requests went uncounted."""
    source_id, _, server = agency
    counted: list[str] = []
    source.observe_http(counted.append)  # complaint_graph_source_http_requests_total
    await first_case(source)
    created = await source.create_case(CASE, "one-pool")
    assert created in await source.load_cases([created])
    methods = [method for method, _ in server.ports]
    assert "POST" in methods and methods[0] == methods[-1] == "GET"
    assert len({port for _, port in server.ports}) == 1, server.ports
    assert counted == [source_id] * len(server.ports), "the writes are counted as sent too"


async def test_a_write_that_times_out_retires_the_pool_as_a_read_would(
    source: HttpSource, agency: tuple[str, ThreadedServer, Connections]
) -> None:
    """The write goes out on the connection the read left in the pool, and times out: that
    connection may still get the write's late answer, so the next read must not reuse it. The
    source's healing transport retires the pool; a writer of its own left the read's
    connection to be reused and its own timed-out one in a pool nobody healed."""
    _, _, server = agency
    await first_case(source)
    server.hold_writes = True
    with pytest.raises(SourceTimeout):
        await source.create_case(CASE, "held")
    server.hold_writes = False
    server.release.set()
    await first_case(source)

    (_, read), (_, read_after) = server.ports[0], server.ports[-1]
    (write,) = [port for method, port in server.ports if method == "POST"]
    assert write == read  # the read's pooled connection
    assert read_after != read  # a new one: the spoilt pool was retired
