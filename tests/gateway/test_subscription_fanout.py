"""One change is detected once per gateway, whatever the number of subscribers: the source is
asked what changed once, and each subscriber is then handed the event."""

from __future__ import annotations

import contextlib
from pathlib import Path

from gateway.app import Gateway, create_app
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    next_event,
    notifying_config,
    transport_ws,
    wait_for,
)
from tests.resolvers.expected import POSTGRES_SOURCE

SUBSCRIBERS = 12


async def test_one_change_is_read_from_the_source_once_for_every_subscriber(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path
) -> None:
    """Polls an hour apart and NOTIFY on commit: each change wakes exactly one poll."""
    config = await notifying_config(demo_data, agency_dsn, tmp_path, "cg_fanout")
    app = create_app(config)
    gateway: Gateway = app.state.gateway
    served = ThreadedServer(app, lifespan=True)
    served.start()
    try:
        await wait_for(served, lambda events: events["watching"])
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(transport_ws(served, subscribed=False))
                for _ in range(SUBSCRIBERS)
            ]
            await wait_for(served, lambda events: events["subscribers"] == SUBSCRIBERS)
            reads = gateway.metrics.round_trips(POSTGRES_SOURCE, "search_cases")
            await change(agency_dsn, SET_STATUS, 53, "WIP")
            events = [await next_event(ws) for ws in sockets]
            read_once = gateway.metrics.round_trips(POSTGRES_SOURCE, "search_cases") - reads
    finally:
        served.stop()
    assert {e["case"]["sourceStatus"] for e in events} == {"WIP"}
    assert len({e["id"] for e in events}) == 1, "one event, handed to every subscriber"
    assert read_once == 1
