"""The one access rule reaches subscriptions too (issue 19, finding 8): the city platform's key
is sent the change of a Damrongdhama case its search lists (and that now opens by id), never
the change of one its search does not list."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.demo import asyncpg_url, demo_agency_key
from samples.serving import ThreadedServer
from tests.conftest import AccessWorld
from tests.gateway.test_subscriptions import SET_STATUS, change, next_event, wait_for
from tests.resolvers.expected import POSTGRES_SOURCE

TRAFFY = demo_agency_key("BMA-TRAFFY")
BEARER = {"authorization": f"Bearer {TRAFFY}"}
FOLLOW = 'subscription { caseEvents(filter: {source: ["damrongdhama"]}) { case { id } } }'
LISTED = '{ cases(first: 100, filter: {source: ["damrongdhama"]}) { edges { node { id } } } }'
OPEN = "query($id: ID!) { case(id: $id) { id } node(id: $id) { id } }"


def global_id(local_id: str) -> str:
    return base64.b64encode(f"Case:{POSTGRES_SOURCE}:{local_id}".encode()).decode()


@pytest.fixture
def served(access_world: AccessWorld, agency_dsn: str) -> Iterator[ThreadedServer]:
    """The access world with its Damrongdhama database swapped for one of this test's own
    (the same 60 cases and referrals), watched every 50 ms."""
    sources = tuple(
        source.model_copy(update={"url": asyncpg_url(agency_dsn), "poll_seconds": 0.05})
        if source.id == POSTGRES_SOURCE
        else source
        for source in access_world.config.sources
    )
    config = replace(access_world.config, sources=sources)
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server
    server.stop()


async def ask(server: ThreadedServer, document: str, variables: dict[str, Any] | None) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        response = await client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=BEARER
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_subscription_is_sent_exactly_the_cases_a_search_lists(
    served: ThreadedServer, agency_dsn: str
) -> None:
    edges = (await ask(served, LISTED, None))["cases"]["edges"]
    listed = {base64.b64decode(e["node"]["id"]).decode().rsplit(":", 1)[1] for e in edges}
    assert "30" in listed  # the case: the city returned it to Damrongdhama
    hidden = next(str(n) for n in range(1, 61) if str(n) not in listed)
    assert (await ask(served, OPEN, {"id": global_id("30")}))["case"] is not None
    assert (await ask(served, OPEN, {"id": global_id(hidden)}))["case"] is None
    await wait_for(served, lambda events: events["watching"])
    url = served.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": BEARER["authorization"]}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": FOLLOW}}))
        await wait_for(served, lambda events: events["subscribers"] >= 1)
        await change(agency_dsn, SET_STATUS, int(hidden), "HOLD")
        await change(agency_dsn, SET_STATUS, 30, "HOLD")
        event = await next_event(ws)  # the hidden case's change, earlier, is never sent
    assert event["case"]["id"] == global_id("30")
