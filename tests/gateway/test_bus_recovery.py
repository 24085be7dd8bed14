"""When Redis (the event bus) is killed and comes back, the gateway leads its sources' watches
again and publishes their changes, within a few polls, without a restart (issue 19).

Redis is real; the gateway reaches it through the chaos suite's TCP proxy, which cuts every
connection and refuses new ones until it is told to pass again: Redis killed, then restarted.
The outage is shorter than the lease, so the lease key is still this replica's when Redis is
back: the case the gateway missed, leading again without saying so (/readyz ``leading`` stayed
empty for good)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from gateway.app import Gateway, create_app
from gateway.config import EventSettings
from samples.serving import ThreadedServer
from tests.chaos import PASS, STALL, FaultProxy
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

BACK_WITHIN = 5.0
"""Seconds after Redis returns by which the gateway leads again: the watcher asks every poll
(50 ms here) and the channel is subscribed again within its 2 s backoff."""


@pytest.fixture
async def behind_proxy(
    demo_data: DemoData, agency_dsn: str
) -> AsyncIterator[tuple[ThreadedServer, Gateway, FaultProxy]]:
    proxy = FaultProxy(urlsplit(REDIS_URL).port or 6379, random.Random(19))
    await proxy.start()
    prefix = f"cg-test-{uuid.uuid4().hex}"
    url = f"redis://127.0.0.1:{proxy.port}/0"
    config = watched_config(demo_data, agency_dsn)
    app = create_app(replace(config, events=EventSettings(redis_url=url, redis_prefix=prefix)))
    served = ThreadedServer(app, lifespan=True)
    # In a thread: the proxy runs on this loop, and the gateway needs it to start.
    await asyncio.to_thread(served.start)
    try:
        yield served, app.state.gateway, proxy
    finally:
        proxy.set(PASS)
        await asyncio.to_thread(served.stop)
        await proxy.close()
        admin = redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in admin.scan_iter(f"{prefix}:*")]
            if keys:
                await admin.delete(*keys)
        finally:
            await admin.aclose()


def leading(events: dict[str, Any]) -> bool:
    return bool(events["leading"] == [POSTGRES_SOURCE])


async def test_redis_killed_and_back_the_gateway_leads_and_publishes_again(
    behind_proxy: tuple[ThreadedServer, Gateway, FaultProxy], agency_dsn: str
) -> None:
    served, gateway, proxy = behind_proxy
    assert gateway.events is not None and gateway.events.bus is not None
    bus = gateway.events.bus
    await wait_for(served, leading)
    async with transport_ws(served) as ws:
        await change(agency_dsn, SET_STATUS, 25, "WIP")
        before = await next_event(ws)

        await proxy.cut()  # Redis killed
        async with asyncio.timeout(10):
            message = json.loads(await ws.recv())
        (error,) = message["payload"]["errors"]
        assert error["extensions"]["code"] == "EVENTS_INTERRUPTED"
        await wait_for(served, lambda events: events["leading"] == [])  # the watcher noticed

    proxy.set(PASS)  # Redis restarted
    back = time.monotonic()
    await wait_for(served, leading)
    async with asyncio.timeout(BACK_WITHIN):
        while True:  # a condition with a deadline; the event is the gateway loop's, not ours
            if bus.subscribed.is_set():
                break
            await asyncio.sleep(0.02)
    took = time.monotonic() - back
    assert took < BACK_WITHIN, f"leading again {took:.1f} s after Redis was back"

    async with transport_ws(served, {"after": before["id"]}) as ws:
        await change(agency_dsn, SET_STATUS, 26, "HOLD")  # live, published through Redis
        after = await next_event(ws)
    assert after["case"]["referenceNumber"][-2:] == "26"
    assert after["case"]["sourceStatus"] == "HOLD"


async def test_redis_paused_and_back_the_gateway_leads_and_publishes_again(
    behind_proxy: tuple[ThreadedServer, Gateway, FaultProxy], agency_dsn: str
) -> None:
    """Paused: connections open, nothing answered. The watcher stops claiming the lead once a
    renewal goes unanswered for a third of the lease, and takes it again once Redis answers."""
    served, gateway, proxy = behind_proxy
    assert gateway.events is not None and gateway.events.bus is not None
    await wait_for(served, leading)
    async with transport_ws(served) as ws:
        await change(agency_dsn, SET_STATUS, 27, "WIP")
        assert (await next_event(ws))["case"]["referenceNumber"][-2:] == "27"

        proxy.set(STALL)  # Redis paused
        await wait_for(served, lambda events: events["leading"] == [])
        await change(agency_dsn, SET_STATUS, 28, "HOLD")  # while Redis is away

        proxy.set(PASS)
        back = time.monotonic()
        await wait_for(served, leading)
        took = time.monotonic() - back
        assert took < BACK_WITHIN, f"leading again {took:.1f} s after Redis was back"
        # The change made meanwhile, then a live one: the channel was never dropped.
        held = await next_event(ws)
        await change(agency_dsn, SET_STATUS, 29, "DONE")
        live = await next_event(ws)
    assert [e["case"]["referenceNumber"][-2:] for e in (held, live)] == ["28", "29"]
