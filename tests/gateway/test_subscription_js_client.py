"""The graphql-ws reference JS client (npm ``graphql-ws`` over ``ws``), unchanged, receives a
partner agency's case updates from a real ``complaint-graph serve`` process."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.gateway.test_subscription_clients import FOLLOW, config_file, until_subscribed
from tests.gateway.test_subscription_shutdown import ServeProcess
from tests.gateway.test_subscriptions import SET_STATUS, change

CLIENT = Path(__file__).parents[1] / "http-audit" / "ws-client.mjs"

__all__ = ["config_file"]  # the fixture, shared with the Python gql client's test


async def test_the_graphql_ws_js_client_gets_each_update_in_order(
    config_file: Path, agency_dsn: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed for the JS client test (see README, Tests)"
    assert (CLIENT.parent / "node_modules" / "graphql-ws").is_dir(), "run make test (npm ci)"
    gateway = ServeProcess(config_file, tmp_path / "serve.log")
    try:
        await gateway.up()
        url = gateway.url.replace("http", "ws") + "/graphql"
        client = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT),
            url,
            FOLLOW,
            "2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await until_subscribed(gateway, 1)
            await change(agency_dsn, SET_STATUS, 57, "WIP")
            await change(agency_dsn, SET_STATUS, 58, "HOLD")
            async with asyncio.timeout(20):
                out, err = await client.communicate()
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
        assert client.returncode == 0, err.decode()
        results = [json.loads(line) for line in out.decode().splitlines()]
        assert all("errors" not in result for result in results), results
        events = [result["data"]["caseEvents"] for result in results]
        assert [(e["case"]["referenceNumber"][-6:], e["case"]["sourceStatus"]) for e in events] == [
            ("000057", "WIP"),
            ("000058", "HOLD"),
        ]
        assert events[0]["id"] != events[1]["id"]
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
            gateway.process.wait()
