"""Graceful shutdown of a real ``complaint-graph serve`` process with subscribers connected: each
transport is closed the way its protocol says, and the process finishes by itself."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from samples.serving import free_port
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    SUBSCRIBE,
    change,
    config_yaml,
    next_event,
    watched_config,
)


class ServeProcess:
    """``complaint-graph serve`` in a process of its own, as an operator runs it."""

    def __init__(self, config: Path, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.log = log
        self.workers = workers
        command = [str(Path(sys.executable).with_name("complaint-graph")), "serve"]
        command += ["--config", str(config), "--port", str(self.port)]
        command += ["--workers", str(workers)]
        with log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        # Shaped like ThreadedServer, so the helpers of the subscription tests apply.
        self.url = f"http://127.0.0.1:{self.port}"

    async def up(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client, asyncio.timeout(60):
            while True:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    if (await client.get("/readyz")).json()["events"]["watching"]:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    async def exited(self) -> int:
        code = await asyncio.to_thread(self.process.wait, 30)
        return code


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def serve_process(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ServeProcess]:
    (source,) = watched_config(demo_data, agency_dsn).sources
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(demo_data, source), encoding="utf-8")
    served = ServeProcess(path, tmp_path / "serve.log", workers=request.param)
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


async def subscribed(url: str, protocol: str) -> ClientConnection:
    ws = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    # As `complaint-graph serve` runs: no permessage-deflate (fan-out cost), text frames (the
    # protocols' JSON; off-the-shelf clients refuse binary ones).
    assert "Sec-WebSocket-Extensions" not in ws.response.headers  # type: ignore[union-attr]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    ack = await ws.recv()
    assert isinstance(ack, str) and json.loads(ack)["type"] == "connection_ack"
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await ws.send(json.dumps({"id": "1", "type": kind, "payload": {"query": SUBSCRIBE}}))
    return ws


async def subscribers_in_every_process(served: ServeProcess, total: int) -> None:
    """Poll /readyz on fresh connections (so every worker process gets asked) until the
    processes' subscriber counts add up to ``total`` (a condition with a deadline)."""
    counts: dict[int, int] = {}
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=served.url, limits=no_keepalive) as client,
        asyncio.timeout(30),
    ):
        while len(counts) < served.workers or sum(counts.values()) != total:
            report = (await client.get("/readyz")).json()
            counts[report["process"]] = report["events"]["subscribers"]
            await asyncio.sleep(0.02)


async def until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message up to the close (bounded in time)."""
    messages = []
    async with asyncio.timeout(15):
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
    return messages


async def test_shutdown_closes_websockets_with_1001_and_completes_sse_streams(
    serve_process: ServeProcess, agency_dsn: str
) -> None:
    await serve_process.up()
    url = serve_process.url.replace("http", "ws") + "/graphql"
    modern = await subscribed(url, "graphql-transport-ws")
    legacy = await subscribed(url, "graphql-ws")
    async with (
        httpx.AsyncClient(base_url=serve_process.url, timeout=30) as client,
        client.stream(
            "POST", "/graphql", json={"query": SUBSCRIBE}, headers={"accept": "text/event-stream"}
        ) as sse,
    ):
        await subscribers_in_every_process(serve_process, 3)
        await change(agency_dsn, SET_STATUS, 40, "WIP")
        assert (await next_event(modern))["case"]["sourceStatus"] == "WIP"  # live before it stops
        assert (await next_event(legacy))["case"]["sourceStatus"] == "WIP"

        serve_process.process.send_signal(signal.SIGTERM)
        after_modern, after_legacy = await asyncio.gather(
            until_closed(modern), until_closed(legacy)
        )
        sse_events = []
        async with asyncio.timeout(15):
            async for line in sse.aiter_lines():  # ends only if the server ends the body
                if line.startswith("event: "):
                    sse_events.append(line.removeprefix("event: "))
    await serve_process.exited()

    for ws in (modern, legacy):
        assert ws.close_code == 1001, (ws.close_code, ws.close_reason)
        assert "resume with after" in (ws.close_reason or "")
    # No ``complete``: standard clients take 1001 as "reconnect and subscribe again".
    assert all(m["type"] not in ("complete", "error") for m in after_modern + after_legacy)
    assert sse_events[-1] == "complete"
    assert "next" in sse_events  # the change before shutdown came through SSE too
    log = serve_process.log.read_text()
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log
