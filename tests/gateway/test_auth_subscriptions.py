"""Subscriptions obey the same row-level rules as ``cases``: an agency is never sent an event of
a case it may not see, whichever transport it subscribes over."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import create_app
from gateway.auth import AuthSettings, KeyStore
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import asyncpg_url, demo_agency_key
from resolvers.access import Role
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import SET_STATUS, change, next_event, wait_for
from tests.postgres import run

SUBSCRIBE = "subscription { caseEvents { case { referenceNumber } } }"


async def _refer_to_khon_kaen(dsn: str, numbers: list[int]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO complaint_referrals VALUES ($1, $2, 'KKN', $3, 'FWD', NULL, $4)",
            [(9000 + n, n, datetime(2026, 1, 1, tzinfo=UTC), f"KK-{n}") for n in numbers],
        )
    finally:
        await connection.close()


async def _keys(url: str) -> None:
    store = KeyStore(url)
    try:
        await store.ensure("demo-inspector", "inspector", frozenset({Role.INSPECTOR}))
        for agency in ("KKN-PO", "OPM-1111"):
            await store.ensure(demo_agency_key(agency), agency, frozenset({Role.AGENCY}), agency)
    finally:
        await store.close()


@pytest.fixture
def served(demo_data: DemoData, agency_dsn: str, tmp_path: Any) -> Iterator[ThreadedServer]:
    """The Damrongdhama database watched; its cases 7 and 10 were also sent to Khon Kaen, and
    case 10 (a chain case) to the 1111 service."""
    run(_refer_to_khon_kaen(agency_dsn, [7, 10]))
    (pg,) = [s for s in demo_data.config.sources if s.id == "damrongdhama"]
    vocabulary = pg.vocabulary.model_copy(
        update={"agencies": {**pg.vocabulary.agencies, "KKN": "KKN-PO"}}
    )
    source = pg.model_copy(
        update={"url": asyncpg_url(agency_dsn), "poll_seconds": 0.05, "vocabulary": vocabulary}
    )
    store = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    run(_keys(store))
    config = GatewayConfig(
        demo_data.config.categories,
        (source,),
        demo_data.config.limits,
        EventSettings(),
        auth=AuthSettings(key_store=store),
    )
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def subscribed(
    server: ThreadedServer, protocol: str, key: str
) -> AsyncIterator[ClientConnection]:
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": SUBSCRIBE}}))
        yield ws


def number_of(event: dict[str, Any]) -> int:
    return int(event["case"]["referenceNumber"].rsplit("/", 1)[1])


async def test_each_subscriber_gets_only_the_events_of_cases_it_may_see(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with (
        subscribed(served, "graphql-transport-ws", "demo-inspector") as inspector,
        subscribed(served, "graphql-transport-ws", demo_agency_key("KKN-PO")) as khon_kaen,
        subscribed(served, "graphql-ws", demo_agency_key("OPM-1111")) as pmoc,
    ):
        await wait_for(served, lambda events: events["subscribers"] >= 3)
        for number in (23, 7, 10):  # 23 is nobody's but the Damrongdhama Center's
            await change(agency_dsn, SET_STATUS, number, "WIP")
        assert [number_of(await next_event(inspector)) for _ in range(3)] == [23, 7, 10]
        assert [number_of(await next_event(khon_kaen)) for _ in range(2)] == [7, 10]
        assert number_of(await next_event(pmoc)) == 10
