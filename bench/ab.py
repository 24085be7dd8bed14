"""Two versions of complaint-graph, interleaved: ``python -m bench ab c --code A --code B``.

On a shared two-core machine the CPU a request costs drifts by tens of percent within minutes,
so a change measured before and after in two separate runs proves little. This starts both
versions at once (each a directory of code: a ``git archive``, a copy with one change) and
sends the workload to A and B in alternating short batches of sequential requests, reading each
server's CPU time around its own batches: drift falls on both alike. It prints the median CPU
per request over the batches and the ratio B/A.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

import httpx

from bench import http
from bench.data import ensure_bench_data


def cpu_per_request(server: http.Server, body: dict[str, object], requests: int) -> float:
    """Server CPU ms per request over ``requests`` requests sent one after another."""
    before = http._cpu_seconds(server.pid)
    with httpx.Client(timeout=120) as client:
        for _ in range(requests):
            answer = client.post(server.url, json=body).json()
            assert "errors" not in answer, answer["errors"]
    return (http._cpu_seconds(server.pid) - before) * 1000 / requests


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ab", description=__doc__)
    parser.add_argument("workload", choices=["a", "b", "c", "d"])
    parser.add_argument("--code", type=Path, action="append", required=True, help="A, then B")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20, help="per batch")
    parser.add_argument("--port", type=int, default=8871, help="A; B is +1")
    parser.add_argument("--agencies-port", type=int, default=8873)
    args = parser.parse_args(argv)
    if len(args.code) != 2:
        parser.error("give --code twice: version A, then version B")
    data = asyncio.run(ensure_bench_data())
    codes = [path.resolve() for path in args.code]
    http.RESULTS.mkdir(exist_ok=True)
    agencies = http.start_agencies(args.agencies_port, codes[0], "ab-agencies.log")
    servers = [
        http.servers(data, args.agencies_port, args.port + index, code)[0]
        for index, code in enumerate(codes)
    ]
    try:
        http.wait_listening(agencies, [args.agencies_port, args.agencies_port + 1])
        bodies = []
        for name, server in zip("AB", servers, strict=True):
            server.start(http.RESULTS / f"ab-{name}.log")
            workload = next(
                w for w in http.complaint_graph_workloads(server.url) if w.key == args.workload
            )
            http.check(server, workload)  # warm, and the answer is checked
            bodies.append(workload.body)
        costs: list[list[float]] = [[], []]
        for _ in range(args.batches):
            for index, server in enumerate(servers):
                costs[index].append(cpu_per_request(server, bodies[index], args.requests))
        a, b = (statistics.median(c) for c in costs)
        for name, code, cost in zip("AB", codes, costs, strict=True):
            spread = f"{min(cost):.1f}-{max(cost):.1f}"
            print(f"{name} {code}: median {statistics.median(cost):.1f} ms/request ({spread})")
        print(f"workload ({args.workload}): B/A server CPU per request = {b / a:.2f}")
    finally:
        for server in servers:
            server.stop()
        agencies.terminate()
        agencies.wait(timeout=30)
