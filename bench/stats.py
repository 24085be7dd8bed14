"""caseStats against counting in the client: province × month over a million cases, and more.

``python -m bench.stats`` builds (or reuses) the benchmark data (bench/data.py: 1,000,000 cases
in the Damrongdhama PostgreSQL database; the Khon Kaen office, the 1111 service and the city
platform at demo size, 10,000 each), serves the two API agencies from this process, starts
``complaint-graph serve`` in its own process and then, one request at a time:

1. ``caseStats(groupBy: [PROVINCE, RECEIVED_MONTH])`` over every case, ``--repeat`` times;
2. the "Done means" question of issue 7: overdue land-dispute cases by province this quarter,
   across every agency (the data's last quarter, July to September 2026, Bangkok time);
3. the naive way: page through every case with ``cases(first: 500, after: …)`` and count by
   province and month in Python, once; its counts must equal caseStats' buckets.

Round trips per source come from the gateway's own ``/metrics``. Timings are wall-clock from
this client; compare the ratio within one run (a shared 2-core machine is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.data import OTHER_AGENCY_CASES, BenchData, ensure_bench_data
from bench.http import round_trip_totals
from bench.pages import wait_until_up
from gateway.config import GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, demo_environ
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer

HERE = Path(__file__).parent
ROOT = HERE.parent
README = HERE / "README.md"
BEGIN, END = "<!-- bench-stats:begin -->", "<!-- bench-stats:end -->"

PROVINCE_BY_MONTH = """
query ProvinceByMonth {
  caseStats(groupBy: [PROVINCE, RECEIVED_MONTH]) {
    total { count }
    buckets { key { code } count open overdue resolved resolutionHours { median p90 } }
  }
}
"""
QUARTER = {
    "receivedFrom": "2026-07-01T00:00:00+07:00",
    "receivedBefore": "2026-10-01T00:00:00+07:00",
}
OVERDUE_LAND_DISPUTES = """
query OverdueLandDisputesByProvince($filter: CaseFilterInput) {
  caseStats(filter: $filter, groupBy: [PROVINCE]) {
    total { count overdue }
    buckets { key { code label } count overdue }
  }
}
"""
PAGE = """
query Page($first: Int, $after: String) {
  cases(first: $first, after: $after) {
    edges { node { receivedAt location { province { code } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
BANGKOK = timedelta(hours=7)

Key = tuple[str | None, str]


@dataclasses.dataclass
class Timing:
    name: str
    seconds: list[float]
    http_requests: int
    round_trips: dict[str, float]
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def since(before: dict[str, float], after: dict[str, float], per: int = 1) -> dict[str, float]:
    return {
        s: (after[s] - before.get(s, 0.0)) / per
        for s in sorted(after)
        if after[s] != before.get(s, 0.0)
    }


def post(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"the gateway answered with errors: {body['errors']}")
    return body


def timed(
    client: httpx.Client, name: str, query: str, variables: dict[str, Any] | None, repeat: int
) -> tuple[Timing, Any]:
    post(client, query, variables)  # warm: pools open, plans cached
    before = round_trip_totals(client)
    seconds = []
    body = None
    for _ in range(repeat):
        started = time.perf_counter()
        body = post(client, query, variables)
        seconds.append(time.perf_counter() - started)
    trips = since(before, round_trip_totals(client), repeat)
    return Timing(name, seconds, 1, trips), body


def month_of(received_at: str) -> str:
    local = datetime.fromisoformat(received_at).astimezone(UTC) + BANGKOK
    return f"{local.year:04d}-{local.month:02d}-01"


def naive_count(client: httpx.Client, page_size: int) -> tuple[Timing, Counter[Key]]:
    """Every case, page by page, counted by province and Bangkok month in this process."""
    counts: Counter[Key] = Counter()
    before = round_trip_totals(client)
    after: str | None = None
    pages = 0
    started = time.perf_counter()
    while True:
        body = post(client, PAGE, {"first": page_size, "after": after})
        pages += 1
        connection = body["data"]["cases"]
        for edge in connection["edges"]:
            node = edge["node"]
            province = (node["location"] or {}).get("province")
            counts[(province["code"] if province else None, month_of(node["receivedAt"]))] += 1
        if pages % 200 == 0:
            print(f"  naive: {pages} pages, {sum(counts.values()):,} cases", flush=True)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    elapsed = time.perf_counter() - started
    trips = since(before, round_trip_totals(client))
    return Timing(
        "naive: page through `cases` and count in Python", [elapsed], pages, trips
    ), counts


def stats_counts(body: Any) -> Counter[Key]:
    return Counter(
        {
            (bucket["key"][0]["code"], bucket["key"][1]["code"]): bucket["count"]
            for bucket in body["data"]["caseStats"]["buckets"]
        }
    )


def config_file(data: BenchData) -> Path:
    """The demo's configuration without change polling; anonymous callers read everything.

    Timeouts (10 s per source call, 30 s per operation by default) are raised to 600 s so the
    benchmark measures how long each way takes rather than where it gives up; the two API
    agencies' scan bounds (20 pages, 10,000 cases) are doubled so that caseStats' bounded scan
    covers all of their 10,000 cases.
    """
    document = yaml.safe_load((ROOT / "samples" / "config.yaml").read_text(encoding="utf-8"))
    for source in document["sources"]:
        source["timeout_seconds"] = 600
        if source["kind"] in ("rest", "open311"):  # scans must cover the APIs' 10,000 cases
            source["stats_scan_limit"] = 2 * OTHER_AGENCY_CASES
            pages = source["list"] if source["kind"] == "rest" else source
            pages["max_pages"] = 40
    document["limits"] = {"timeout_seconds": 600}
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    text += "\nevents: {enabled: false}  # no change polling: round trips are the requests' own\n"
    if "auth" in {f.name for f in dataclasses.fields(GatewayConfig)}:
        store = (data.provincial_path.parent / "stats-keys.sqlite").resolve()
        text += (
            f"\nauth:\n  key_store: sqlite+aiosqlite:///{store}\n  anonymous: {{role: inspector}}\n"
        )
    path = data.provincial_path.parent / "stats-config.yaml"
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def start_gateway(data: BenchData, agencies: tuple[str, str], port: int) -> subprocess.Popen[bytes]:
    env = (
        os.environ
        | demo_environ(data.damrongdhama_dsn, data.provincial_path, *agencies)
        | {"PYTHONWARNINGS": "ignore"}
    )
    executable = str(Path(sys.executable).with_name("complaint-graph"))
    argv = [executable, "serve", "--config", str(config_file(data)), "--port", str(port)]
    log = (data.provincial_path.parent / "stats-gateway.log").open("wb")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB, Python {platform.python_version()}, "
        f"PostgreSQL on loopback; load average at the end {load} (other work shared the CPUs)"
    )


def describe(trips: dict[str, float]) -> str:
    return ", ".join(f"{source}: {n:g}" for source, n in trips.items()) or "—"


def report(timings: list[Timing], data: BenchData, notes: list[str]) -> str:
    total = data.damrongdhama_cases + 3 * data.other_cases
    lines = [
        f"`python -m bench.stats`, {datetime.now(UTC):%Y-%m-%d}, {machine()}. "
        f"{total:,} cases: damrongdhama (PostgreSQL) {data.damrongdhama_cases:,}, "
        f"khonkaen-office (SQLite), pmoc-1111 (JSON API) and traffy-city (Open311) "
        f"{data.other_cases:,} each.",
        "",
        "| query | median ms | HTTP requests | round trips per source |",
        "| --- | ---: | ---: | --- |",
    ]
    for timing in timings:
        runs = f" ({len(timing.seconds)} runs)" if len(timing.seconds) > 1 else ""
        lines.append(
            f"| {timing.name}{runs} | {timing.median_ms:,.0f} | {timing.http_requests:,} | "
            f"{describe(timing.round_trips)} |"
        )
    lines += ["", *notes, ""]
    return "\n".join(lines)


def write_readme(section: str) -> None:
    block = f"{BEGIN}\n{section}{END}"
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = (
            text.rstrip("\n") + "\n\n## caseStats against counting in the client\n\n" + block + "\n"
        )
    README.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stats", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each caseStats query")
    parser.add_argument("--page-size", type=int, default=500, help="the naive way's page size")
    parser.add_argument("--port", type=int, default=8831)
    parser.add_argument("--agencies-port", type=int, default=8833)
    parser.add_argument("--no-naive", action="store_true", help="skip paging through every case")
    parser.add_argument("--no-readme", action="store_true", help="print, do not write README.md")
    args = parser.parse_args(argv)

    data = asyncio.run(ensure_bench_data())
    pmoc = ThreadedServer(
        pmoc_1111.create_app(count=data.other_cases, api_key=DEMO_PMOC_KEY), args.agencies_port
    )
    city = ThreadedServer(traffy.create_app(count=data.other_cases), args.agencies_port + 1)
    pmoc.start()
    city.start()
    process = start_gateway(data, (pmoc.url, city.url), args.port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600) as client:
            wait_until_up(client, process, 180, "bench/.data/stats-gateway.log")
            timings, notes = run(client, args)
    finally:
        process.terminate()
        process.wait(timeout=30)
        pmoc.stop()
        city.stop()
    section = report(timings, data, notes)
    print(section)
    if not args.no_readme:
        write_readme(section)


def run(client: httpx.Client, args: argparse.Namespace) -> tuple[list[Timing], list[str]]:
    stats, stats_body = timed(
        client,
        "`caseStats(groupBy: [PROVINCE, RECEIVED_MONTH])`, every case",
        PROVINCE_BY_MONTH,
        None,
        args.repeat,
    )
    print(f"caseStats province × month: {stats.median_ms:,.0f} ms", flush=True)
    done, done_body = timed(
        client,
        "overdue land disputes by province, July–September 2026 (`caseStats`)",
        OVERDUE_LAND_DISPUTES,
        {"filter": {"category": ["LAND_DISPUTE"], **QUARTER}},
        args.repeat,
    )
    print(f"overdue land disputes this quarter: {done.median_ms:,.0f} ms", flush=True)
    total = done_body["data"]["caseStats"]["total"]
    notes = [
        f'- The "Done means" question: {total["overdue"]:,} overdue of {total["count"]:,} '
        f"land-dispute cases received in the quarter, in "
        f"{len(done_body['data']['caseStats']['buckets'])} provinces: median "
        f"{done.median_ms:,.0f} ms ({'under' if done.median_ms < 1000 else 'NOT under'} a second).",
    ]
    timings = [stats, done]
    if not args.no_naive:
        naive, counts = naive_count(client, args.page_size)
        timings.insert(1, naive)
        expected = stats_counts(stats_body)
        same = counts == expected
        notes.insert(
            0,
            f"- caseStats is **{naive.median_ms / stats.median_ms:,.0f}x** faster than paging "
            f"({naive.http_requests:,} pages of {args.page_size}); both count "
            f"{sum(counts.values()):,} cases in {len(expected):,} province × month buckets, "
            + ("identically." if same else "**differently** (a bug)."),
        )
        if not same:
            raise SystemExit("the naive counts differ from caseStats")
    return timings, notes


if __name__ == "__main__":
    main(sys.argv[1:])
