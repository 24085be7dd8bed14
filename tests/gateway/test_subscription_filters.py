"""Subscription filters over real WebSockets, one subscriber per filter field, with changes in a
real PostgreSQL agency and a real REST agency interleaved: each subscriber receives exactly the
events its filter matches, in order, and nothing in between."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import create_app
from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_subscription_sources import set_rest_status
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    next_event,
    wait_for,
    watched_config,
)
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

FOLLOW = """
subscription Follow($filter: CaseFilterInput) {
  caseEvents(filter: $filter) {
    id
    case {
      referenceNumber sourceStatus status
      category { code }
      location { province { code } }
      owningAgency { code }
      source { id }
    }
  }
}
"""


@pytest.fixture
def two_agencies(demo_data: DemoData, agency_dsn: str) -> Iterator[tuple[ThreadedServer, Any]]:
    """A gateway over the PostgreSQL agency and the 1111 REST agency, both watched."""
    agency = ThreadedServer(pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY))
    agency.start()
    config = watched_config(demo_data, agency_dsn)
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    rest = rest.model_copy(update={"base_url": agency.url, "poll_seconds": 0.05})
    served = ThreadedServer(
        create_app(replace(config, sources=(*config.sources, rest))), lifespan=True
    )
    served.start()
    yield agency, served
    served.stop()
    agency.stop()


@contextlib.asynccontextmanager
async def following(
    url: str, filters: list[dict[str, Any]]
) -> AsyncIterator[list[ClientConnection]]:
    """One graphql-transport-ws connection per filter, closed when the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for where in filters:
            ws = await stack.enter_async_context(
                connect(url, subprotocols=["graphql-transport-ws"])
            )  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            payload = {"query": FOLLOW, "variables": {"filter": where}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            sockets.append(ws)
        yield sockets


async def pg_cases(served: ThreadedServer) -> list[dict[str, Any]]:
    """The PostgreSQL agency's cases as the graph shows them (to choose ones that differ)."""
    query = """query Pick($source: [String!]) { cases(first: 60, filter: {source: $source}) {
        edges { node { referenceNumber category { code } location { province { code } } } } } }"""
    async with httpx.AsyncClient(base_url=served.url) as client:
        variables = {"source": [POSTGRES_SOURCE]}
        body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
    return [edge["node"] for edge in body["data"]["cases"]["edges"]]


def case_id(reference: str) -> int:
    return int(reference.rsplit("/", 1)[1])


def summary(event: dict[str, Any]) -> tuple[str, str]:
    return event["case"]["referenceNumber"], event["case"]["sourceStatus"]


async def test_each_filter_field_selects_exactly_its_events(
    two_agencies: tuple[ThreadedServer, ThreadedServer], agency_dsn: str
) -> None:
    agency, served = two_agencies
    await wait_for(served, lambda events: events["watching"])
    cases = [c for c in await pg_cases(served) if c["category"] and c["location"]["province"]]
    a = cases[0]
    b = next(
        c
        for c in cases
        if c["category"]["code"] != a["category"]["code"]
        and c["location"]["province"]["code"] != a["location"]["province"]["code"]
    )
    province, category = a["location"]["province"]["code"], a["category"]["code"]
    filters: dict[str, dict[str, Any]] = {
        "all": {},
        "agency": {"agency": ["OPM-1111"]},
        "source": {"source": [POSTGRES_SOURCE]},
        "province": {"provinceCode": [province]},
        "category": {"category": [category]},
        "status": {"status": ["ON_HOLD"]},
    }
    matches: dict[str, Callable[[dict[str, Any]], bool]] = {
        "all": lambda case: True,
        "agency": lambda case: case["owningAgency"]["code"] == "OPM-1111",
        "source": lambda case: case["source"]["id"] == POSTGRES_SOURCE,
        "province": lambda case: (case["location"]["province"] or {}).get("code") == province,
        "category": lambda case: (case["category"] or {}).get("code") == category,
        "status": lambda case: case["status"] == "ON_HOLD",
    }
    url = served.url.replace("http", "ws") + "/graphql"
    async with following(url, list(filters.values())) as sockets:
        await wait_for(served, lambda events: events["subscribers"] == len(filters))
        first_a, first_b = case_id(a["referenceNumber"]), case_id(b["referenceNumber"])
        changes: list[Callable[[], Awaitable[None]]] = [
            lambda: change(agency_dsn, SET_STATUS, first_a, "WIP"),
            lambda: set_rest_status(agency, "PMOC-000008", 3),
            lambda: change(agency_dsn, SET_STATUS, first_b, "HOLD"),
            lambda: change(agency_dsn, SET_STATUS, first_a, "HOLD"),  # last PG
            lambda: set_rest_status(agency, "PMOC-000008", 6),  # last of all
        ]
        everything = []
        for make in changes:  # each seen before the next: a case's two changes stay two events
            await make()
            everything.append(await next_event(sockets[0]))
        received = {}
        for name, ws in list(zip(filters, sockets, strict=True))[1:]:  # "all" is read already
            expected = [e for e in everything if matches[name](e["case"])]
            assert expected, f"the changes must exercise the {name} filter"
            received[name] = (
                [summary(await next_event(ws)) for _ in expected],
                [summary(e) for e in expected],
            )
    for name, (got, expected) in received.items():
        assert got == expected, name
    # Each filter left something out (else it would prove nothing) but not everything.
    for name, (got, _) in received.items():
        assert 0 < len(got) < len(everything), name
