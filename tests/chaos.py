"""The chaos harness: real agencies misbehaving one at a time under a steady load.

The 1111 service and the Open311 city platform run as processes of their own; they and the
PostgreSQL agency are reached through :class:`FaultProxy`, a TCP proxy that can stall, slow,
trickle or corrupt what passes. The gateway runs in a thread with its own event loop and real
HTTP. Several callers send a query with one alias per source, and one more caller cuts its
requests off mid-flight, while :func:`run_chaos` injects a fault into one agency at a time
(SIGSTOP, kill and restart, latency, a trickle, truncated or invalid JSON, a stalled database),
heals it, and watches the agency come back.

The gateway's own stores are faulted the same way: the audit store's SQLite file locked by
another writer, and Redis (the subscription bus) paused behind a proxy or killed. One more
caller asks for complainants' citizen IDs, each request stating a purpose of its own.

Every answer is checked: HTTP 200 (never a 5xx), before the request's deadline, every healthy
agency's part present, an error only for the sick one. Every citizen ID answered unmasked must
have its entry in the audit store (read back at the end, by purpose and case); a reveal may be
refused (AUDIT_UNAVAILABLE) only while the store is locked. :class:`Report` holds the figures.
``tests/test_chaos.py`` runs one round of faults in ``make test``; a long run is
``COMPLAINT_GRAPH_CHAOS_MINUTES=10 .venv/bin/pytest tests/test_chaos.py -s``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.agencies import AgencyProcess
from tests.sockets import open_to

PASS, STALL, SLOW, TRICKLE, CORRUPT, TRUNCATE, REFUSE = (
    "pass",
    "stall",
    "slow",
    "trickle",
    "corrupt",
    "truncate",
    "refuse",
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
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def set(self, mode: str) -> None:
        self.mode = mode
        self.changed.set()
        self.changed = asyncio.Event()

    async def cut(self) -> None:
        """Close every connection through the proxy at once and every new one until the mode
        changes again: a server killed, until it is restarted."""
        self.set(REFUSE)
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

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
        if self._closing or self.mode == REFUSE:  # REFUSE: the server is down
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
            self._writers |= {writer, upstream}
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
                    self._writers.discard(each)
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
    """One misbehaviour of one agency, or of a store the gateway keeps (``source`` None: every
    agency must then answer in full): how to start it and how to end it, and for a store, how
    to tell it is back (``recovered`` returns what is still wrong, or None)."""

    name: str
    source: str | None
    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]
    recovered: Callable[[], Awaitable[str | None]] | None = None
    recovery_seconds: float | None = None
    """How soon it must be back, if not the agencies' rule (two circuit periods and a
    request's deadline)."""


@dataclass
class Report:
    faults: int = 0
    requests: int = 0
    partial: int = 0
    cancelled: int = 0
    recoveries: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    leaks: int = 0
    hard_stops: int = 0
    reveals_shown: int = 0
    reveals_refused: int = 0
    unaudited: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        slowest = max(self.recovery_seconds, default=0.0)
        return (
            f"faults injected: {self.faults}; requests served: {self.requests}; "
            f"partial answers: {self.partial}; hard stops: {self.hard_stops}; requests "
            f"cancelled mid-flight: {self.cancelled}; recoveries: {self.recoveries} (slowest "
            f"{slowest:.1f} s); leaks found: {self.leaks}; reveals shown: "
            f"{self.reveals_shown} (unaudited: {self.unaudited}), refused: "
            f"{self.reveals_refused}; "
            f"violations: {len(self.violations)}"
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
    revealer: Revealer | None = None


@dataclass
class Revealer:
    """A caller allowed to see complainants' citizen IDs (``headers``), whose every reveal
    the audit store at ``audit_path`` must hold, found by the purpose each request states."""

    headers: dict[str, str]
    sources: list[str]
    audit_path: Path
    shown: set[tuple[str, str]] = field(default_factory=set)
    """(purpose, case id) of every citizen ID the gateway answered unmasked."""

    def query(self) -> str:
        parts = [
            f'{alias(s)}: cases(first: 3, filter: {{source: ["{s}"]}}) '
            "{ edges { node { id complainant { citizenId } } } }"
            for s in self.sources
        ]
        return "{ " + " ".join(parts) + " }"


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
        if harness.revealer is not None:
            callers.append(asyncio.create_task(_revealer(client, harness, report, stop)))
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
    if harness.revealer is not None:
        await _check_audited(harness.revealer, report)
    return report


async def _inject(harness: Harness, fault: Fault, report: Report) -> None:
    sick = fault.source or fault.name
    """What may fail meanwhile: the agency, or (a store's fault) what only that store serves."""
    harness.sick.add(sick)
    harness.now = fault.name
    report.faults += 1
    await fault.begin()
    await asyncio.sleep(harness.deadline + 1)  # the fault lasts; the load meets it meanwhile
    await fault.end()
    healed = time.monotonic()
    harness.healed_at[sick] = healed
    # Served again within two circuit periods (and a request's deadline) of recovering.
    limit = fault.recovery_seconds or 2 * harness.recovery + harness.deadline
    wrong = await _until_recovered(harness, fault, healed + limit)
    if wrong is not None:
        report.violations.append(f"{sick} not back {limit:.0f} s after {fault.name} ended: {wrong}")
    else:
        report.recoveries += 1
        report.recovery_seconds.append(time.monotonic() - healed)
    harness.sick.discard(sick)
    harness.now = "no fault"


async def _until_recovered(harness: Harness, fault: Fault, ends: float) -> str | None:
    """None once the agency (or store) serves again; what is still wrong at ``ends``."""
    async with httpx.AsyncClient(base_url=harness.gateway_url, timeout=60) as probe:
        while True:
            if fault.recovered is not None:
                wrong = await fault.recovered()
            else:
                assert fault.source is not None
                query = per_source_query([fault.source])
                body = (await probe.post("/graphql", json={"query": query})).json()
                wrong = body["errors"][0]["message"] if "errors" in body else None
            if wrong is None or time.monotonic() > ends:
                return wrong
            await asyncio.sleep(0.1)  # a condition with a deadline: the trial call succeeds


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
    body = _answered(harness, response, took, report)
    if body is None:
        return
    data = body["data"]
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


def _answered(
    harness: Harness, response: httpx.Response, took: float, report: Report
) -> dict[str, Any] | None:
    """The answer's body when it is one with data: HTTP 200, in time (a late one is noted but
    still read); None, with the violation noted, for a 5xx or an answer without data."""
    if response.status_code != 200:
        report.violations.append(f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    if took > harness.deadline + 0.5:
        report.violations.append(f"answered after {took:.2f} s (deadline {harness.deadline} s)")
    body: dict[str, Any] = response.json()
    if body.get("data") is None:
        report.hard_stops += _hard_stopped(body)
        report.violations.append(f"no data: {body.get('errors')}")
        return None
    return body


def _hard_stopped(body: dict[str, Any]) -> int:
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    return int("REQUEST_TIMEOUT" in codes)


AUDIT_FAULT = "audit store locked"


async def _revealer(
    client: httpx.AsyncClient, harness: Harness, report: Report, stop: asyncio.Event
) -> None:
    """Asks for complainants' citizen IDs, each request with a purpose of its own, and notes
    every ID answered unmasked: the audit store must hold each (:func:`_check_audited`)."""
    revealer = harness.revealer
    assert revealer is not None
    query = revealer.query()
    number = 0
    while not stop.is_set():
        number += 1
        purpose = f"chaos {number}"
        sick_before = _sick_now(harness, time.monotonic())
        started = time.monotonic()
        try:
            response = await client.post(
                "/graphql",
                json={"query": query},
                headers={**revealer.headers, "x-purpose": purpose},
            )
        except httpx.HTTPError as exc:
            report.violations.append(f"[{harness.now}] reveal: no answer: {type(exc).__name__}")
            continue
        took = time.monotonic() - started
        sick = sick_before | _sick_now(harness, time.monotonic())
        before = len(report.violations)
        _check_reveal(harness, revealer, response, took, sick, purpose, report)
        for n in range(before, len(report.violations)):
            report.violations[n] = f"[{harness.now}] reveal: {report.violations[n]}"
        await asyncio.sleep(PACE)


def _check_reveal(
    harness: Harness,
    revealer: Revealer,
    response: httpx.Response,
    took: float,
    sick: set[str],
    purpose: str,
    report: Report,
) -> None:
    """A reveal arrives in time with every healthy agency's cases; a citizen ID is either shown
    (and noted, to be found in the audit store) or withheld with AUDIT_UNAVAILABLE, which only
    the audit store's own fault may cause."""
    body = _answered(harness, response, took, report)
    if body is None:
        return
    data = body["data"]
    errors = body.get("errors") or []
    refused = [e for e in errors if e.get("extensions", {}).get("code") == "AUDIT_UNAVAILABLE"]
    report.reveals_refused += len(refused)
    if refused and AUDIT_FAULT not in sick:
        report.violations.append(f"reveal refused with the audit store healthy: {refused[0]}")
    failed = {e.get("extensions", {}).get("source") for e in errors} - {None}
    if failed - sick:
        report.violations.append(f"errors for healthy sources {failed - sick}: {errors[:2]}")
    for source in revealer.sources:
        part = data.get(alias(source))
        if part is None or not part["edges"]:
            if source not in sick:
                report.violations.append(f"healthy {source} answered no cases: {errors[:2]}")
            continue
        for edge in part["edges"]:
            complainant = edge["node"]["complainant"]
            citizen_id = None if complainant is None else complainant["citizenId"]
            if citizen_id is not None and not citizen_id.startswith("x"):
                revealer.shown.add((purpose, local_id(edge["node"]["id"])))
                report.reveals_shown += 1
            elif complainant is None and not refused and source not in sick:
                report.violations.append(f"complainant withheld without a reason: {errors[:2]}")


def local_id(case_id: str) -> str:
    """``Case:<source>:<local id>``, base64: the local id, as the audit store records it."""
    return base64.b64decode(case_id).decode().split(":", 2)[2]


async def _check_audited(revealer: Revealer, report: Report) -> None:
    """Every citizen ID shown has its entry, written before it was answered."""

    def read() -> set[tuple[str, str]]:
        with contextlib.closing(
            sqlite3.connect(f"file:{revealer.audit_path}?mode=ro", uri=True)
        ) as db:
            rows = db.execute(
                "SELECT purpose, case_id FROM complaint_graph_audit WHERE action = 'reveal'"
            ).fetchall()
        return {(str(purpose), str(case)) for purpose, case in rows}

    recorded = await asyncio.to_thread(read)
    missing = revealer.shown - recorded
    report.unaudited = len(missing)
    if missing:
        report.violations.append(f"citizen IDs shown without an audit entry: {sorted(missing)[:5]}")


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


def audit_faults(path: Path, revealer_headers: dict[str, str], gateway_url: str) -> list[Fault]:
    """The audit store's SQLite file locked by another writer (an operator's ``sqlite3``
    shell, a backup) for the fault's length; back once a reveal is recorded again."""
    release = threading.Event()
    held = threading.Event()
    holder: list[threading.Thread] = []

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(120)
            db.execute("ROLLBACK")
        finally:
            db.close()

    async def lock() -> None:
        release.clear()
        held.clear()
        holder[:] = [threading.Thread(target=hold)]
        holder[0].start()
        assert await asyncio.to_thread(held.wait, 10), "the audit store could not be locked"

    async def unlock() -> None:
        release.set()
        await asyncio.to_thread(holder[0].join)

    async def recorded() -> str | None:
        query = "{ cases(first: 1) { edges { node { complainant { citizenId } } } } }"
        async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
            response = await client.post(
                "/graphql", json={"query": query}, headers=revealer_headers
            )
        errors = response.json().get("errors")
        return None if not errors else errors[0]["message"]

    return [Fault(AUDIT_FAULT, None, lock, unlock, recorded)]


def redis_faults(proxy: FaultProxy, gateway_url: str) -> list[Fault]:
    """Redis, the subscription bus, stalled (paused: connections open, nothing answered) and
    killed (every connection cut and new ones refused until it is restarted). Queries never
    need it: every answer must arrive in full and in time meanwhile. The gateway must lead its
    sources' watches again within ``BUS_RECOVERY`` once Redis is back."""

    async def stall() -> None:
        proxy.set(STALL)

    async def cut() -> None:
        await proxy.cut()

    async def heal() -> None:
        proxy.set(PASS)

    async def leading() -> str | None:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
            events = (await client.get("/readyz")).json()["events"]
        if events["leading"] == sorted(events["sources"]):
            return None
        return f"leading {events['leading']} of {events['sources']}"

    return [
        Fault("Redis paused", None, stall, heal, leading, BUS_RECOVERY),
        Fault("Redis killed and restarted", None, cut, heal, leading, BUS_RECOVERY),
    ]


BUS_RECOVERY = 15.0
"""Seconds after Redis is back by which the gateway leads every watch again: a poll (2 s), a
renewal left unanswered by a paused Redis (a third of the 10 s lease), and room for a loaded
machine."""


def describe(report: Report) -> dict[str, Any]:
    return {
        "faults": report.faults,
        "requests": report.requests,
        "partial": report.partial,
        "cancelled": report.cancelled,
        "recoveries": report.recoveries,
        "leaks": report.leaks,
    }
