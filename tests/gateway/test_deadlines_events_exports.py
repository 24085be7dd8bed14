"""Deadlines beyond a single request (issue 19): one subscription event's own work, and each
page of an export. The 1111 service runs as a process of its own and is paused (SIGSTOP)
while the gateway needs it: it accepts connections and never answers. Its per-attempt
timeout (8 s, three attempts) is far longer than the deadlines here, so an answer that comes
in time came because of the deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from gateway.app import create_app
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import DEMO_PMOC_KEY
from samples import links
from samples.serving import ThreadedServer
from sources.rest import RestSettings
from tests.agencies import AgencyProcess
from tests.conftest import REST_CASES, REST_SEED, DemoData
from tests.gateway.test_subscriptions import SET_STATUS, change, wait_for, watched_config
from tests.resolvers.expected import REST_SOURCE

DEADLINE = 2.0
SLACK = 1.5
"""Beyond the deadline: a poll (every 0.05 s) to see the change, a loaded test machine."""
CHAIN = 15
"""A Damrongdhama case escalated to the 1111 service (samples/links.py)."""

FOLLOWED = """subscription { caseEvents { id case { referenceNumber
  referrals { toAgency { code } counterpart { id referenceNumber } } } } }"""
"""Each event's case with its counterpart at the agency it was referred to: read live."""
PLAIN = "subscription { caseEvents { id case { referenceNumber sourceStatus } } }"


@pytest.fixture
def agency() -> Iterator[AgencyProcess]:
    process = AgencyProcess(
        "pmoc_1111", REST_SEED, REST_CASES, DEMO_PMOC_KEY, probe="/api/v1/complaints"
    )
    process.start()
    yield process
    process.stop()


def with_1111_at(config: GatewayConfig, demo_data: DemoData, url: str) -> GatewayConfig:
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(rest, RestSettings)
    rest = rest.model_copy(update={"base_url": url})
    others = tuple(s for s in config.sources if s.id != REST_SOURCE)
    limits = config.limits.model_copy(update={"timeout_seconds": DEADLINE, "rate_limit": None})
    return replace(config, sources=(*others, rest), limits=limits)


async def subscribe(ws: ClientConnection, document: str) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    message = {"id": "1", "type": "subscribe", "payload": {"query": document}}
    await ws.send(json.dumps(message))


async def received(ws: ClientConnection) -> tuple[float, dict[str, Any]]:
    async with asyncio.timeout(30):
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return time.monotonic(), payload


async def test_an_event_whose_fields_wait_on_a_hung_agency_comes_within_its_deadline(
    demo_data: DemoData, agency_dsn: str, agency: AgencyProcess
) -> None:
    """The event arrives with its own data and SOURCE_TIMEOUT for the counterpart at the paused
    agency within the per-event deadline; another subscriber, whose document does not need
    that agency, has the same change at once; and the next event comes too."""
    from websockets.asyncio.client import connect

    config = with_1111_at(watched_config(demo_data, agency_dsn), demo_data, agency.url)
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    url = server.url.replace("http", "ws") + "/graphql"
    try:
        await wait_for(server, lambda events: events["watching"])
        async with (
            connect(url, subprotocols=["graphql-transport-ws"]) as followed,  # type: ignore[list-item]
            connect(url, subprotocols=["graphql-transport-ws"]) as plain,  # type: ignore[list-item]
        ):
            await subscribe(followed, FOLLOWED)
            await subscribe(plain, PLAIN)
            await wait_for(server, lambda events: events["subscribers"] >= 2)
            agency.pause()
            changed = time.monotonic()
            await change(agency_dsn, SET_STATUS, CHAIN, "WIP")
            (plain_at, plain_event), (followed_at, first) = await asyncio.gather(
                received(plain), received(followed)
            )
            agency.resume()
            await change(agency_dsn, SET_STATUS, CHAIN, "DONE")
            _, second = await received(followed)
    finally:
        if agency.paused:
            agency.resume()
        server.stop()
    assert "errors" not in plain_event, plain_event
    assert plain_event["data"]["caseEvents"]["case"]["sourceStatus"] == "WIP"
    assert plain_at - changed < SLACK, plain_at - changed
    # the paused agency's part fails on its own, before the event's deadline
    assert followed_at - changed < DEADLINE + SLACK, followed_at - changed
    case = first["data"]["caseEvents"]["case"]
    assert case["referenceNumber"].endswith(f"/{CHAIN:06d}"), case
    (referral,) = case["referrals"]
    assert referral["toAgency"]["code"] == "OPM-1111"
    assert referral["counterpart"] is None
    (error,) = first["errors"]
    assert error["extensions"]["code"] == "SOURCE_TIMEOUT"
    assert error["extensions"]["source"] == REST_SOURCE
    assert error["path"][:3] == ["caseEvents", "case", "referrals"]
    # the agency back, the next event is whole
    assert "errors" not in second, second
    counterpart = second["data"]["caseEvents"]["case"]["referrals"][0]["counterpart"]
    assert counterpart["referenceNumber"] == links.pmoc_id(CHAIN)


EXPORT = '{ cases(first: 100, filter: {source: ["pmoc-1111"]}) { edges { node { id } } } }'


@pytest.fixture
def exporting(demo_data: DemoData, agency: AgencyProcess) -> Iterator[ThreadedServer]:
    config = with_1111_at(demo_data.config, demo_data, agency.url)
    server = ThreadedServer(create_app(replace(config, events=EventSettings(enabled=False))))
    server.start()
    yield server
    if agency.paused:
        agency.resume()
    server.stop()


async def test_an_export_from_a_hung_agency_is_refused_within_the_deadline(
    exporting: ThreadedServer, agency: AgencyProcess
) -> None:
    agency.pause()
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=exporting.url, timeout=60) as client:
        response = await client.post("/export.csv", json={"query": EXPORT})
    took = time.monotonic() - started
    assert took < DEADLINE + 0.5, took
    assert response.status_code == 504, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "SOURCE_TIMEOUT"
    assert error["extensions"]["source"] == REST_SOURCE


async def read_into(received: list[bytes], chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        received.append(chunk)


async def test_an_export_whose_agency_hangs_half_way_is_cut_off_within_the_deadline(
    exporting: ThreadedServer, agency: AgencyProcess
) -> None:
    """The first page streamed, then the agency stops answering: the next page is abandoned at
    its deadline and the response ends without its last chunk (never a short CSV that looks
    whole, never a hang)."""
    async with (
        httpx.AsyncClient(base_url=exporting.url, timeout=60) as client,
        client.stream("POST", "/export.csv", json={"query": EXPORT}) as response,
    ):
        assert response.status_code == 200
        chunks = response.aiter_bytes()
        first = await anext(chunks)
        agency.pause()
        paused = time.monotonic()
        received = [first]
        with pytest.raises(httpx.RemoteProtocolError):
            await read_into(received, chunks)
        took = time.monotonic() - paused
    rows = b"".join(received).count(b"\r\n")
    assert took < DEADLINE + SLACK, took
    assert 1 < rows < REST_CASES + 1  # the header and some cases, not all of them
