"""Two gateway replicas sharing Redis: a change is detected once and reaches every subscriber
exactly once, whichever replica it is connected to."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from gateway.app import create_app
from gateway.config import EventSettings
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    next_event,
    transport_ws,
    wait_for,
    watched_config,
)
from tests.resolvers.expected import POSTGRES_SOURCE

REDIS_URL = os.environ.get("COMPLAINT_GRAPH_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def replicas(demo_data: DemoData, agency_dsn: str) -> Iterator[list[ThreadedServer]]:
    events = EventSettings(redis_url=REDIS_URL, redis_prefix=f"cg-test-{uuid.uuid4().hex}")
    config = watched_config(demo_data, agency_dsn)
    config = type(config)(
        config.categories, config.sources, config.limits, events, auth=config.auth
    )
    servers = [ThreadedServer(create_app(config), lifespan=True) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


async def test_each_subscriber_gets_each_event_once_on_either_replica(
    replicas: list[ThreadedServer], agency_dsn: str
) -> None:
    for server in replicas:
        await wait_for(server, lambda e: e["watching"])
    # The lease is taken on the first poll: wait until some replica holds it.
    reports = [await wait_for(server, lambda e: True) for server in replicas]
    while not any(r["events"]["leading"] for r in reports):
        reports = [await wait_for(server, lambda e: True) for server in replicas]
    leaders = [r["events"]["leading"] for r in reports]
    assert sorted(leaders, key=len) == [[], [POSTGRES_SOURCE]], "one replica watches the source"

    first, second = replicas
    async with transport_ws(first) as a, transport_ws(second) as b:
        await change(agency_dsn, SET_STATUS, 30, "WIP")
        await change(agency_dsn, SET_STATUS, 31, "HOLD")
        got_a = [await next_event(a), await next_event(a)]
        got_b = [await next_event(b), await next_event(b)]
    for got in (got_a, got_b):
        assert [e["case"]["sourceStatus"] for e in got] == ["WIP", "HOLD"]
    assert [e["id"] for e in got_a] == [e["id"] for e in got_b]
