"""The graphql-sse reference JS client (npm ``graphql-sse``), unchanged, in both modes of the
GraphQL over Server-Sent Events protocol against a real ``complaint-graph serve`` process: a
query and a subscription at once, on one reserved stream (single connection mode: PUT, GET the
stream, POST each operation, DELETE to stop) or on a stream each (distinct connections)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_subscription_clients import FOLLOW, config_file, until_subscribed
from tests.gateway.test_subscription_shutdown import ServeProcess
from tests.gateway.test_subscriptions import SET_STATUS, change

CLIENT = Path(__file__).parents[1] / "http-audit" / "sse-client.mjs"
QUERY = "{ cases(first: 3) { totalCount edges { node { referenceNumber } } } }"

__all__ = ["config_file"]  # the fixture, shared with the other clients' tests


async def next_line(stream: asyncio.StreamReader) -> dict[str, Any]:
    async with asyncio.timeout(30):
        line = await stream.readline()
    assert line, "the client ended early"
    found: dict[str, Any] = json.loads(line)
    return found


@pytest.mark.parametrize("mode", ["single", "distinct"])
async def test_the_graphql_sse_js_client_runs_a_query_and_follows_updates(
    mode: str, config_file: Path, agency_dsn: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed for the JS client test (see README, Tests)"
    assert (CLIENT.parent / "node_modules" / "graphql-sse").is_dir(), "run make test (npm ci)"
    gateway = ServeProcess(config_file, tmp_path / "serve.log")
    try:
        await gateway.up()
        client = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT),
            mode,
            f"{gateway.url}/graphql",
            QUERY,
            FOLLOW,
            "2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert client.stdout is not None and client.stderr is not None
        try:
            answered = await next_line(client.stdout)
            assert answered["op"] == "query", answered
            assert "errors" not in answered["result"], answered
            cases = answered["result"]["data"]["cases"]
            assert cases["totalCount"] > 0 and len(cases["edges"]) == 3
            assert (await next_line(client.stdout)) == {"op": "query-complete"}
            await until_subscribed(gateway, 1)
            await change(agency_dsn, SET_STATUS, 57, "WIP")
            await change(agency_dsn, SET_STATUS, 58, "HOLD")
            results = [await next_line(client.stdout), await next_line(client.stdout)]
            async with asyncio.timeout(20):
                code = await client.wait()
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
        assert code == 0, (await client.stderr.read()).decode()
        assert all(r["op"] == "subscription" and "errors" not in r["result"] for r in results)
        events = [r["result"]["data"]["caseEvents"] for r in results]
        assert [(e["case"]["referenceNumber"][-6:], e["case"]["sourceStatus"]) for e in events] == [
            ("000057", "WIP"),
            ("000058", "HOLD"),
        ]
        await until_subscribed(gateway, 0)  # the client's stop (DELETE, or closing) ended it
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
            gateway.process.wait()
