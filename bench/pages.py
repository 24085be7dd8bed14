"""Page size against cost (`python -m bench pages`): the nested dashboard query at 10, 100, 500.

Starts ``complaint-graph demo`` (10,000 cases per agency) in its own process, then, from this
process, sends each workload sequentially and reads the gateway's own ``/metrics`` to count round
trips per source. It measures latency per request, not throughput under load (that belongs to
the load-tool benchmarks of the performance work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.http import round_trip_totals

NESTED = """
query Dashboard($first: Int) {
  cases(first: $first) {
    edges { node {
      id referenceNumber title status sourceStatus channel receivedAt dueAt isOverdue
      category { code nameTh } owningAgency { code nameTh } source { id }
      location { province { nameTh } district { nameTh } subdistrict { nameTh } }
      timeline { at status sourceStatus note }
    } }
  }
}
"""


def wait_until_up(
    client: httpx.Client,
    process: subprocess.Popen[bytes],
    seconds: float = 300,
    output: str = "its output above",
) -> None:
    """Until the gateway answers /healthz (a condition polled against a deadline)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited at start; see {output}")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the gateway did not come up within {seconds:.0f} s")


DEMO_KEY = "demo-inspector"
"""The demo's documented inspector key (README, Demo keys): every case."""


def measure(client: httpx.Client, first: int, repeat: int) -> tuple[float, float, dict[str, float]]:
    client.post("/graphql", json={"query": NESTED, "variables": {"first": first}})  # warm up
    before = round_trip_totals(client)
    latencies = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.post("/graphql", json={"query": NESTED, "variables": {"first": first}})
        latencies.append(time.perf_counter() - started)
        body = response.json()
        assert "errors" not in body and len(body["data"]["cases"]["edges"]) == first, body
    after = round_trip_totals(client)
    per_request = {source: (after[source] - before.get(source, 0)) / repeat for source in after}
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies) * 1000, p99 * 1000, per_request


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pages")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    executable = Path(sys.executable).with_name("complaint-graph")
    process = subprocess.Popen(
        [str(executable), "demo", "--port", str(args.port), "--no-trickle"],
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{args.port}",
            timeout=60,
            headers={"authorization": f"Bearer {DEMO_KEY}"},  # anonymous may only introspect
        ) as client:
            wait_until_up(client, process)
            print("| cases per page | p50 ms | p99 ms | round trips per source |")
            print("| ---: | ---: | ---: | --- |")
            for first in (10, 100, 500):
                p50, p99, trips = measure(client, first, args.repeat)
                described = ", ".join(f"{s}: {n:g}" for s, n in sorted(trips.items()))
                print(f"| {first} | {p50:.1f} | {p99:.1f} | {described} |", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
