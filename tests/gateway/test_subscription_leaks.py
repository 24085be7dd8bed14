"""Disconnects leave nothing behind. A real uvicorn server runs in the test's own event loop, so
the test sees every task the gateway and the server hold; subscribers come and go by every
transport, politely and abruptly, and afterwards no subscriber, socket, task, LISTEN connection
or Redis subscription is left over."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeVar

import asyncpg
import httpx
import redis.asyncio as redis
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import Gateway, create_app
from gateway.config import EventSettings
from gateway.shutdown import OpenWebSockets
from samples.serving import free_port
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    SUBSCRIBE,
    change,
    next_event,
    watched_config,
)

REDIS_URL = os.environ.get("COMPLAINT_GRAPH_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def until(
    condition: Callable[[], bool], what: Callable[[], str], seconds: float = 15
) -> None:
    """Wait for ``condition`` with a deadline (a condition, not a timed wait)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(what()) from None


ServerT = TypeVar("ServerT", bound=uvicorn.Server)


@contextlib.asynccontextmanager
async def server_in_this_loop(
    app: Any,
    make: Callable[[uvicorn.Config], ServerT],
) -> AsyncIterator[ServerT]:
    """``app`` served on a free loopback port by ``make(config)``, in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on"
    )
    server = make(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    await until(lambda: server.started, lambda: "uvicorn did not start")
    try:
        yield server
    finally:
        server.should_exit = True
        await serving


async def ws_subscriber(url: str, protocol: str) -> ClientConnection:
    ws = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await ws.send(json.dumps({"id": "1", "type": kind, "payload": {"query": SUBSCRIBE}}))
    return ws


async def sse_event(response: httpx.Response) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for line in response.aiter_lines():
            if line.startswith("data: ") and "caseEvents" in line:
                event: dict[str, Any] = json.loads(line.removeprefix("data: "))["data"]
                return event
    raise AssertionError("the stream ended")


def described(tasks: set[asyncio.Task[Any]]) -> str:
    return "left over: " + ", ".join(sorted(f"{t.get_name()} {t.get_coro()!r}" for t in tasks))


async def backend_connections(dsn: str) -> list[str]:
    """What every other connection to the agency database last ran (ours excluded)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [row["query"] for row in rows]


async def test_disconnects_and_shutdown_leave_no_subscriber_task_or_connection(
    demo_data: DemoData, agency_dsn: str
) -> None:
    prefix = f"cg-test-{uuid.uuid4().hex}"
    config = watched_config(demo_data, agency_dsn)
    (pg,) = config.sources
    pg = pg.model_copy(update={"notify_channel": "cg_leaks"})
    events = EventSettings(redis_url=REDIS_URL, redis_prefix=prefix)
    app = create_app(replace(config, sources=(pg,), events=events))
    gateway: Gateway = app.state.gateway
    websockets: OpenWebSockets = app.state.shutdown.websockets
    assert gateway.events is not None
    broker = gateway.events
    bus = redis.from_url(REDIS_URL)
    try:
        async with server_in_this_loop(app, uvicorn.Server) as server:
            await asyncio.wait_for(broker.ready.wait(), 15)
            await until(lambda: bool(broker.bus and broker.bus.leading), lambda: "never led")
            assert any(q.startswith("LISTEN") for q in await backend_connections(agency_dsn))
            before = asyncio.all_tasks()
            url = f"http://127.0.0.1:{server.config.port}"
            ws_url = url.replace("http", "ws") + "/graphql"

            for round_ in range(2):  # twice: what the first round left would add up
                sockets = [await ws_subscriber(ws_url, "graphql-transport-ws") for _ in range(6)]
                sockets += [await ws_subscriber(ws_url, "graphql-ws") for _ in range(4)]
                async with contextlib.AsyncExitStack() as stack:
                    streams = []
                    for _ in range(3):
                        client = await stack.enter_async_context(
                            httpx.AsyncClient(base_url=url, timeout=15)
                        )
                        streams.append(
                            await stack.enter_async_context(
                                client.stream(
                                    "POST",
                                    "/graphql",
                                    json={"query": SUBSCRIBE},
                                    headers={"accept": "text/event-stream"},
                                )
                            )
                        )
                    await until(
                        lambda: broker.subscriber_count == 13,
                        lambda: f"{broker.subscriber_count} subscribers",
                    )
                    await change(agency_dsn, SET_STATUS, 55 + round_, "WIP")
                    for ws in sockets:  # every subscription is live, so every part of it exists
                        await next_event(ws)
                    for stream in streams:
                        await sse_event(stream)
                    assert websockets.count == 10
                    for ws in sockets[::2]:
                        await ws.close()  # politely
                    for ws in sockets[1::2]:
                        ws.transport.abort()  # the network drops: no close frame
                # leaving the block drops the SSE streams and their connections

                await until(
                    lambda: broker.subscriber_count == 0,
                    lambda: f"{broker.subscriber_count} subscribers left",
                )
                await until(lambda: websockets.count == 0, lambda: "WebSocket handlers left")
                await until(
                    lambda: not server.server_state.connections,
                    lambda: f"{len(server.server_state.connections)} connections left",
                )
                await until(
                    lambda: asyncio.all_tasks() <= before,
                    lambda: described(asyncio.all_tasks() - before),
                )

        # After shutdown: no task of the broker or the bus, no LISTEN, no pooled connection,
        # no Redis subscription, no lease.
        mine = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        assert not {t for t in mine if t.get_name().startswith(("poll:", "redis-"))}, described(
            mine
        )
        assert broker.subscriber_count == 0
        assert await backend_connections(agency_dsn) == []
        channel = f"{prefix}:events"
        assert await bus.pubsub_numsub(channel) == [(channel.encode(), 0)]
        assert await bus.keys(f"{prefix}:leader:*") == []
    finally:
        await bus.delete(f"{prefix}:positions")
        await bus.aclose()
