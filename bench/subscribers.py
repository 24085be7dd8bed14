"""Subscribers at scale: N WebSocket subscribers on one gateway, latency from commit to client.

Run: ``python -m bench.subscribers`` (defaults: 100, 1,000 and 5,000 subscribers, 20 events
each; ``--documents K`` spreads them round-robin over K distinct documents, so K groups share
the resolutions; ``--client-processes P`` holds them in P processes of their own instead of this
one, so that reading N sockets in Python is not what the latency measures). It loads a
Damrongdhama database (PostgreSQL: COMPLAINT_GRAPH_DEMO_DSN, else 127.0.0.1:5432, else an
embedded server) and installs the NOTIFY triggers. For each N it starts a
fresh ``complaint-graph serve`` in a process of its own, connects N graphql-transport-ws
subscribers from this process (in batches, so the gateway's listen backlog never overflows),
then commits status changes one at a time. Each change writes the wall-clock time of its
committing statement into the case's ``detail`` column; every subscriber reads it back from the
event (``case { description }``), so latency is from the agency commit to the client holding
the event, with nothing kept on the side. The next change waits until every subscriber has the
last one (or 60 s). Memory per subscriber is the gateway's resident memory growth from before
the first connection to when all N are subscribed, divided by N. Gateway CPU per event is the
gateway process's user and system time over the events, divided by their number (this
process, holding the N client sockets, is not counted). Resolutions per event are read
from the gateway's own /metrics (``complaint_graph_subscription_resolutions_total``): one per
group when subscribers share, N when each resolves its own. Everything is bounded in time:
the bench stops by itself and stops every gateway it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from samples import damrongdhama
from sources.sql._notify import install_triggers

QUERY = (
    "subscription {name} "
    "{{ caseEvents {{ id type newStatus case {{ referenceNumber description }} }} }}"
)
RESOLUTIONS = "complaint_graph_subscription_resolutions_total"
MARK = "bench-commit "
CONNECT_BATCH = 200
DATABASE = "complaint_graph_bench_subs"
SETUP_SECONDS = 300  # connecting N subscribers
EVENT_SECONDS = 60  # one change reaching every subscriber


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


def raise_open_files_limit(needed: int) -> int:
    """Each subscriber is a socket here and one in the gateway (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_config(url: str, directory: Path) -> Path:
    """samples/config.yaml cut down to the Damrongdhama source, pointed at the bench database."""
    text = (Path(__file__).parent.parent / "samples" / "config.yaml").read_text(encoding="utf-8")
    head, rest = text.split("  - id: damrongdhama", 1)
    damrong = rest.split("\n  # The Khon Kaen", 1)[0]
    assert "notify_channel: complaint_graph" in damrong, "the bench measures NOTIFY delivery"
    path = directory / "bench.yaml"
    body = damrong.replace("${DEMO_DAMRONGDHAMA_URL}", url)
    # Subscribers connect without credentials: anonymous callers may read every case here.
    keys = f"sqlite+aiosqlite:///{directory / 'keys.sqlite'}"
    access = f"auth:\n  key_store: {keys}\n  anonymous: {{role: inspector}}\n"
    path.write_text(head + "  - id: damrongdhama" + body + "\n" + access, encoding="utf-8")
    return path


class GatewayProcess:
    """``complaint-graph serve`` in its own process: the load side never shares its CPU time."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        executable = Path(sys.executable).with_name("complaint-graph")
        command = [str(executable), "serve", "--config", str(config), "--port", str(port)]
        with log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)

    async def resolutions(self) -> float | None:
        """Subscription resolutions so far (None: a gateway that does not count them)."""
        text = (await self.client.get("/metrics")).text
        found = [
            float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(RESOLUTIONS)
        ]
        return sum(found) if found else None

    async def events(self) -> dict[str, Any]:
        report: dict[str, Any] = (await self.client.get("/readyz")).json()["events"]
        return report

    async def until(self, check: Any, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the gateway exited; see {self.log}")
            try:
                if check(await self.events()):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit(f"gave up waiting for {what} after {seconds:.0f} s")

    async def stop(self) -> None:
        await self.client.aclose()
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Subscribers:
    """N open subscriptions and, per event reference, when each subscriber got it (latency s)."""

    sockets: list[ClientConnection]
    latencies: dict[str, list[float]]
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def subscribe(url: str, document: int) -> ClientConnection:
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=120,
        ping_interval=None,  # the gateway pings; 5,000 client pings would be load of our own
        max_queue=None,
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    query = QUERY.format(name=f"Watch{document}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


Record = Callable[[str, float], None]
"""Takes (case reference, seconds from commit to this client) for each event received."""


async def listen(ws: ClientConnection, record: Record) -> None:
    try:
        async for raw in ws:
            received = time.time()
            message = json.loads(raw)
            if message.get("type") != "next":
                continue
            case = message["payload"]["data"]["caseEvents"]["case"]
            description = case["description"]
            if description.startswith(MARK):
                committed = float(description.removeprefix(MARK))
                record(case["referenceNumber"], received - committed)
    except ConnectionClosed:
        return


async def connect_all(url: str, count: int, documents: int = 1) -> Subscribers:
    sockets: list[ClientConnection] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = range(start, min(start + CONNECT_BATCH, count))
        sockets += await asyncio.gather(*(subscribe(url, n % documents) for n in batch))
    latencies: dict[str, list[float]] = {}

    def record(reference: str, seconds: float) -> None:
        latencies.setdefault(reference, []).append(seconds)

    tasks = [asyncio.create_task(listen(ws, record)) for ws in sockets]
    return Subscribers(sockets, latencies, tasks)


@dataclass
class ClientProcesses:
    """N subscribers held by client processes of their own (``--client-processes P``), so
    that reading N sockets is spread over cores; each reports its latencies on its stdout."""

    processes: list[asyncio.subprocess.Process]
    latencies: dict[str, list[float]]
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            await process.wait()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def connect_in_processes(
    url: str, count: int, documents: int, processes: int
) -> ClientProcesses:
    """Subscriber n of N is held by process n mod P, on document n mod K as in-process."""
    started = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.subscribers",
            "--worker",
            url,
            str(len(range(index, count, processes))),
            str(documents),
            str(index),
            str(processes),
            stdout=asyncio.subprocess.PIPE,
        )
        for index in range(processes)
    ]
    latencies: dict[str, list[float]] = {}
    for process in started:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if line != b"ready\n":
            raise SystemExit(f"a client process did not connect its subscribers: {line!r}")
    tasks = [asyncio.create_task(_read_latencies(p, latencies)) for p in started]
    return ClientProcesses(started, latencies, tasks)


async def _read_latencies(
    process: asyncio.subprocess.Process, latencies: dict[str, list[float]]
) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        reference, seconds = line.decode().rstrip("\n").split("\t")
        latencies.setdefault(reference, []).append(float(seconds))


async def client_process(url: str, count: int, documents: int, offset: int, step: int) -> None:
    """A client process's life: connect, say ``ready``, then report each event received."""
    sockets: list[ClientConnection] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = range(start, min(start + CONNECT_BATCH, count))
        indices = ((offset + k * step) % documents for k in batch)
        sockets += await asyncio.gather(*(subscribe(url, document) for document in indices))
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    def record(reference: str, seconds: float) -> None:
        sys.stdout.write(f"{reference}\t{seconds!r}\n")
        sys.stdout.flush()

    await asyncio.gather(*(listen(ws, record) for ws in sockets))


async def commit_change(writer: asyncpg.Connection, case: int, status: str) -> str:
    """One autocommitted UPDATE carrying the time it was issued; returns the reference."""
    committed = time.time()
    reference: str = await writer.fetchval(
        "UPDATE complaints SET status_code = $2, detail = $3, updated_at = now() "
        "WHERE id = $1 RETURNING ref_no",
        case,
        status,
        f"{MARK}{committed!r}",
    )
    return reference


@dataclass
class Row:
    subscribers: int
    documents: int
    events: int
    resolutions_per_event: float | None
    cpu_ms_per_event: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    delivered: float
    kib_per_subscriber: float
    connect_seconds: float

    def markdown(self) -> str:
        resolutions = (
            "-" if self.resolutions_per_event is None else f"{self.resolutions_per_event:g}"
        )
        return (
            f"| {self.subscribers:,} | {self.documents} | {self.events} | {resolutions} | "
            f"{self.cpu_ms_per_event:.0f} | "
            f"{self.p50_ms:.0f} | {self.p99_ms:.0f} | "
            f"{self.max_ms:.0f} | {self.delivered:.1%} | {self.kib_per_subscriber:.1f} | "
            f"{self.connect_seconds:.1f} |"
        )


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def measure(
    count: int,
    documents: int,
    events: int,
    clients: int,
    config: Path,
    port: int,
    writer: asyncpg.Connection,
    first_case: int,
) -> Row:
    gateway = GatewayProcess(config, port, config.with_name(f"gateway-{count}.log"))
    url = f"ws://127.0.0.1:{port}/graphql"
    try:
        await gateway.until(lambda e: e["watching"], 120, "the gateway to watch its source")
        # Warm up: the first subscription and event load code that no subscriber should be
        # charged for.
        warm = await connect_all(url, 1)
        await gateway.until(lambda e: e["subscribers"] == 1, 30, "the warm-up subscriber")
        reference = await commit_change(writer, first_case, "ACK")
        await wait_delivered(warm, reference, 1)
        await warm.close()
        await gateway.until(lambda e: e["subscribers"] == 0, 30, "the warm-up to leave")
        before = rss_kib(gateway.process.pid)
        started = time.monotonic()
        connecting = (
            connect_all(url, count, documents)
            if clients == 1
            else connect_in_processes(url, count, documents, clients)
        )
        subscribers: Subscribers | ClientProcesses = await asyncio.wait_for(
            connecting, SETUP_SECONDS
        )
        await gateway.until(lambda e: e["subscribers"] == count, 60, f"{count} subscribers")
        connect_seconds = time.monotonic() - started
        memory = (rss_kib(gateway.process.pid) - before) / count
        samples: list[float] = []
        resolved_before = await gateway.resolutions()
        cpu_before = cpu_seconds(gateway.process.pid)
        for n in range(events):
            status = "WIP" if n % 2 == 0 else "HOLD"
            reference = await commit_change(writer, first_case + 1 + n, status)
            samples += await wait_delivered(subscribers, reference, count)
        cpu = cpu_seconds(gateway.process.pid) - cpu_before
        resolved = await gateway.resolutions()
        await subscribers.close()
    finally:
        await gateway.stop()
    samples.sort()
    per_event = (
        None
        if resolved is None or resolved_before is None
        else (resolved - resolved_before) / events
    )
    return Row(
        subscribers=count,
        documents=documents,
        events=events,
        resolutions_per_event=per_event,
        cpu_ms_per_event=cpu * 1000 / events,
        p50_ms=percentile(samples, 0.50) * 1000,
        p99_ms=percentile(samples, 0.99) * 1000,
        max_ms=samples[-1] * 1000 if samples else float("nan"),
        delivered=len(samples) / (count * events),
        kib_per_subscriber=memory,
        connect_seconds=connect_seconds,
    )


async def wait_delivered(
    subscribers: Subscribers | ClientProcesses, reference: str, count: int
) -> list[float]:
    """Latencies of ``reference`` once every subscriber has it, or whatever came in 60 s."""
    deadline = time.monotonic() + EVENT_SECONDS
    while len(subscribers.latencies.get(reference, [])) < count:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)
    return list(subscribers.latencies.get(reference, []))


async def prepare_database(admin: str) -> str:
    base, _, query = admin.partition("?")
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await connection.close()
    dsn = base.rsplit("/", 1)[0] + f"/{DATABASE}" + (f"?{query}" if query else "")
    await damrongdhama.create_and_load(dsn, count=2000)
    return dsn


async def run(counts: list[int], documents: int, events: int, clients: int, port: int) -> list[Row]:
    admin, server = admin_dsn()
    dsn = await prepare_database(admin)
    url = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    await install_triggers(url, ["complaints", "complaint_status_log"], "complaint_graph")
    config = gateway_config(url, Path(tempfile.mkdtemp(prefix="bench-subscribers-")))
    writer = await asyncpg.connect(dsn)
    rows = []
    try:
        for index, count in enumerate(counts):
            first_case = 1 + index * 100
            row = await measure(count, documents, events, clients, config, port, writer, first_case)
            print(row.markdown(), flush=True)
            rows.append(row)
    finally:
        await writer.close()
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        finally:
            await connection.close()
        del server
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.subscribers")
    parser.add_argument("--counts", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--documents", type=int, default=1, help="distinct documents (groups)")
    parser.add_argument("--port", type=int, default=8798)
    parser.add_argument(
        "--client-processes", type=int, default=1, help="processes holding the subscribers"
    )
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)  # one client process
    args = parser.parse_args()
    if args.worker:
        url, count, documents, offset, step = args.worker
        raise_open_files_limit(int(count) + 1024)
        asyncio.run(client_process(url, int(count), int(documents), int(offset), int(step)))
        return
    counts = [int(n) for n in args.counts.split(",")]
    if args.events > 99:
        parser.error("--events: at most 99 (each subscriber count changes its own 100 cases)")
    limit = raise_open_files_limit(2 * max(counts) + 1024)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, open files limit {limit}, "
        f"{args.client_processes} client process(es)",
        flush=True,
    )
    print(
        "| subscribers | documents | events | resolutions per event | gateway CPU ms per event | "
        "p50 ms | p99 ms | max ms | delivered | KiB per subscriber | connect s |"
    )
    print(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True
    )
    asyncio.run(run(counts, args.documents, args.events, args.client_processes, args.port))


if __name__ == "__main__":
    main()
