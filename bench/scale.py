"""National scale (issue 25): how each cost grows with the number of sources, in one run.

``python -m bench scale`` builds (once, kept in bench/.data/scale) up to 100 provincial
offices: SQLite copies of the demo's Khon Kaen office schema, each with its own deterministic
cases (seed 5000 + its index) moved to one province (the 77 province codes in turn: a few
provinces have two offices) and declaring it (``covers: {provinces: [...]}``). For each number
of sources it starts one gateway process per code version (this tree, and ``--baseline``, by
default ``main``, whose configuration gets no ``covers``), then for each workload: the median
latency of sequential requests (alone), requests/s with ``--callers`` concurrent callers for
``--seconds``, and round trips per request read from the gateway's ``/metrics``; then the
gateway's peak resident memory. Subscriptions (unless ``--no-watch``): a gateway of the same
version with events on (every source polled each second), one subscriber to the first
source's changes; the gateway's CPU while it only watches, then a few changes committed to the
first source's first case (its description carries the commit time; this edits the built
data) and the time each takes to reach the subscriber.

``--kind postgres``: N copies of the demo's PostgreSQL agency reading one database, as in the
issue. This tree's sources share one pool of ``--pool`` connections (sources reading one
database share a pool) within ``limits.source_connections``; a baseline without shared pools
needs a connection per source, so it runs only up to ``--baseline-max`` sources (the local
server's ``max_connections`` is 100, and other work uses some).

``--kind provinces``: N provincial Damrongdhama Centers as tables of one PostgreSQL database
(``complaints_NNN`` and ``complaint_status_log_NNN``, copies of the demo's with each case moved
to the centre's province), each declaring its province with ``covers``: the page over all of
them and the page of one province, measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from websockets.asyncio.client import connect

from bench.http import HERE, ROOT, Server, _git, frozen_working_tree, round_trip_totals, snapshot
from bench.subscribers import cpu_seconds
from resolvers.geography import area
from samples import provincial

DATA = HERE / ".data" / "scale"
README = HERE / "README.md"
BEGIN, END = "<!-- bench-scale:begin -->", "<!-- bench-scale:end -->"
PROVINCES = [code for code in (f"{n:02d}" for n in range(10, 100)) if area(code).name_th]  # type: ignore[union-attr]

PAGE = """
query Page($filter: CaseFilterInput) {
  cases(first: 20, filter: $filter) {
    totalCount
    edges { node {
      id referenceNumber title status receivedAt isOverdue
      category { code } location { province { nameTh } }
      timeline { at status note }
    } }
  }
}
"""
ONE = "query One($id: ID!) { case(id: $id) { id title status timeline { at status } } }"
STATS = """
query Stats($filter: CaseFilterInput) {
  caseStats(groupBy: [STATUS], filter: $filter) { total { count open } buckets { count } }
}
"""

WATCH = (
    'subscription Watch { caseEvents(filter: {source: ["office-000"]}) '
    "{ id type case { referenceNumber description } } }"
)
MARK = "bench-scale-commit "
POLL_SECONDS = 1.0
"""Each source's ``poll_seconds`` in the subscription measurement (the default is 2 s)."""
IDLE_SECONDS = 5.0
"""How long the gateway's CPU is read while it only watches its sources (no changes)."""
CHANGES = 5
"""Changes committed one after another, each awaited by the subscriber."""


def province_of(index: int) -> str:
    return PROVINCES[index % len(PROVINCES)]


def build(count: int, cases: int) -> list[Path]:
    """``count`` office databases of ``cases`` cases each, built once and reused."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = DATA / f"office-{index:03d}-{cases}.sqlite"
        if not path.exists():
            partial = path.with_suffix(".build")
            partial.unlink(missing_ok=True)
            provincial.create_and_load(partial, seed=5000 + index, count=cases)
            with sqlite3.connect(partial) as db:
                db.execute("UPDATE petition_place SET changwat = ?", (province_of(index),))
            db.close()
            partial.rename(path)
        paths.append(path)
    return paths


POSTGRES_DATABASE = "complaint_graph_scale"
POSTGRES_CASES = 2_000


async def _damrongdhama_database(admin_dsn: str, name: str) -> str:
    """The database ``name`` with the demo's Damrongdhama tables of :data:`POSTGRES_CASES`
    cases (the demo's seed), created and loaded once; its DSN."""
    import asyncpg

    from bench.data import _with_database
    from samples import damrongdhama

    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(admin_dsn, name)
    if not exists:
        await damrongdhama.create_and_load(dsn, count=POSTGRES_CASES)
    return dsn


def build_postgres(admin_dsn: str) -> str:
    """One Damrongdhama database of :data:`POSTGRES_CASES` cases (the demo's seed), built
    once; every PostgreSQL source of ``--kind postgres`` reads it (the issue's own set-up:
    N copies of the demo's PostgreSQL agency)."""
    return asyncio.run(_damrongdhama_database(admin_dsn, POSTGRES_DATABASE))


PROVINCES_DATABASE = "complaint_graph_scale_provinces"


def build_provinces(admin_dsn: str, count: int) -> str:
    """A database holding ``count`` provincial centres as tables of their own: copies of the
    demo's Damrongdhama tables (:data:`POSTGRES_CASES` cases each), ``complaints_NNN`` and
    ``complaint_status_log_NNN``, each case moved to the centre's province (its district and
    subdistrict cleared) and received ``NNN`` minutes earlier than in the others (few ties
    across centres). Built once per centre, kept."""
    import asyncpg

    async def ensure() -> str:
        dsn = await _damrongdhama_database(admin_dsn, PROVINCES_DATABASE)
        connection = await asyncpg.connect(dsn)
        try:
            for index in range(count):
                cases, log = f"complaints_{index:03d}", f"complaint_status_log_{index:03d}"
                if await connection.fetchval("SELECT to_regclass($1)", log):
                    continue
                async with connection.transaction():
                    await connection.execute(
                        f"CREATE TABLE {cases} (LIKE complaints INCLUDING ALL); "
                        f"INSERT INTO {cases} SELECT * FROM complaints; "
                        f"CREATE TABLE {log} (LIKE complaint_status_log INCLUDING ALL); "
                        f"INSERT INTO {log} SELECT * FROM complaint_status_log"
                    )
                    await connection.execute(
                        f"UPDATE {cases} SET province_code = $1, district_code = NULL, "
                        f"subdistrict_code = NULL, received_at = received_at - $2 * "
                        "interval '1 minute'",
                        province_of(index),
                        index,
                    )
                # As a maintained database is (autovacuum): the moved copies' old row
                # versions gone, the visibility map set (a count may read the index alone).
                await connection.execute(f"VACUUM ANALYZE {cases}")
                await connection.execute(f"VACUUM ANALYZE {log}")
        finally:
            await connection.close()
        return dsn

    return asyncio.run(ensure())


def config(
    paths: list[Path],
    covers: bool,
    count_cache: float,
    postgres: str | None = None,
    pool: int = 0,
    tree: Path = ROOT,
    events: bool = False,
    provinces: bool = False,
) -> dict[str, Any]:
    """The demo's configuration (``tree``'s own, which that version understands) with the
    offices as its only sources (or, with ``postgres``, as many copies of its Damrongdhama
    source reading that database)."""
    demo = yaml.safe_load((tree / "samples" / "config.yaml").read_text(encoding="utf-8"))
    name = "damrongdhama" if postgres else "khonkaen-office"
    (office,) = [s for s in demo["sources"] if s["id"] == name]
    sources = []
    for index, path in enumerate(paths):
        source = copy.deepcopy(office)
        source["id"] = f"office-{index:03d}"
        source["url"] = postgres or f"sqlite+aiosqlite:///{path.resolve()}"
        # max_connections of a shared server: one each, unless they share a pool of ``pool``
        source["pool_size"] = (pool or 1) if postgres else 2
        source.pop("referrals", None)  # copies of one agency's referrals name no one else
        source.pop("notify_channel", None)  # no events in the benchmark
        source.pop("complainant", None)  # no personal data needed: no match key to configure
        if provinces:  # a centre's own tables (build_provinces), and no writes into them
            source["cases"]["table"] = f"complaints_{index:03d}"
            source["timeline"]["table"] = f"complaint_status_log_{index:03d}"
            source.pop("writes", None)
        if covers and (provinces or not postgres):
            source["covers"] = {"provinces": [province_of(index)]}
        if count_cache:
            source["count_cache_seconds"] = count_cache
        if events:
            source["poll_seconds"] = POLL_SECONDS
        sources.append(source)
    # Without the demo's write routing: it names agencies these copies are not.
    dropped = ("sources", "auth", "writes")
    document = {key: value for key, value in demo.items() if key not in dropped}
    document["sources"] = sources
    document["events"] = {"enabled": events}
    if pool:
        document["limits"] = {**document.get("limits", {}), "source_connections": pool}
    store = (DATA / "keys.sqlite").resolve()
    document["auth"] = {
        "key_store": f"sqlite+aiosqlite:///{store}",
        "anonymous": {"role": "inspector"},
    }
    return document


@dataclass
class Row:
    version: str
    sources: int
    workload: str
    p50_ms: float
    requests_per_s: float
    round_trips: float
    sources_asked: int


@dataclass
class Watch:
    """One gateway version at one number of sources: its peak memory after the page
    workloads, and, with events on, what watching the sources costs and how soon a change
    reaches a subscriber."""

    version: str
    sources: int
    rss_mib: float
    idle_cpu_percent: float
    p50_ms: float
    max_ms: float


Commit = Callable[[str], Awaitable[None]]
"""Commits one change to the first source's first case, its description set to the text."""


def sqlite_commit(path: Path) -> Commit:
    """A change to the first office's file, its last change in the office's own local time."""

    def write(text: str) -> None:
        now = datetime.now(ZoneInfo("Asia/Bangkok")).strftime("%Y-%m-%d %H:%M:%S.%f")
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "UPDATE petition SET body = ?, last_change = ? "
                "WHERE petition_no = (SELECT min(petition_no) FROM petition)",
                (text, now),
            )

    async def commit(text: str) -> None:
        await asyncio.to_thread(write, text)

    return commit


def postgres_commit(dsn: str, table: str = "complaints") -> Commit:
    """A change to the first source's table (with ``--kind postgres`` every copy reads it:
    each copy sees the change, N changes polled)."""
    import asyncpg

    async def commit(text: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                f"UPDATE {table} SET detail = $1, updated_at = now() "
                f"WHERE id = (SELECT min(id) FROM {table})",
                text,
            )
        finally:
            await connection.close()

    return commit


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


async def watch(url: str, pid: int, commit: Commit) -> tuple[float, float, float]:
    """(gateway CPU while it only watches, percent of a core; p50 and max ms from commit to
    the subscriber) for :data:`CHANGES` changes to the first source, one after another."""
    socket_url = url.replace("http://", "ws://", 1)
    async with connect(socket_url, subprotocols=["graphql-transport-ws"], open_timeout=60) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        acknowledged = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert acknowledged["type"] == "connection_ack", acknowledged
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": WATCH}}))

        async def change(wait: float) -> float | None:
            committed = time.time()
            text = f"{MARK}{committed!r}"
            await commit(text)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] in ("error", "complete"):
                            raise SystemExit(f"subscription ended: {message}")
                        payload = message.get("payload") or {}
                        if message["type"] != "next" or payload.get("errors"):
                            if payload.get("errors"):
                                raise SystemExit(f"subscription error: {payload['errors']}")
                            continue
                        if payload["data"]["caseEvents"]["case"]["description"] == text:
                            return time.time() - committed
            return None

        # The subscription watches from when the gateway has it in place: until a change
        # arrives, it may not be yet (a missed first change is committed again).
        for _ in range(6):
            if await change(10 * POLL_SECONDS) is not None:
                break
        else:
            raise SystemExit("no change reached the subscriber in a minute")
        started = cpu_seconds(pid)
        await asyncio.sleep(IDLE_SECONDS)  # measuring a window of idle watching, not waiting
        idle = (cpu_seconds(pid) - started) / IDLE_SECONDS * 100
        latencies = []
        for _ in range(CHANGES):
            took = await change(30 * POLL_SECONDS)
            if took is None:
                raise SystemExit("a change did not reach the subscriber within 30 polls")
            latencies.append(took * 1000)
    return idle, statistics.median(latencies), max(latencies)


def measure(
    url: str, name: str, body: dict[str, Any], repeat: int, seconds: float, callers: int
) -> tuple[float, float, float, int]:
    """(p50 ms alone, requests/s with ``callers`` at once, round trips per request, sources
    that any of the requests made a round trip to)."""
    with httpx.Client(timeout=120) as client:
        for _ in range(3):  # warm up: statement caches, connections
            answer = client.post(url, json=body).json()
            assert "errors" not in answer, (name, answer["errors"])
        base = url.removesuffix("/graphql")
        before, members_before = round_trip_totals(client, base), together_members(client, base)
        latencies = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            latencies.append(time.perf_counter() - started)
        after, members_after = round_trip_totals(client, base), together_members(client, base)
    trips = sum(after[s] - before.get(s, 0.0) for s in after) / repeat
    alone = [s for s in after if after[s] > before.get(s, 0.0) and not s.startswith(TOGETHER)]
    grouped = {
        key: (sum_ - members_before.get(key, (0.0, 0.0))[0])
        / max(count - members_before.get(key, (0.0, 0.0))[1], 1)
        for key, (sum_, count) in members_after.items()
    }
    asked = len(alone) + round(max(grouped.values(), default=0.0))
    done = asyncio.run(_load(url, body, seconds, callers))
    return statistics.median(latencies) * 1000, done / seconds, trips, asked


TOGETHER = "together:"
"""The source label of a statement asked of several sources on one database (gateway/metrics.py):
one round trip; its batch size is how many sources it asked."""


def together_members(client: httpx.Client, base: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(sources summed, statements) so far per (together label, operation), from /metrics."""
    found: dict[tuple[str, str], list[float]] = {}
    for line in client.get(f"{base}/metrics").text.splitlines():
        for suffix, index in (("_sum{", 0), ("_count{", 1)):
            name = f"complaint_graph_source_batch_size{suffix}"
            if line.startswith(name) and f'source="{TOGETHER}' in line:
                labels, value = line.rsplit(" ", 1)
                source = labels.split('source="', 1)[1].split('"', 1)[0]
                operation = labels.split('operation="', 1)[1].split('"', 1)[0]
                found.setdefault((source, operation), [0.0, 0.0])[index] += float(value)
    return {key: (sum_, count) for key, (sum_, count) in found.items()}


async def _load(url: str, body: dict[str, Any], seconds: float, callers: int) -> int:
    deadline = time.monotonic() + seconds
    done = 0

    async def caller(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            response = await client.post(url, json=body)
            response.raise_for_status()
            done += 1

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(caller(client) for _ in range(callers)))
    return done


ESTIMATE = "the same page, totalCount(estimate: true)"


def workloads(url: str, province: str, estimates: bool) -> list[tuple[str, dict[str, Any]]]:
    """The workloads; with ``estimates`` (a version that has them) also the page with an
    estimated totalCount."""
    with httpx.Client(timeout=120) as client:
        page = client.post(url, json={"query": PAGE}).json()
    some = page["data"]["cases"]["edges"][5]["node"]["id"]
    found: list[tuple[str, dict[str, Any]]] = [
        ("page of 20 with timelines and totalCount", {"query": PAGE}),
        (
            "the same, one province",
            {"query": PAGE, "variables": {"filter": {"provinceCode": [province]}}},
        ),
        ("one case by id", {"query": ONE, "variables": {"id": some}}),
        ("statistics by status", {"query": STATS}),
    ]
    if estimates:
        estimated = PAGE.replace("totalCount", "totalCount(estimate: true)")
        found.insert(1, (ESTIMATE, {"query": estimated}))
    return found


def run(args: argparse.Namespace) -> tuple[list[Row], list[Watch]]:
    code, _ = frozen_working_tree()  # edits made while it runs do not reach its servers
    DATA.mkdir(parents=True, exist_ok=True)  # --kind postgres builds no office files there
    versions: list[tuple[str, Path, bool, float]] = [("this branch", code, True, 0.0)]
    if args.count_cache:
        label = f"this branch, count cache {args.count_cache:g} s"
        versions.append((label, code, True, args.count_cache))
    if args.baseline:
        base, _ = snapshot(args.baseline)
        versions.append((args.baseline, base, False, 0.0))
    rows: list[Row] = []
    watches: list[Watch] = []
    executable = str(Path(sys.executable).with_name("complaint-graph"))
    postgres = None
    commit: Commit | None = None
    provinces = args.kind == "provinces"
    if args.kind == "postgres":
        from gateway.demo import asyncpg_url

        plain = build_postgres(args.admin_dsn)
        postgres, commit = asyncpg_url(plain), postgres_commit(plain)
    elif provinces:
        from gateway.demo import asyncpg_url

        plain = build_provinces(args.admin_dsn, max(args.sizes))
        postgres, commit = asyncpg_url(plain), postgres_commit(plain, "complaints_000")
    for count in args.sizes:
        paths = build(count, args.cases) if postgres is None else [Path()] * count
        for number, (version, tree, covers, count_cache) in enumerate(versions):
            if postgres and not covers and count > args.baseline_max:
                print(f"{version:>12} {count:>4} sources  skipped: a connection per source")
                continue
            pool = args.pool if postgres and covers else 0
            path = DATA / f"config-{args.kind}-{count}-{number}.yaml"
            path.write_text(
                yaml.safe_dump(
                    config(paths, covers, count_cache, postgres, pool, tree, provinces=provinces),
                    allow_unicode=True,
                ),
                encoding="utf-8",
            )
            server = _server(f"{version} at {count}", path, tree, args.port, executable)
            server.start(DATA / f"gateway-{count}-{number}.log")
            try:
                for name, body in workloads(server.url, province_of(0), covers):
                    p50, rate, trips, asked = measure(
                        server.url, name, body, args.repeat, args.seconds, args.callers
                    )
                    row = Row(version, count, name, p50, rate, trips, asked)
                    rows.append(row)
                    print(
                        f"{version:>12} {count:>4} sources  {name:<42} p50 {p50:8.1f} ms  "
                        f"{rate:8.1f} req/s  {trips:6.1f} round trips to {asked} sources",
                        flush=True,
                    )
                rss = peak_rss_mib(server.pid)
            finally:
                server.stop()
            if not args.watch or count_cache:
                continue
            changed = commit or sqlite_commit(paths[0])
            idle, p50, most = _watched(
                args, count, number, tree, executable, paths, postgres, changed, covers
            )
            watches.append(Watch(version, count, rss, idle, p50, most))
            print(
                f"{version:>12} {count:>4} sources  peak RSS {rss:.0f} MiB, watching "
                f"{idle:.1f}% of a core, change to subscriber p50 {p50:.0f} ms, max {most:.0f} ms",
                flush=True,
            )
    return rows, watches


def _server(name: str, config_path: Path, tree: Path, port: int, executable: str) -> Server:
    return Server(
        name,
        [executable, "serve", "--config", str(config_path), "--port", str(port)],
        {"PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"},
        port,
        metrics=True,
        cwd=tree,
    )


def _watched(
    args: argparse.Namespace,
    count: int,
    number: int,
    tree: Path,
    executable: str,
    paths: list[Path],
    postgres: str | None,
    commit: Commit,
    covers: bool,
) -> tuple[float, float, float]:
    """:func:`watch` on a gateway of its own with events on (the page workloads run without:
    polling a hundred sources is load of its own)."""
    pool = args.pool if postgres and covers else 0
    path = DATA / f"config-{args.kind}-{count}-{number}-events.yaml"
    provinces = args.kind == "provinces"
    document = config(paths, covers, 0.0, postgres, pool, tree, events=True, provinces=provinces)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    server = _server(f"watching {count}", path, tree, args.port, executable)
    server.start(DATA / f"gateway-{count}-{number}-events.log")
    try:
        return asyncio.run(watch(server.url, server.pid, commit))
    finally:
        server.stop()


def table(rows: list[Row], args: argparse.Namespace) -> str:
    versions = list(dict.fromkeys(row.version for row in rows))
    header = "| sources | workload | " + " | ".join(
        f"{v}: p50 ms | {v}: req/s | {v}: round trips (sources)" for v in versions
    )
    lines = [header + " |", "|" + " ---: | --- |" + " ---: | ---: | ---: |" * len(versions)]
    keyed = {(r.version, r.sources, r.workload): r for r in rows}
    for count in args.sizes:
        for name in dict.fromkeys(r.workload for r in rows if r.sources == count):
            cells = []
            for version in versions:
                row = keyed.get((version, count, name))
                cells.append(
                    f"{row.p50_ms:.1f} | {row.requests_per_s:.1f} | "
                    f"{row.round_trips:g} ({row.sources_asked})"
                    if row
                    else "- | - | -"
                )
            lines.append(f"| {count} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def watch_table(watches: list[Watch]) -> str:
    lines = [
        "| sources | version | peak RSS MiB (after the workloads above) | "
        "watching for changes: gateway CPU, % of a core | "
        "a change to the subscriber: p50 ms | max ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for w in watches:
        lines.append(
            f"| {w.sources} | {w.version} | {w.rss_mib:.0f} | {w.idle_cpu_percent:.1f} | "
            f"{w.p50_ms:.0f} | {w.max_ms:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    parser.add_argument(
        "--sizes", type=lambda s: [int(n) for n in s.split(",")], default=[1, 10, 50, 100]
    )
    parser.add_argument("--cases", type=int, default=500, help="cases per source")
    parser.add_argument("--baseline", default="main", help="a git revision; '' for none")
    parser.add_argument("--port", type=int, default=8840)
    parser.add_argument("--repeat", type=int, default=20, help="sequential requests for p50")
    parser.add_argument("--seconds", type=float, default=5.0, help="of load per workload")
    parser.add_argument("--callers", type=int, default=4, help="concurrent callers")
    parser.add_argument(
        "--count-cache", type=float, default=5.0, help="seconds; a third server with it (0: none)"
    )
    parser.add_argument("--write", action="store_true", help="put the table in bench/README.md")
    parser.add_argument(
        "--kind",
        choices=["sqlite", "postgres", "provinces"],
        default="sqlite",
        help="postgres: N copies of the demo's PostgreSQL agency on one database (no covers); "
        "provinces: N provincial centres as tables of one database, each its own province, "
        "declared with covers",
    )
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--pool",
        type=int,
        default=20,
        help="postgres: connections of this tree's shared pool (and its source_connections)",
    )
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=80,
        help="postgres: most sources the baseline (a connection per source) is run with",
    )
    parser.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        help="skip the subscription measurement (a gateway with events on, per size)",
    )
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows, watches = run(args)
    revision = _git("rev-parse", "--short", "HEAD")
    cases = {
        "postgres": f"one PostgreSQL database of {POSTGRES_CASES} cases",
        "provinces": f"one PostgreSQL database, a table of {POSTGRES_CASES} cases per source",
    }.get(args.kind, f"{args.cases} cases per source")
    watched = (
        f"\n\n{watch_table(watches)}\n\nSubscriptions: one subscriber to "
        f'`caseEvents(filter: {{source: ["office-000"]}})`, each source polled every '
        f"{POLL_SECONDS:g} s; gateway CPU over {IDLE_SECONDS:g} s with no change; then "
        f"{CHANGES} changes to the first source's first case, one after another."
        if watches
        else ""
    )
    text = (
        f"{table(rows, args)}{watched}\n\n"
        f"Run {started} at {revision} on {os.cpu_count()} cores (shared with other work: "
        f"noisy), {cases}, {args.callers} callers for {args.seconds:g} s "
        f"per workload, p50 of {args.repeat} requests alone. "
        f"`python -m bench scale{' ' + ' '.join(argv) if argv else ''}`"
    )
    print(text)
    if args.write:
        if args.kind in ("postgres", "provinces"):
            marker = "scale-pg" if args.kind == "postgres" else "scale-provinces"
            begin, end = BEGIN.replace("scale", marker), END.replace("scale", marker)
        else:
            begin, end = BEGIN, END
        readme = README.read_text(encoding="utf-8")
        if begin in readme:
            head, rest = readme.split(begin, 1)
            readme = head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1]
        else:
            readme += f"\n{begin}\n{text}\n{end}\n"
        README.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
