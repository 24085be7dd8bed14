"""When Redis refuses an event, the watching replica keeps it: the change is published once Redis
takes events again, in order, nothing lost and nothing twice. The refusal is real: the gateway
talks to Redis as a user of its own whose PUBLISH permission the test takes away and gives back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis.asyncio as redis

from gateway.app import Gateway, create_app
from gateway.config import EventSettings
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_replicas import REDIS_URL
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    next_event,
    transport_ws,
    wait_for,
    watched_config,
)
from tests.resolvers.expected import POSTGRES_SOURCE


@pytest.fixture
async def redis_user() -> AsyncIterator[tuple[redis.Redis, str, str]]:
    """An ACL user allowed everything, and an admin connection to change that."""
    admin = redis.from_url(REDIS_URL)
    name, password = f"cg-test-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    await admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*", "+@all")
    host_and_db = REDIS_URL.split("://", 1)[1]
    try:
        yield admin, name, f"redis://{name}:{password}@{host_and_db}"
    finally:
        await admin.execute_command("ACL", "DELUSER", name)
        await admin.aclose()


async def test_events_redis_refused_are_published_when_it_takes_them_again(
    demo_data: DemoData, agency_dsn: str, redis_user: tuple[redis.Redis, str, str]
) -> None:
    admin, user, url = redis_user
    prefix = f"cg-test-{uuid.uuid4().hex}"
    config = watched_config(demo_data, agency_dsn)
    app = create_app(replace(config, events=EventSettings(redis_url=url, redis_prefix=prefix)))
    gateway: Gateway = app.state.gateway
    served = ThreadedServer(app, lifespan=True)
    served.start()
    try:
        await wait_for(served, lambda events: events["leading"] == [POSTGRES_SOURCE])
        async with transport_ws(served) as ws:
            await change(agency_dsn, SET_STATUS, 25, "WIP")
            before = await next_event(ws)

            await admin.execute_command("ACL", "SETUSER", user, "-publish")
            await change(agency_dsn, SET_STATUS, 26, "HOLD")
            polls = gateway.metrics.round_trips(POSTGRES_SOURCE, "search_cases")
            async with asyncio.timeout(15):  # two polls since the change: it was tried
                while True:
                    if gateway.metrics.round_trips(POSTGRES_SOURCE, "search_cases") >= polls + 2:
                        break
                    await asyncio.sleep(0.01)
            await admin.execute_command("ACL", "SETUSER", user, "+publish")

            held = await next_event(ws)
            await change(agency_dsn, SET_STATUS, 27, "DONE")
            after = await next_event(ws)
    finally:
        served.stop()
        await admin.delete(f"{prefix}:positions")
    assert [e["case"]["referenceNumber"][-2:] for e in (before, held, after)] == ["25", "26", "27"]
    assert held["case"]["sourceStatus"] == "HOLD"


async def test_a_dropped_redis_channel_tells_subscribers_to_resume_and_events_go_on(
    demo_data: DemoData, agency_dsn: str, redis_user: tuple[redis.Redis, str, str]
) -> None:
    """Redis pub/sub keeps nothing for a replica that was away: its subscribers are told
    (EVENTS_INTERRUPTED) and resume with after, and the replica subscribes to the channel again."""
    admin, user, url = redis_user
    prefix = f"cg-test-{uuid.uuid4().hex}"
    config = watched_config(demo_data, agency_dsn)
    app = create_app(replace(config, events=EventSettings(redis_url=url, redis_prefix=prefix)))
    served = ThreadedServer(app, lifespan=True)
    served.start()
    try:
        await wait_for(served, lambda events: events["leading"] == [POSTGRES_SOURCE])
        async with transport_ws(served) as ws:
            await change(agency_dsn, SET_STATUS, 28, "WIP")
            before = await next_event(ws)
            # Every connection of the gateway's Redis user, its channel subscription included.
            assert await admin.execute_command("CLIENT", "KILL", "USER", user) >= 2
            async with asyncio.timeout(10):
                message = json.loads(await ws.recv())
        await change(agency_dsn, SET_STATUS, 29, "HOLD")  # while the partner is away
        async with transport_ws(served, {"after": before["id"]}) as ws:
            missed = await next_event(ws)
            await change(agency_dsn, SET_STATUS, 30, "DONE")  # live, through Redis again
            live = await next_event(ws)
    finally:
        served.stop()
        await admin.delete(f"{prefix}:positions")
    assert message["type"] == "next"
    (error,) = message["payload"]["errors"]
    assert error["extensions"]["code"] == "EVENTS_INTERRUPTED"
    assert "after" in error["message"]
    assert [e["case"]["referenceNumber"][-2:] for e in (before, missed, live)] == ["28", "29", "30"]
