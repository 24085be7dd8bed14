"""A subscriber that stops reading its socket is cut off, over real WebSockets to a real gateway.

The broker-level test (``test_subscriptions``) drains a stream by hand; this one checks the whole
path: once the client's socket buffers are full, uvicorn's WebSocket protocol holds the next send
(asyncio's write buffer past its high-water mark), so Strawberry's handler waits on it, that
subscriber's bounded queue fills, and it is cut off with ``SUBSCRIBER_TOO_SLOW`` — while a
subscriber that keeps reading gets every event. The two share one resolution per event (same
document, variables and access: resolvers/subscription_groups.py), so the slow one's queue is
its own within the group, and the group does not wait for it. The server runs in the test's
own event loop, so the test can look at the slow subscriber's queue and at the bytes held for
its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import Gateway, create_app
from gateway.events import EventBroker
from gateway.shutdown import CLOSE_GRACE_SECONDS, SHUTDOWN_TIMEOUT_SECONDS, GatewayServer
from samples.serving import free_port
from tests.conftest import DemoData
from tests.gateway.test_subscription_leaks import server_in_this_loop, until
from tests.gateway.test_subscriptions import change, next_event, watched_config

QUEUE_SIZE = 8
PER_ROUND = 4  # events per commit, fewer than QUEUE_SIZE: a client that reads never overflows
AGENCY_CASES = 60  # the agency_dsn fixture's
# ~60 KiB of UTF-8 per event, so that the socket buffers fill in a few rounds: the kernel holds
# what a loopback peer does not read (up to tcp_wmem's 4 MiB by default), then the server.
DETAIL = "รายละเอียดเรื่องร้องเรียน " * 800
MAX_ROUNDS = 64  # ~15 MiB of events: several times what the socket buffers can hold
HELD_BYTES_LIMIT = 512 * 1024  # what the server may hold for one socket: asyncio's 64 KiB + slack

HEAVY = """
subscription Heavy($after: String) {
  caseEvents(after: $after) { id type case { referenceNumber title description timeline { note } } }
}
"""
TOUCH = "UPDATE complaints SET detail = $2, updated_at = now() WHERE id = ANY($1::bigint[])"


def gateway_in_this_loop(app: Any) -> AbstractAsyncContextManager[GatewayServer]:
    """The gateway's own server class (no permessage-deflate), in this event loop."""
    return server_in_this_loop(app, lambda config: GatewayServer(config, app.state.shutdown))


async def subscribed(
    url: str, sock: socket.socket | None = None, variables: dict[str, Any] | None = None
) -> ClientConnection:
    """A graphql-transport-ws connection subscribed to HEAVY. ``max_queue=1``: the client stops
    reading from its socket as soon as one message waits unread."""
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        max_queue=1,
        sock=sock,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    message = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": HEAVY, "variables": variables or {}},
    }
    await ws.send(json.dumps(message))
    return ws


async def small_receive_buffer_socket(port: int) -> socket.socket:
    """A connected socket whose kernel receive buffer is as small as Linux allows (set before
    connecting, so the TCP window is small from the start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


def held_bytes(server: uvicorn.Server) -> int:
    """The most the server has buffered for any one connection, not yet taken by the kernel."""
    return max(
        (c.transport.get_write_buffer_size() for c in server.server_state.connections),
        default=0,
    )


def seen(event: dict[str, Any]) -> tuple[str, str]:
    """(reference number, round marker) of an event's case."""
    case = event["case"]
    return case["referenceNumber"], case["description"].removeprefix(DETAIL)


async def subscribers_ready(base: str, count: int) -> None:
    """Until /readyz reports ``count`` subscribers (a condition with a deadline)."""
    async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(15):
        while True:
            if (await client.get("/readyz")).json()["events"]["subscribers"] == count:
                return
            await asyncio.sleep(0.02)


async def test_a_subscriber_that_stops_reading_is_cut_off_and_the_others_get_everything(
    demo_data: DemoData, agency_dsn: str
) -> None:
    app = create_app(watched_config(demo_data, agency_dsn, queue_size=QUEUE_SIZE))
    gateway: Gateway = app.state.gateway
    assert gateway.events is not None
    broker: EventBroker = gateway.events
    clients: list[ClientConnection] = []

    def drop_clients() -> None:
        """On failure too: a client that never reads would hold up the server's shutdown."""
        for ws in clients:
            ws.transport.abort()

    async with gateway_in_this_loop(app) as server, contextlib.AsyncExitStack() as cleanup:
        cleanup.callback(drop_clients)
        await asyncio.wait_for(broker.ready.wait(), 15)
        base = f"http://127.0.0.1:{server.config.port}"
        url = base.replace("http", "ws") + "/graphql"

        sock = await small_receive_buffer_socket(server.config.port)
        slow = await subscribed(url, sock)
        clients.append(slow)
        await subscribers_ready(base, 1)
        (slow_subscriber,) = broker.subscription_groups.members()
        healthy = await subscribed(url)
        clients.append(healthy)
        await subscribers_ready(base, 2)
        groups = broker.subscription_groups
        assert (groups.group_count, len(groups.members())) == (1, 2), "one resolution for both"

        # The slow client reads nothing from here on. Each round commits PER_ROUND changes in
        # one transaction (one event each, in (updated_at, id) order); the healthy client
        # reads them all before the next round.
        received: list[tuple[str, str]] = []
        most_held = 0
        extra_rounds = 2  # after the cut-off: the healthy client goes on, nothing piles up
        for round_ in range(MAX_ROUNDS):
            ids = [1 + (round_ * PER_ROUND + k) % AGENCY_CASES for k in range(PER_ROUND)]
            marker = f"round {round_}"
            await change(agency_dsn, TOUCH, ids, DETAIL + marker)
            events = [await next_event(healthy) for _ in ids]
            round_seen = [seen(e) for e in events]
            assert [(int(ref[-6:]), got) for ref, got in round_seen] == [
                (case, marker) for case in sorted(ids)
            ], "every case of the round once, in its new version, in (updated_at, id) order"
            received += round_seen
            # What the gateway holds for the slow client stays bounded, round after round.
            assert slow_subscriber.queue.qsize() <= QUEUE_SIZE
            most_held = max(most_held, held_bytes(server))
            assert most_held < HELD_BYTES_LIMIT, f"{most_held} bytes held for one socket"
            if slow_subscriber.cut_off:
                extra_rounds -= 1
                if extra_rounds < 0:
                    break
        assert slow_subscriber.cut_off, (
            f"{len(received)} events and the client that stopped reading was never cut off "
            f"(its queue holds {slow_subscriber.queue.qsize()})"
        )
        assert slow_subscriber.queue.qsize() <= 1, "a cut-off subscriber is sent nothing more"

        # The slow client reads again: what was already on its way, in order, then the error.
        slow_events: list[dict[str, Any]] = []
        async with asyncio.timeout(15):
            while True:
                message = json.loads(await slow.recv())
                assert message["type"] == "next", message
                if "errors" in message["payload"]:
                    break
                slow_events.append(message["payload"]["data"]["caseEvents"])
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "SUBSCRIBER_TOO_SLOW"
            assert f"fell more than {QUEUE_SIZE} events behind" in error["message"]
            assert json.loads(await slow.recv()) == {"id": "1", "type": "complete"}
        assert 0 < len(slow_events) < len(received)
        assert [seen(e) for e in slow_events] == received[: len(slow_events)], (
            "the slow client got a prefix of the events, in order, without gaps"
        )

        # Its subscription is gone from the gateway; the healthy one is live and the server
        # answers.
        await subscribers_ready(base, 1)
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.post(
                "/graphql", json={"query": "{ cases(first: 1) { edges { node { title } } } }"}
            )
        assert answer.status_code == 200
        assert answer.json()["data"]["cases"]["edges"], answer.json()
        await change(agency_dsn, TOUCH, [AGENCY_CASES], DETAIL + "after the cut-off")
        last = await next_event(healthy)
        assert seen(last) == (last["case"]["referenceNumber"], "after the cut-off")
        received.append(seen(last))
        await slow.close()

        # Resuming after the last event it got, the slow client is sent each case changed since,
        # once, in its current state, oldest change first: it lost nothing.
        missed: dict[str, tuple[int, str]] = {}
        for position, (reference, marker) in enumerate(received[len(slow_events) :]):
            missed[reference] = (position, marker)
        expected = sorted(missed.items(), key=lambda item: item[1][0])
        resumed = await subscribed(url, variables={"after": slow_events[-1]["id"]})
        clients.append(resumed)
        replayed = [seen(await next_event(resumed)) for _ in expected]
        assert replayed == [(reference, marker) for reference, (_, marker) in expected]
        await resumed.close()
        await healthy.close()
        await subscribers_ready(base, 0)


async def test_a_client_that_stopped_reading_does_not_hold_up_shutdown(
    demo_data: DemoData, agency_dsn: str
) -> None:
    """Its connection's send is stuck behind full buffers, and the 1001 close waits behind that
    send: shutdown moves on after the close grace and uvicorn's bounded task wait, instead of
    lasting until the WebSocket keep-alive gives up (20 s ping + 20 s timeout) or forever."""
    app = create_app(watched_config(demo_data, agency_dsn, queue_size=QUEUE_SIZE))
    broker: EventBroker = app.state.gateway.events
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="critical", lifespan="on"
    )
    server = GatewayServer(config, app.state.shutdown)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    clients: list[ClientConnection] = []
    try:
        await until(lambda: server.started, lambda: "uvicorn did not start")
        await asyncio.wait_for(broker.ready.wait(), 15)
        base = f"http://127.0.0.1:{config.port}"
        url = base.replace("http", "ws") + "/graphql"
        clients.append(await subscribed(url, await small_receive_buffer_socket(config.port)))
        await subscribers_ready(base, 1)
        (stuck,) = broker.subscription_groups.members()
        pacer = await subscribed(url)  # reads every round, so each round is done before the next
        clients.append(pacer)
        await subscribers_ready(base, 2)
        for round_ in range(MAX_ROUNDS):
            ids = [1 + (round_ * PER_ROUND + k) % AGENCY_CASES for k in range(PER_ROUND)]
            await change(agency_dsn, TOUCH, ids, DETAIL + f"round {round_}")
            for _ in ids:
                await next_event(pacer)
            if stuck.cut_off:
                break
        assert stuck.cut_off, "the client that stopped reading never filled its buffers"
        await pacer.close()

        started = asyncio.get_running_loop().time()
        server.should_exit = True
        await asyncio.wait_for(asyncio.shield(serving), 30)
        took = asyncio.get_running_loop().time() - started
        assert took < CLOSE_GRACE_SECONDS + SHUTDOWN_TIMEOUT_SECONDS + 5, took
        # The stuck connection is dropped, not left open behind a stopped server.
        assert not server.server_state.connections
    finally:
        for ws in clients:
            ws.transport.abort()
        server.should_exit = True
        await serving
