"""What issue 4 calls done: a partner agency's client, using an off-the-shelf GraphQL WebSocket
client (Python ``gql``, both subprotocols), receives every update to the cases it follows across
a restart of the gateway, resuming with ``after``: nothing missed, nothing twice."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport

from tests.conftest import DemoData
from tests.gateway.test_subscription_shutdown import ServeProcess
from tests.gateway.test_subscriptions import SET_STATUS, change, config_yaml, watched_config

FOLLOW = """
subscription Follow($after: String) {
  caseEvents(after: $after) { id type case { referenceNumber sourceStatus } }
}
"""


def partner_client(url: str, subprotocol: str) -> Client:
    transport = WebsocketsTransport(url=url, subprotocols=[subprotocol])
    return Client(transport=transport, fetch_schema_from_transport=False)


async def events_of(client: Client, after: str | None) -> AsyncIterator[dict[str, Any]]:
    async with client as session:
        request = GraphQLRequest(FOLLOW, variable_values={"after": after})
        async for result in session.subscribe(request):
            yield result["caseEvents"]


@pytest.fixture
def config_file(demo_data: DemoData, agency_dsn: str, tmp_path: Path) -> Path:
    (source,) = watched_config(demo_data, agency_dsn).sources
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(demo_data, source), encoding="utf-8")
    return path


async def subscribers(gateway: ServeProcess) -> int:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        count: int = (await client.get("/readyz")).json()["events"]["subscribers"]
        return count


async def until_subscribed(gateway: ServeProcess, count: int) -> None:
    async with asyncio.timeout(15):
        while True:
            if await subscribers(gateway) == count:
                return
            await asyncio.sleep(0.02)


def summary(event: dict[str, Any]) -> tuple[str, str]:
    return event["case"]["referenceNumber"][-6:], event["case"]["sourceStatus"]


async def test_a_gql_client_misses_nothing_and_gets_nothing_twice_across_a_restart(
    config_file: Path, agency_dsn: str, tmp_path: Path
) -> None:
    first = ServeProcess(config_file, tmp_path / "first.log")
    try:
        await first.up()
        client = partner_client(
            first.url.replace("http", "ws") + "/graphql", "graphql-transport-ws"
        )
        seen: list[dict[str, Any]] = []
        closed: TransportError | None = None
        two_seen = asyncio.Event()

        async def follow() -> None:
            nonlocal closed
            try:
                async for event in events_of(client, None):
                    seen.append(event)
                    if len(seen) == 2:
                        two_seen.set()
            except TransportError as exc:  # the gateway went away: reconnect and resume
                closed = exc

        following = asyncio.create_task(follow())
        await until_subscribed(first, 1)
        await change(agency_dsn, SET_STATUS, 57, "WIP")
        await change(agency_dsn, SET_STATUS, 58, "WIP")
        await asyncio.wait_for(two_seen.wait(), 10)
        first.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await following  # the client's subscription ends with the gateway, not before
        await first.exited()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert closed is not None

    # While no gateway runs, the agency goes on.
    await change(agency_dsn, SET_STATUS, 59, "HOLD")
    await change(agency_dsn, SET_STATUS, 57, "DONE")

    second = ServeProcess(config_file, tmp_path / "second.log")
    try:
        await second.up()
        client = partner_client(second.url.replace("http", "ws") + "/graphql", "graphql-ws")
        resumed: list[dict[str, Any]] = []

        async def resume() -> None:
            async for event in events_of(client, seen[-1]["id"]):
                resumed.append(event)
                if summary(event) == ("000060", "ACK"):
                    return

        resuming = asyncio.create_task(resume())
        await until_subscribed(second, 1)
        await change(agency_dsn, SET_STATUS, 60, "ACK")  # live, after the replay
        async with asyncio.timeout(15):
            await resuming
    finally:
        second.process.terminate()
        await second.exited()

    assert [summary(e) for e in seen] == [("000057", "WIP"), ("000058", "WIP")]
    # What changed while down, once each, oldest change first, in its current state; then live.
    assert [summary(e) for e in resumed] == [
        ("000059", "HOLD"),
        ("000057", "DONE"),
        ("000060", "ACK"),
    ]
    assert len({e["id"] for e in seen + resumed}) == 5
