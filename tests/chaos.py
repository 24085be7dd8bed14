"""The chaos harness: real agencies misbehaving one at a time under a steady load.

The 1111 service and the Open311 city platform run as processes of their own; they and the
PostgreSQL agency are reached through :class:`FaultProxy`, a TCP proxy that can stall, slow,
trickle or corrupt what passes. The gateway runs in a thread with its own event loop and real
HTTP. Several callers send a query with one alias per source, and one more caller cuts its
requests off mid-flight, while :func:`run_chaos` injects a fault into one agency at a time
(SIGSTOP, kill and restart, latency, a trickle, truncated or invalid JSON, a stalled database),
heals it, and watches the agency come back.

Every answer is checked: HTTP 200 (never a 5xx), before the request's deadline, every healthy
agency's part present, an error only for the sick one. :class:`Report` holds the figures.
``tests/test_chaos.py`` runs one round of faults in ``make test``; a long run is
``COMPLAINT_GRAPH_CHAOS_MINUTES=10 .venv/bin/pytest tests/test_chaos.py -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.agencies import AgencyProcess
from tests.sockets import open_to

PASS, STALL, SLOW, TRICKLE, CORRUPT, TRUNCATE = (
    "pass",
    "stall",
    "slow",
    "trickle",
    "corrupt",
    "truncate",
)


PACE = 0.1
"""Seconds each caller waits between its requests."""
CALLERS = 3


class FaultProxy:
    """A TCP proxy on loopback in front of one agency; ``mode`` applies to what the agency
    sends back (and, for ``stall``, to both directions), changed at any time."""

    def __init__(self, upstream_port: int, rng: random.Random) -> None:
        self.upstream_port = upstream_port
        self.mode = PASS
        self.rng = rng
        self.port = 0
        self.changed = asyncio.Event()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def set(self, mode: str) -> None:
        self.mode = mode
        self.changed.set()
        self.changed = asyncio.Event()

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        # A connection accepted just before the server closed gets its handler a few loop turns
        # later (accept, transport, protocol, task): let those run, so each closes its socket
        # (see _handle) instead of being dropped unclosed when the loop ends.
        for _ in range(20):
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
            await asyncio.gather(
                self._pump(reader, upstream, False),
                self._pump(upstream_reader, writer, True),
            )
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for each in (writer, upstream):
                if each is not None:
                    each.close()
            self.connections -= 1
            self._tasks.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool
    ) -> None:
        try:
            while True:
                while self.mode == STALL:
                    await self.changed.wait()
                chunk = await source.read(65536)
                if not chunk:
                    break
                while self.mode == STALL:
                    await self.changed.wait()
                if answers:
                    await self._answer(chunk, sink)
                else:
                    sink.write(chunk)
                    await sink.drain()
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if sink.can_write_eof():
                    sink.write_eof()

    async def _answer(self, chunk: bytes, sink: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == SLOW:
            await asyncio.sleep(2.0)  # the agency's latency, part of the fault
        if mode in (CORRUPT, TRUNCATE):
            head, separator, body = chunk.partition(b"\r\n\r\n")
            if separator and body[:1] in (b"{", b"["):
                if mode == CORRUPT:  # invalid JSON of the announced length
                    chunk = head + separator + b"<" + body[1:]
                else:  # the answer cut off half-way, the connection closed
                    sink.write(head + separator + body[: len(body) // 2])
                    await sink.drain()
                    raise ConnectionResetError("truncated by the chaos proxy")
        if mode == TRICKLE:
            for start in range(0, len(chunk), 64):
                sink.write(chunk[start : start + 64])
                await sink.drain()
                await asyncio.sleep(0.05)  # the agency's pace, part of the fault
            return
        sink.write(chunk)
        await sink.drain()


@dataclass
class Fault:
    """One misbehaviour of one agency: how to start it and how to end it."""

    name: str
    source: str
    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]


@dataclass
class Report:
    faults: int = 0
    requests: int = 0
    partial: int = 0
    cancelled: int = 0
    recoveries: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    leaks: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        slowest = max(self.recovery_seconds, default=0.0)
        return (
            f"faults injected: {self.faults}; requests served: {self.requests}; "
            f"partial answers: {self.partial}; requests cancelled mid-flight: "
            f"{self.cancelled}; recoveries: {self.recoveries} (slowest {slowest:.1f} s); "
            f"leaks found: {self.leaks}; violations: {len(self.violations)}"
        )


def per_source_query(sources: list[str]) -> str:
    """One alias per source, so each answer says which sources answered."""
    parts = [
        f'{alias(s)}: cases(first: 2, filter: {{source: ["{s}"]}}) '
        "{ totalCount edges { node { id title } } }"
        for s in sources
    ]
    return "{ " + " ".join(parts) + " }"


def alias(source: str) -> str:
    return "s_" + source.replace("-", "_")


@dataclass
class Harness:
    """What :func:`run_chaos` drives: the gateway's URL and the sick-able agencies."""

    gateway_url: str
    sources: list[str]
    deadline: float
    recovery: float
    faults: list[Fault]
    proxies: dict[str, FaultProxy]
    pool_sizes: dict[str, int]
    sick: set[str] = field(default_factory=set)
    now: str = "no fault"
    """The fault injected at the moment, for the violations' messages."""
    healed_at: dict[str, float] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


async def run_chaos(harness: Harness, rounds: int, minutes: float, seed: int) -> Report:
    """Load from three callers and a canceller while each fault is injected and healed in turn
    (``rounds`` passes over them, or until ``minutes`` when given)."""
    report = Report()
    rng = random.Random(seed)
    query = per_source_query(harness.sources)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=harness.gateway_url, timeout=60) as client:
        body = (await client.post("/graphql", json={"query": query})).json()
        assert "errors" not in body, body
        harness.totals = {s: body["data"][alias(s)]["totalCount"] for s in harness.sources}
        callers = [
            asyncio.create_task(_caller(client, harness, query, report, stop))
            for _ in range(CALLERS)
        ]
        callers.append(asyncio.create_task(_canceller(client, query, report, stop, rng)))
        try:
            ends = time.monotonic() + minutes * 60
            done_rounds = 0
            while (minutes and time.monotonic() < ends) or (not minutes and done_rounds < rounds):
                faults = list(harness.faults)
                rng.shuffle(faults)
                for fault in faults:
                    await _inject(harness, fault, report)
                done_rounds += 1
        finally:
            stop.set()
            await asyncio.gather(*callers)
    await _count_leaks(harness, report)
    return report


async def _inject(harness: Harness, fault: Fault, report: Report) -> None:
    harness.sick.add(fault.source)
    harness.now = fault.name
    report.faults += 1
    await fault.begin()
    await asyncio.sleep(harness.deadline + 1)  # the fault lasts; the load meets it meanwhile
    await fault.end()
    healed = time.monotonic()
    harness.healed_at[fault.source] = healed
    # Served again within two circuit periods (and a request's deadline) of recovering.
    limit = 2 * harness.recovery + harness.deadline
    async with httpx.AsyncClient(base_url=harness.gateway_url, timeout=60) as probe:
        query = per_source_query([fault.source])
        while True:
            body = (await probe.post("/graphql", json={"query": query})).json()
            if "errors" not in body:
                break
            if time.monotonic() - healed > limit:
                report.violations.append(
                    f"{fault.source} not served {limit:.0f} s after {fault.name} ended: "
                    f"{body['errors'][0]['message']}"
                )
                break
            await asyncio.sleep(0.1)  # a condition with a deadline: the trial call succeeds
    took = time.monotonic() - healed
    if took <= limit:
        report.recoveries += 1
        report.recovery_seconds.append(took)
    harness.sick.discard(fault.source)
    harness.now = "no fault"


def _sick_now(harness: Harness, started: float) -> set[str]:
    """Sources allowed to fail a request that started at ``started``: under a fault, or
    healed so recently that their circuit may not have let a trial through yet."""
    grace = 2 * harness.recovery + harness.deadline
    recent = {s for s, at in harness.healed_at.items() if started - at < grace}
    return set(harness.sick) | recent


async def _caller(
    client: httpx.AsyncClient, harness: Harness, query: str, report: Report, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        sick_before = _sick_now(harness, time.monotonic())
        started = time.monotonic()
        try:
            response = await client.post("/graphql", json={"query": query})
        except httpx.HTTPError as exc:
            report.violations.append(f"no answer at all: {type(exc).__name__}")
            continue
        took = time.monotonic() - started
        sick = sick_before | _sick_now(harness, time.monotonic())
        report.requests += 1
        _check(harness, response, took, sick, report)
        await asyncio.sleep(PACE)  # a steady load, not a flood: the machine has two cores


def _check(
    harness: Harness, response: httpx.Response, took: float, sick: set[str], report: Report
) -> None:
    violations = len(report.violations)
    _check_answer(harness, response, took, sick, report)
    for n in range(violations, len(report.violations)):
        report.violations[n] = f"[{harness.now}] {report.violations[n]}"


def _check_answer(
    harness: Harness, response: httpx.Response, took: float, sick: set[str], report: Report
) -> None:
    if response.status_code != 200:
        report.violations.append(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    if took > harness.deadline + 0.5:
        report.violations.append(f"answered after {took:.2f} s (deadline {harness.deadline} s)")
    body = response.json()
    data = body.get("data")
    if data is None:
        report.violations.append(f"no data: {body.get('errors')}")
        return
    failed = {e.get("extensions", {}).get("source") for e in body.get("errors", [])}
    if failed:
        report.partial += 1
    for source in harness.sources:
        part = data.get(alias(source))
        if source in failed or part is None:
            if source not in sick:
                report.violations.append(f"healthy {source} failed: {body.get('errors')}")
        elif part["totalCount"] != harness.totals[source]:
            report.violations.append(f"{source} counted {part['totalCount']}")
    stray = failed - sick - {None}
    if stray:
        report.violations.append(f"errors for healthy sources {stray}")


async def _canceller(
    client: httpx.AsyncClient, query: str, report: Report, stop: asyncio.Event, rng: random.Random
) -> None:
    """Cuts its requests off mid-flight, as a browser tab closed while waiting."""
    while not stop.is_set():
        request = asyncio.create_task(client.post("/graphql", json={"query": query}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(request), rng.uniform(0.001, 0.05))
        if not request.done():
            request.cancel()
            report.cancelled += 1
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await request
        await asyncio.sleep(3 * PACE)  # the gateway finishes what a gone client asked


async def _count_leaks(harness: Harness, report: Report) -> None:
    """Sockets from the gateway to each agency once the load has stopped and one more request
    has gone to each (a pool drops idle connections the agency closed when it next looks, so
    those are not leaks): none in CLOSE-WAIT, none holding unread bytes, no more than its pool
    may keep. Retired pools close as their last request ends: waited for, with a deadline."""
    async with httpx.AsyncClient(base_url=harness.gateway_url, timeout=60) as probe:
        query = per_source_query(harness.sources)
        body = (await probe.post("/graphql", json={"query": query})).json()
        if body.get("errors"):
            report.violations.append(f"the last request was not answered in full: {body}")
    ends = time.monotonic() + 15
    while True:
        found = {name: open_to(proxy.port) for name, proxy in harness.proxies.items()}
        leaks = sum(
            counts["CLOSE_WAIT"]
            + counts["ESTABLISHED_UNREAD"]
            + max(0, counts["ESTABLISHED"] - harness.pool_sizes[name])
            for name, counts in found.items()
        )
        if leaks == 0 or time.monotonic() > ends:
            break
        await asyncio.sleep(0.2)
    report.leaks = leaks
    if leaks:
        report.violations.append(f"connections leaked: {found}")


def process_faults(name: str, source: str, agency: AgencyProcess) -> list[Fault]:
    async def pause() -> None:
        agency.pause()

    async def resume() -> None:
        agency.resume()

    async def kill() -> None:
        await asyncio.to_thread(agency.kill)

    async def restart() -> None:
        await asyncio.to_thread(agency.start)

    return [
        Fault(f"{name} paused (SIGSTOP)", source, pause, resume),
        Fault(f"{name} killed and restarted", source, kill, restart),
    ]


def proxy_faults(name: str, source: str, proxy: FaultProxy, modes: list[str]) -> list[Fault]:
    def switch(mode: str) -> Callable[[], Awaitable[None]]:
        async def to() -> None:
            proxy.set(mode)

        return to

    return [Fault(f"{name} {mode}", source, switch(mode), switch(PASS)) for mode in modes]


def describe(report: Report) -> dict[str, Any]:
    return {
        "faults": report.faults,
        "requests": report.requests,
        "partial": report.partial,
        "cancelled": report.cancelled,
        "recoveries": report.recoveries,
        "leaks": report.leaks,
    }
