"""Where complaint-graph's time goes on one workload: ``python -m bench profile a``.

Workloads (a)-(d) of ``bench http``, and (t): ``{ __typename }``, which reads no source, so
what it costs is what every request costs (HTTP, context, limits, plan lookup, JSON).

Starts the API agencies and one complaint-graph server (the working tree, ``--revision`` or a
``--code`` directory, as ``bench http`` does), sends the workload one request after another and
reports the server's CPU time and latency per request. With ``--py-spy`` it samples the server
meanwhile (``pip install py-spy``) and sums the main thread's samples by source file (where the
time is spent) and by a few frames (what it is spent on), so a change can be compared with the
same numbers before and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from bench import http
from bench.data import ensure_bench_data

TRIVIAL = http.Workload(
    "t", "a trivial document: { __typename }", {"query": "{ __typename }"}, lambda body: []
)
"""Workload (t): the fixed cost of a request."""

FRAMES = (
    "GraphQLView.__call__",
    "Schema.execute",
    "ExtensionContextManagerBase.__init__",
    "ExtensionContextManagerBase.__aenter__",
    "ExtensionContextManagerBase.__aexit__",
    "run_with_deadline",
    "GraphQLView.get_context",
    "validate",
    "parse",
    "Executor.execute_field",
    "SqlSource.search_cases",
    "SqlSource.load_timelines",
    "dumps",
)
"""Frames whose inclusive share is printed: the view, execution, strawberry's extension
hooks (made afresh per request), the deadline, the context, validation, parsing, SQL, JSON."""


def summarise_samples(raw: Path, top: int = 15) -> str:
    """The main thread's py-spy samples (raw, collapsed stacks) by leaf file and by frame."""
    by_file: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "Runner.run" not in stack:  # other threads (aiosqlite's worker) mostly wait
            continue
        frames = stack.split(";")
        samples = int(count)
        total += samples
        leaf = frames[-1]
        where = leaf.split(" (", 1)[1].rsplit(":", 1)[0] if " (" in leaf else leaf
        by_file[where.split("site-packages/")[-1]] += samples
        for name in {frame.split(" (", 1)[0] for frame in frames}:
            by_frame[name] += samples
    if not total:
        return "no samples of the main thread"
    lines = [f"{total} samples of the main thread; by file (self time):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in by_file.most_common(top)]
    lines.append("by frame (inclusive):")
    lines += [f"  {by_frame[name] / total:6.1%}  {name}" for name in FRAMES]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__)
    parser.add_argument("workload", choices=["a", "b", "c", "d", TRIVIAL.key])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--revision", help="serve this commit (git archive)")
    parser.add_argument("--code", type=Path, help="serve the code in this directory")
    parser.add_argument("--py-spy", action="store_true", help="sample the server with py-spy")
    parser.add_argument("--port", type=int, default=8861)
    parser.add_argument("--agencies-port", type=int, default=8863)
    args = parser.parse_args(argv)
    data = asyncio.run(ensure_bench_data())
    if args.code is not None:
        code, described = args.code.resolve(), f"the code in {args.code}"
    elif args.revision:
        code, described = http.snapshot(args.revision)
    else:
        code, described = http.working_tree()
    http.RESULTS.mkdir(exist_ok=True)
    agencies = http.start_agencies(args.agencies_port, code, "profile-agencies.log")
    server = http.servers(data, args.agencies_port, args.port, code)[0]
    try:
        http.wait_listening(agencies, [args.agencies_port, args.agencies_port + 1])
        server.start(http.RESULTS / "profile-server.log")
        workload = (
            TRIVIAL
            if args.workload == TRIVIAL.key  # no cursor to walk to for it
            else next(
                w for w in http.complaint_graph_workloads(server.url) if w.key == args.workload
            )
        )
        print(f"{described}, workload ({workload.key}) {workload.title}", flush=True)
        http.check(server, workload)  # warm: first requests import and compile
        spy = None
        raw = http.RESULTS / f"profile-{workload.key}.txt"
        if args.py_spy:
            executable = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            spy = subprocess.Popen(
                [
                    executable,
                    "record",
                    "-p",
                    str(server.pid),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            time.sleep(1)  # py-spy attaches within a second; samples before that are lost
        latencies = []
        cpu_before = http._cpu_seconds(server.pid)
        with httpx.Client(timeout=120) as client:
            for _ in range(args.requests):
                started = time.perf_counter()
                body = client.post(server.url, json=workload.body).json()
                latencies.append(time.perf_counter() - started)
                assert "errors" not in body, body["errors"]
        cpu = http._cpu_seconds(server.pid) - cpu_before
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
            spy.wait(timeout=60)
        print(
            f"{args.requests} requests one after another: server CPU "
            f"{cpu * 1000 / args.requests:.1f} ms/request, latency median "
            f"{statistics.median(latencies) * 1000:.1f} ms, min {min(latencies) * 1000:.1f} ms"
        )
        if spy is not None and raw.exists():
            print(summarise_samples(raw))
    finally:
        server.stop()
        agencies.terminate()
        agencies.wait(timeout=30)
