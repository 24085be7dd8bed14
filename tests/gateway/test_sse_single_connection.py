"""graphql-sse's single connection mode, request by request, against the gateway under real
uvicorn: reservations, one stream per token, operations posted with their id, results on the
stream as ``next``/``complete`` events with that id, DELETE stopping a subscription, and the
refusals (unknown token, a second stream, other credentials, a request without an id)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import sse_single
from gateway.sse_single import TOKEN_HEADER
from samples.serving import ThreadedServer
from tests.gateway.test_subscription_clients import config_file, until_subscribed
from tests.gateway.test_subscription_shutdown import ServeProcess
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    SUBSCRIBE,
    change,
    served,
    wait_for,
)

__all__ = ["config_file", "served"]  # fixtures


class EventStream:
    """The SSE events of one open stream, parsed as graphql-sse's client parses them."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self) -> tuple[str, dict[str, Any]]:
        event, data = "", ""
        async with asyncio.timeout(15):
            async for line in self.lines:
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data = line.partition(":")[2].strip()
                elif not line and event:
                    return event, json.loads(data)
        raise AssertionError("the stream ended")


@contextlib.asynccontextmanager
async def opened(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, EventStream]]:
    reserved = await client.put("/graphql", headers=headers)
    assert reserved.status_code == 201, reserved.text
    assert reserved.headers["content-type"].startswith("text/plain")
    token = reserved.text
    stream_headers = {**(headers or {}), TOKEN_HEADER: token, "accept": "text/event-stream"}
    async with client.stream("GET", "/graphql", headers=stream_headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield token, EventStream(response)


def operation(token: str, operation_id: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "headers": {TOKEN_HEADER: token},
        "json": {"query": query, "extensions": {"operationId": operation_id}, **extra},
    }


async def test_queries_and_a_subscription_share_one_stream(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with httpx.AsyncClient(base_url=served.url) as client, opened(client) as (token, events):
        follow = await client.post("/graphql", **operation(token, "follow", SUBSCRIBE))
        assert follow.status_code == 202, follow.text
        await wait_for(served, lambda events: events["subscribers"] == 1)
        query = "{ cases(first: 3) { totalCount edges { node { referenceNumber } } } }"
        count = await client.post("/graphql", **operation(token, "count", query))
        assert count.status_code == 202
        plain = (await client.post("/graphql", json={"query": query})).json()
        assert plain["data"]["cases"]["totalCount"] > 0
        assert await events.next() == ("next", {"id": "count", "payload": plain})
        assert await events.next() == ("complete", {"id": "count"})
        await change(agency_dsn, SET_STATUS, 57, "WIP")
        event, data = await events.next()
        assert event == "next" and data["id"] == "follow"
        assert data["payload"]["data"]["caseEvents"]["case"]["sourceStatus"] == "WIP"

        stop = await client.delete(
            "/graphql", params={"operationId": "follow"}, headers={TOKEN_HEADER: token}
        )
        assert stop.status_code == 200
        await wait_for(served, lambda events: events["subscribers"] == 0)
        invalid = await client.post("/graphql", **operation(token, "bad", "{ noSuchField }"))
        assert invalid.status_code == 202  # validation errors come on the stream
        event, data = await events.next()
        assert event == "next" and data["id"] == "bad"  # nothing of "follow" came after stop
        assert data["payload"]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_refusals(served: ThreadedServer) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        unknown = await client.post("/graphql", **operation("nope", "1", "{ __typename }"))
        assert unknown.status_code == 404
        gone = await client.delete(
            "/graphql", params={"operationId": "1"}, headers={TOKEN_HEADER: "nope"}
        )
        assert gone.status_code == 404
        key = {"authorization": "Bearer someone"}
        async with opened(client, key) as (token, _):
            second = await client.get(
                "/graphql", headers={**key, TOKEN_HEADER: token, "accept": "text/event-stream"}
            )
            assert second.status_code == 409
            other = await client.post(
                "/graphql",
                headers={TOKEN_HEADER: token, "authorization": "Bearer someone-else"},
                json={"query": "{ __typename }", "extensions": {"operationId": "1"}},
            )
            assert other.status_code == 404  # a token works only with its own credentials
            no_id = await client.post(
                "/graphql", headers={**key, TOKEN_HEADER: token}, json={"query": "{ __typename }"}
            )
            assert no_id.status_code == 400 and "operationId" in no_id.text
            unparsable = await client.post(
                "/graphql",
                headers={**key, TOKEN_HEADER: token},
                json={"query": "{", "extensions": {"operationId": "1"}},
            )
            assert unparsable.status_code == 400
            assert unparsable.json()["errors"][0]["message"].startswith("Syntax Error")


async def test_shutdown_completes_the_operations_then_ends_the_stream(
    config_file: Path, tmp_path: Path
) -> None:
    gateway = ServeProcess(config_file, tmp_path / "serve.log")
    try:
        await gateway.up()
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
            opened(client) as (token, events),
        ):
            follow = await client.post("/graphql", **operation(token, "follow", SUBSCRIBE))
            assert follow.status_code == 202
            await until_subscribed(gateway, 1)
            gateway.process.send_signal(signal.SIGTERM)
            assert await events.next() == ("complete", {"id": "follow"})
            with pytest.raises(AssertionError, match="the stream ended"):
                await events.next()  # the body ends: no connection left for uvicorn to wait on
        assert await gateway.exited() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        log = gateway.log.read_text()
        assert "Traceback" not in log and "Finished server process" in log, log
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
            gateway.process.wait()


async def test_a_reservation_never_opened_expires_with_what_it_started(
    served: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with httpx.AsyncClient(base_url=served.url) as client:
        token = (await client.put("/graphql")).text
        follow = await client.post("/graphql", **operation(token, "follow", SUBSCRIBE))
        assert follow.status_code == 202  # results wait for a stream that never comes
        await wait_for(served, lambda events: events["subscribers"] == 1)
        monkeypatch.setattr(sse_single, "RESERVATION_SECONDS", 0.0)
        assert (await client.put("/graphql")).status_code == 201  # a reservation prunes
        await wait_for(served, lambda events: events["subscribers"] == 0)
        late = await client.post("/graphql", **operation(token, "late", "{ __typename }"))
        assert late.status_code == 404
