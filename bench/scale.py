"""National scale (issue 25): how each cost grows with the number of sources, in one run.

``python -m bench scale`` builds (once, kept in bench/.data/scale) up to 100 provincial
offices: SQLite copies of the demo's Khon Kaen office schema, each with its own deterministic
cases (seed 5000 + its index) moved to one province (the 77 province codes in turn: a few
provinces have two offices) and declaring it (``covers: {provinces: [...]}``). For each number
of sources it starts one gateway process per code version (this tree, and ``--baseline``, by
default ``main``, whose configuration gets no ``covers``), then for each workload: the median
latency of sequential requests (alone), requests/s with ``--callers`` concurrent callers for
``--seconds``, and round trips per request read from the gateway's ``/metrics``.

``--kind postgres``: N copies of the demo's PostgreSQL agency reading one database, as in the
issue. This tree's sources share one pool of ``--pool`` connections (sources reading one
database share a pool) within ``limits.source_connections``; a baseline without shared pools
needs a connection per source, so it runs only up to ``--baseline-max`` sources (the local
server's ``max_connections`` is 100, and other work uses some).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.http import HERE, ROOT, Server, _git, frozen_working_tree, round_trip_totals, snapshot
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


def build_postgres(admin_dsn: str) -> str:
    """One Damrongdhama database of :data:`POSTGRES_CASES` cases (the demo's seed), built
    once; every PostgreSQL source of ``--kind postgres`` reads it (the issue's own set-up:
    N copies of the demo's PostgreSQL agency)."""
    import asyncpg

    from bench.data import _with_database
    from samples import damrongdhama

    async def ensure() -> str:
        admin = await asyncpg.connect(admin_dsn)
        try:
            exists = await admin.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", POSTGRES_DATABASE
            )
            if not exists:
                await admin.execute(f'CREATE DATABASE "{POSTGRES_DATABASE}"')
        finally:
            await admin.close()
        dsn = _with_database(admin_dsn, POSTGRES_DATABASE)
        if not exists:
            await damrongdhama.create_and_load(dsn, count=POSTGRES_CASES)
        return dsn

    return asyncio.run(ensure())


def config(
    paths: list[Path],
    covers: bool,
    count_cache: float,
    postgres: str | None = None,
    pool: int = 0,
    tree: Path = ROOT,
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
        if covers and not postgres:
            source["covers"] = {"provinces": [province_of(index)]}
        if count_cache:
            source["count_cache_seconds"] = count_cache
        sources.append(source)
    document = {key: value for key, value in demo.items() if key not in ("sources", "auth")}
    document["sources"] = sources
    document["events"] = {"enabled": False}
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
        before = round_trip_totals(client, base)
        latencies = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            latencies.append(time.perf_counter() - started)
        after = round_trip_totals(client, base)
    trips = sum(after[s] - before.get(s, 0.0) for s in after) / repeat
    asked = sum(1 for s in after if after[s] > before.get(s, 0.0))
    done = asyncio.run(_load(url, body, seconds, callers))
    return statistics.median(latencies) * 1000, done / seconds, trips, asked


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
    found = [
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


def run(args: argparse.Namespace) -> list[Row]:
    code, _ = frozen_working_tree()  # edits made while it runs do not reach its servers
    versions: list[tuple[str, Path, bool, float]] = [("this branch", code, True, 0.0)]
    if args.count_cache:
        label = f"this branch, count cache {args.count_cache:g} s"
        versions.append((label, code, True, args.count_cache))
    if args.baseline:
        base, _ = snapshot(args.baseline)
        versions.append((args.baseline, base, False, 0.0))
    rows: list[Row] = []
    executable = str(Path(sys.executable).with_name("complaint-graph"))
    postgres = None
    if args.kind == "postgres":
        from gateway.demo import asyncpg_url

        postgres = asyncpg_url(build_postgres(args.admin_dsn))
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
                    config(paths, covers, count_cache, postgres, pool, tree), allow_unicode=True
                ),
                encoding="utf-8",
            )
            server = Server(
                f"{version} at {count}",
                [executable, "serve", "--config", str(path), "--port", str(args.port)],
                {"PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"},
                args.port,
                metrics=True,
                cwd=tree,
            )
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
            finally:
                server.stop()
    return rows


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
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: N copies of the demo's PostgreSQL agency on one database (no covers)",
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
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = run(args)
    revision = _git("rev-parse", "--short", "HEAD")
    cases = (
        f"one PostgreSQL database of {POSTGRES_CASES} cases"
        if args.kind == "postgres"
        else f"{args.cases} cases per source"
    )
    text = (
        f"{table(rows, args)}\n\n"
        f"Run {started} at {revision} on {os.cpu_count()} cores (shared with other work: "
        f"noisy), {cases}, {args.callers} callers for {args.seconds:g} s "
        f"per workload, p50 of {args.repeat} requests alone. "
        f"`python -m bench scale{' ' + ' '.join(argv) if argv else ''}`"
    )
    print(text)
    if args.write:
        if args.kind == "postgres":
            begin, end = BEGIN.replace("scale", "scale-pg"), END.replace("scale", "scale-pg")
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
