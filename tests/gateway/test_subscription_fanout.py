"""One change is detected once per gateway, whatever the number of subscribers: the source is
asked what changed once, and each subscriber is then handed the event."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from gateway.app import Gateway, create_app
from gateway.cli import main
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    config_yaml,
    next_event,
    transport_ws,
    wait_for,
    watched_config,
)
from tests.resolvers.expected import POSTGRES_SOURCE

SUBSCRIBERS = 12


async def test_one_change_is_read_from_the_source_once_for_every_subscriber(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path
) -> None:
    """Polls an hour apart and NOTIFY on commit: each change wakes exactly one poll."""
    config = watched_config(demo_data, agency_dsn)
    (pg,) = config.sources
    pg = pg.model_copy(update={"poll_seconds": 3600.0, "notify_channel": "cg_fanout"})
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(demo_data, pg), encoding="utf-8")
    command = ["sources", "install-triggers", POSTGRES_SOURCE, "--config", str(path)]
    assert await asyncio.to_thread(main, command) == 0
    app = create_app(replace(config, sources=(pg,)))
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
