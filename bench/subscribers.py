"""Subscribers at scale: N WebSocket subscribers on one gateway, latency from commit to client.

Run: ``python -m bench.subscribers`` (or ``make bench-subscribers``). It loads a Damrongdhama
database (PostgreSQL: COMPLAINT_GRAPH_DEMO_DSN, else 127.0.0.1:5432, else an embedded server),
installs the NOTIFY triggers, starts ``complaint-graph serve`` in its own process, connects N
graphql-transport-ws subscribers from this process, commits status changes one at a time and
times each event from the commit until every subscriber has it. Memory per subscriber is the
gateway's resident memory growth divided by N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect

from samples import damrongdhama
from sources.sql._notify import install_triggers

QUERY = "subscription { caseEvents { id type newStatus case { referenceNumber status } } }"


def admin_dsn() -> tuple[str, Any]:
    configured = os.environ.get("COMPLAINT_GRAPH_DEMO_DSN")
    if configured:
        return configured, None
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return "postgresql://postgres@127.0.0.1:5432/postgres", None
    except OSError:
        from pgserver.postgres_server import get_server

        path = Path(".demo")
        path.mkdir(exist_ok=True)
        server = get_server(path / "bench-pgdata", cleanup_mode="stop")
        return server.get_uri(), server


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def subscriber(url: str, received: dict[str, list[float]], ready: asyncio.Event) -> None:
    async with connect(url, subprotocols=["graphql-transport-ws"], max_queue=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
        ready.set()
        await listen(ws, received)


async def listen(ws: ClientConnection, received: dict[str, list[float]]) -> None:
    async for raw in ws:
        message = json.loads(raw)
        if message.get("type") == "next":
            reference = message["payload"]["data"]["caseEvents"]["case"]["referenceNumber"]
            received.setdefault(reference, []).append(time.time())


async def run(counts: list[int], events: int, port: int) -> list[str]:
    admin, server = admin_dsn()
    base, _, query = admin.partition("?")
    connection = await asyncpg.connect(admin)
    await connection.execute("DROP DATABASE IF EXISTS complaint_graph_bench_subs WITH (FORCE)")
    await connection.execute("CREATE DATABASE complaint_graph_bench_subs")
    await connection.close()
    dsn = base.rsplit("/", 1)[0] + "/complaint_graph_bench_subs" + (f"?{query}" if query else "")
    await damrongdhama.create_and_load(dsn, count=2000)
    url = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    await install_triggers(url, ["complaints"], "complaint_graph")
    config = Path(tempfile.mkdtemp()) / "bench.yaml"
    text = (Path(__file__).parent.parent / "samples" / "config.yaml").read_text(encoding="utf-8")
    head, damrong = (
        text.split("  - id: damrongdhama", 1)[0],
        text.split("  - id: damrongdhama", 1)[1],
    )
    damrong = damrong.split("\n  # The Khon Kaen", 1)[0]
    config.write_text(
        head + "  - id: damrongdhama" + damrong.replace("${DEMO_DAMRONGDHAMA_URL}", url)
    )
    executable = Path(sys.executable).with_name("complaint-graph")
    gateway = subprocess.Popen(
        [str(executable), "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                try:
                    if (await client.get("/readyz")).json()["events"]["watching"]:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            writer = await asyncpg.connect(dsn)
            case = 1
            for count in counts:
                before = rss_kib(gateway.pid)
                received: dict[str, list[float]] = {}
                tasks = []
                for _ in range(count):
                    ready = asyncio.Event()
                    ws_url = f"ws://127.0.0.1:{port}/graphql"
                    tasks.append(asyncio.create_task(subscriber(ws_url, received, ready)))
                    await ready.wait()
                while (await client.get("/readyz")).json()["events"]["subscribers"] < count:
                    await asyncio.sleep(0.05)
                memory = (rss_kib(gateway.pid) - before) / count
                latencies: list[float] = []
                for _ in range(events):
                    reference = await writer.fetchval(
                        "UPDATE complaints SET status_code = 'WIP', updated_at = now() "
                        "WHERE id = $1 RETURNING ref_no",
                        case,
                    )
                    committed = time.time()
                    case += 1
                    deadline = committed + 60
                    while len(received.get(reference, [])) < count and time.time() < deadline:
                        await asyncio.sleep(0.005)
                    latencies.extend(t - committed for t in received.get(reference, []))
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                latencies.sort()
                delivered = len(latencies) / (count * events)
                p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
                rows.append(
                    f"| {count} | {events} | {statistics.median(latencies) * 1000:.0f} | "
                    f"{p99 * 1000:.0f} | {delivered:.0%} | {memory:.1f} |"
                )
                print(rows[-1], flush=True)
            await writer.close()
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        del server
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.subscribers")
    parser.add_argument("--counts", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--port", type=int, default=8798)
    args = parser.parse_args()
    print("| subscribers | events | p50 ms | p99 ms | delivered | KiB per subscriber |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    asyncio.run(run([int(n) for n in args.counts.split(",")], args.events, args.port))


if __name__ == "__main__":
    main()
