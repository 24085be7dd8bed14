"""complaint-graph against PostGraphile 4 and against its own N+1 baseline, in one run.

``python -m bench http`` builds (or reuses) the benchmark data (bench/data.py: 1,000,000 cases
in the Damrongdhama PostgreSQL database, the other agencies at demo size), starts the API
agencies in their own process, then one server at a time: complaint-graph, complaint-graph with
data loaders off (``limits.dataloader_batching: false``), and PostGraphile 4 on the same database.
Each workload is checked first (answers without errors, the same cases from every server, round
trips per request read from the gateway's ``/metrics``), warmed up, then loaded by ``wrk`` (a C
load generator, its own process on the same machine) at a fixed concurrency. The server's peak
RSS (VmHWM, reset before each workload) and CPU time come from ``/proc``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import documents as docs
from bench.data import BenchData, ensure_bench_data
from gateway.config import GatewayConfig
from gateway.demo import demo_environ

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
POSTGRAPHILE_DIR = HERE / "postgraphile"
README = HERE / "README.md"
BEGIN, END = "<!-- bench-http:begin -->", "<!-- bench-http:end -->"


@dataclass
class Workload:
    key: str
    title: str
    body: dict[str, Any]
    cases: Callable[[dict[str, Any]], list[str]]
    """The reference numbers a response holds, to check every server answers the same."""


@dataclass
class Result:
    server: str
    workload: str
    requests_per_s: float
    rate_range: tuple[float, float]
    """The lowest and highest requests/s of a single round."""
    p50_ms: float
    p99_ms: float
    round_trips: dict[str, float]
    peak_rss_mib: float
    alone_ms: float
    cpu_ms_per_request: float
    fields: int
    requests: int
    errors: int
    wrk: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    metrics: bool
    """Whether it serves complaint-graph's /metrics (round trips per source)."""
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(self, log_path: Path) -> None:
        ensure_free(self.port)
        log = log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        deadline = time.monotonic() + 180
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"{self.name} exited at start; see {log_path}")
                try:
                    answer = client.post(self.url, json={"query": "{ __typename }"})
                    if answer.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)  # polling a condition (the port answers) with a deadline
        raise SystemExit(f"{self.name} did not answer within 180 s; see {log_path}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def start_agencies(port: int, code: Path, log_name: str) -> subprocess.Popen[bytes]:
    """The two API agencies (``bench.agencies``, on ``port`` and ``port + 1``) in a process of
    their own, from the code in ``code``, logging to ``RESULTS / log_name``."""
    for taken in (port, port + 1):
        ensure_free(taken)
    return subprocess.Popen(
        [sys.executable, "-m", "bench.agencies", "--port", str(port)],
        stdout=(RESULTS / log_name).open("wb"),
        stderr=subprocess.STDOUT,
        cwd=code,
        env=os.environ | {"PYTHONPATH": str(code)},
    )


def ensure_free(port: int) -> None:
    """Refuse a port something already listens on: the run would measure someone else's server."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is in use; choose others with --port/--agencies-port")


def wait_listening(process: subprocess.Popen[bytes], ports: list[int], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    for port in ports:
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agencies did not listen on {port}; see bench/results/")
            time.sleep(0.2)  # polling a condition (the port answers) with a deadline


# --- the workloads, per server ---------------------------------------------------------------


def _cg_refs(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["referenceNumber"] for edge in body["data"]["cases"]["edges"]]


def _pg_refs(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["refNo"] for edge in body["data"]["allComplaints"]["edges"]]


def _detail_refs(body: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "referenceNumber" in value:
                found.append(value["referenceNumber"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body["data"])
    return sorted(set(found))


def _walk_to(
    client: httpx.Client,
    url: str,
    make: Callable[[int, str | None], dict[str, Any]],
    connection: str,
    depth: int,
) -> str:
    """The cursor after ``depth`` cases of the search, fetched 500 at a time."""
    cursor: str | None = None
    remaining = depth
    while remaining:
        step = min(500, remaining)
        body = client.post(url, json=make(step, cursor)).json()
        assert "errors" not in body, body["errors"]
        page = body["data"][connection]
        assert len(page["edges"]) == step, f"the search has fewer than {depth} cases"
        cursor = page["pageInfo"]["endCursor"]
        remaining -= step
    assert cursor is not None
    return cursor


def complaint_graph_workloads(url: str) -> list[Workload]:
    depth = docs.SEARCH_PAGE * (docs.SEARCH_DEPTH - 1)

    def search(first: int, after: str | None) -> dict[str, Any]:
        variables = {"first": first, "after": after, "filter": docs.SEARCH_FILTER}
        return {"query": docs.SEARCH, "variables": variables}

    with httpx.Client(timeout=120) as client:
        cursor = _walk_to(client, url, search, "cases", depth)
    only_ddc = {"source": ["damrongdhama"]}
    detail_id = docs.case_id("damrongdhama", docs.DETAIL_CASE)
    return [
        Workload(
            "a",
            "dashboard page, 100 cases (PostgreSQL agency)",
            {"query": docs.DASHBOARD, "variables": {"first": docs.PAGE, "filter": only_ddc}},
            _cg_refs,
        ),
        Workload(
            "b",
            "one case in full, referrals followed across agencies",
            {"query": docs.DETAIL, "variables": {"id": detail_id}},
            _detail_refs,
        ),
        Workload(
            "c",
            f"filtered search, page {docs.SEARCH_DEPTH} of {docs.SEARCH_PAGE} (keyset cursor)",
            search(docs.SEARCH_PAGE, cursor),
            _cg_refs,
        ),
        Workload(
            "d",
            "dashboard page, 100 cases across all four agencies",
            {"query": docs.DASHBOARD, "variables": {"first": docs.PAGE}},
            _cg_refs,
        ),
    ]


SOURCES = ("damrongdhama", "khonkaen-office", "pmoc-1111", "traffy-city")
"""The four demo agencies' sources, whose pages workload (d) merges."""


def single_source_pages() -> list[Workload]:
    """Workload (d)'s page from each agency alone: (d) asks all four at once, so its latency
    is compared with the slowest of these (issue 6 asks for at most 1.5 times)."""
    return [
        Workload(
            f"d:{source}",
            f"dashboard page, 100 cases, {source} only",
            {
                "query": docs.DASHBOARD,
                "variables": {"first": docs.PAGE, "filter": {"source": [source]}},
            },
            _cg_refs,
        )
        for source in SOURCES
    ]


def postgraphile_workloads(url: str) -> list[Workload]:
    depth = docs.SEARCH_PAGE * (docs.SEARCH_DEPTH - 1)

    def search(first: int, after: str | None) -> dict[str, Any]:
        return {"query": docs.POSTGRAPHILE_SEARCH, "variables": {"first": first, "after": after}}

    with httpx.Client(timeout=120) as client:
        cursor = _walk_to(client, url, search, "allComplaints", depth)
    return [
        Workload(
            "a",
            "dashboard page, 100 cases (PostgreSQL agency)",
            {"query": docs.POSTGRAPHILE_DASHBOARD, "variables": {"first": docs.PAGE}},
            _pg_refs,
        ),
        Workload(
            "c",
            f"filtered search, page {docs.SEARCH_DEPTH} of {docs.SEARCH_PAGE} (keyset cursor)",
            search(docs.SEARCH_PAGE, cursor),
            _pg_refs,
        ),
    ]


# --- measuring ----------------------------------------------------------------------------------


def round_trip_totals(client: httpx.Client, base: str = "") -> dict[str, float]:
    """Round trips so far per source, from the gateway's /metrics (``base``: its origin, when
    the client has none)."""
    totals: dict[str, float] = {}
    for line in client.get(f"{base}/metrics").text.splitlines():
        if line.startswith("complaint_graph_source_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            source = labels.split('source="', 1)[1].split('"', 1)[0]
            totals[source] = totals.get(source, 0.0) + float(value)
    return totals


def count_fields(value: Any) -> int:
    """Fields in a GraphQL response's data: every key of every object, lists counted per item."""
    if isinstance(value, dict):
        return len(value) + sum(count_fields(item) for item in value.values())
    if isinstance(value, list):
        return sum(count_fields(item) for item in value)
    return 0


@dataclass
class Checked:
    """What the workload's requests, sent one after another to an idle server, showed."""

    refs: list[str]
    round_trips: dict[str, float]
    fields: int
    alone_ms: float
    cpu_ms: float


def check(server: Server, workload: Workload, least: int = 5, most: int = 20) -> Checked:
    """Send the workload one request after another and check every answer: at least ``least``
    times, more (up to ``most``) until two seconds have passed, since CPU time is counted in
    10 ms clock ticks."""
    base = server.url.rsplit("/", 1)[0]
    latencies: list[float] = []
    with httpx.Client(timeout=120) as client:
        before = round_trip_totals(client, base) if server.metrics else {}
        cpu_before = _cpu_seconds(server.pid)
        refs: list[str] = []
        fields = 0
        began = time.perf_counter()
        repeat = 0
        while repeat < least or (repeat < most and time.perf_counter() - began < 2):
            repeat += 1
            started = time.perf_counter()
            body = client.post(server.url, json=workload.body).json()
            latencies.append(time.perf_counter() - started)
            if "errors" in body:
                raise SystemExit(
                    f"{server.name} ({workload.key}) answered errors: {body['errors']}"
                )
            refs = workload.cases(body)
            fields = count_fields(body["data"])
        cpu = _cpu_seconds(server.pid) - cpu_before
        after = round_trip_totals(client, base) if server.metrics else {}
    trips = {s: (after[s] - before.get(s, 0.0)) / repeat for s in after}
    return Checked(
        refs,
        {s: n for s, n in trips.items() if n},
        fields,
        statistics.median(latencies) * 1000,
        cpu * 1000 / repeat,
    )


def wait_idle(server: Server, dsn: str, limit: float = 120) -> None:
    """Until the server and its database are done with requests wrk gave up on.

    wrk closes its connections at the end of a run, but a server finishes what it started; the
    next measurement must not pay for that. Idle: under 2% of a core for half a second, and no
    active query on the benchmark database but this one.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _cpu_seconds(server.pid)
        time.sleep(0.5)  # a sampling interval, not a synchronisation
        busy = _cpu_seconds(server.pid) - before > 0.01
        if not busy and not asyncio.run(_active_queries(dsn)):
            return
    print(f"  {server.name} still busy after {limit:g} s; measuring anyway", flush=True)


async def _active_queries(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        )
        return int(count)
    finally:
        await connection.close()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server with worker processes is all of them)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found.extend(_tree(int(child)))
    return found


def _proc_status(pid: int, key: str) -> float:
    """``key`` of /proc/<pid>/status in MiB, summed over the process and its descendants."""
    total = 0.0
    for member in _tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                total += float(line.split()[1]) / 1024  # kB to MiB
    return total


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its (live) descendants."""
    total = 0
    for member in _tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _reset_peak_rss(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
    for member in _tree(pid):
        Path(f"/proc/{member}/clear_refs").write_text("5")


def run_wrk(url: str, body: dict[str, Any], seconds: int, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(body, handle)
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "60s",
                "-s",
                str(HERE / "wrk.lua"),
                url,
            ],
            env=os.environ | {"BENCH_BODY": handle.name},
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            report: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return report
    raise SystemExit(f"wrk printed no report:\n{completed.stdout}\n{completed.stderr}")


def load_once(
    server: Server, workload: Workload, dsn: str, seconds: int, warmup: int, connections: int
) -> tuple[dict[str, Any], float]:
    """One round: warm up, wait for quiet, then ``wrk``; its report and the peak RSS in MiB."""
    wait_idle(server, dsn)
    run_wrk(server.url, workload.body, warmup, connections)
    wait_idle(server, dsn)
    _reset_peak_rss(server.pid)
    report = run_wrk(server.url, workload.body, seconds, connections)
    return report, _proc_status(server.pid, "VmHWM")


def summarise(
    server: Server, workload: Workload, checked: Checked, rounds: list[tuple[dict[str, Any], float]]
) -> Result:
    """Requests/s over all rounds together; latency percentiles the median of the rounds'."""
    reports = [report for report, _ in rounds]
    requests = sum(r["requests"] for r in reports)
    seconds = sum(r["duration_us"] for r in reports) / 1e6
    rates = [r["requests"] / (r["duration_us"] / 1e6) for r in reports]
    finished = [r for r in reports if r["requests"]]
    errors = sum(sum(r[k] for k in r if k.endswith("_errors")) + r["timeouts"] for r in reports)
    return Result(
        server=server.name,
        workload=workload.key,
        requests_per_s=requests / seconds,
        rate_range=(min(rates), max(rates)),
        p50_ms=statistics.median(r["p50_us"] for r in finished) / 1000 if finished else 0.0,
        p99_ms=statistics.median(r["p99_us"] for r in finished) / 1000 if finished else 0.0,
        round_trips=checked.round_trips,
        peak_rss_mib=max(rss for _, rss in rounds),
        alone_ms=checked.alone_ms,
        cpu_ms_per_request=checked.cpu_ms,
        fields=checked.fields,
        requests=requests,
        errors=errors,
        wrk=reports,
    )


# --- tools and servers ------------------------------------------------------------------------


def ensure_tools() -> None:
    """wrk from Debian, PostGraphile from npm (bench/postgraphile's lock file), when missing."""
    if shutil.which("wrk") is None:
        print("installing wrk (apt-get install wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    if not (POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile").exists():
        print("installing PostGraphile 4 (npm ci in bench/postgraphile)", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE_DIR, check=True)


def bench_config(data: BenchData, code: Path, *, batching: bool = True) -> Path:
    """The demo's configuration without change polling; anonymous callers may read everything.

    PostGraphile runs without authentication (no JWT secret), so complaint-graph does too:
    both do the same work per request. Written beside the data, never committed.
    ``batching=False`` is the N+1 baseline (``limits.dataloader_batching: false``).
    """
    text = (code / "samples" / "config.yaml").read_text(encoding="utf-8")
    if not batching:
        assert "\nlimits:\n" in text, "samples/config.yaml has no limits: section"
        text = text.replace("\nlimits:\n", "\nlimits:\n  dataloader_batching: false\n", 1)
    text += "\nevents: {enabled: false}  # no change polling: round trips are the requests' own\n"
    if "auth" in {f.name for f in dataclasses.fields(GatewayConfig)}:
        store = (data.provincial_path.parent / "bench-keys.sqlite").resolve()
        text += (
            "\nauth:\n"
            f"  key_store: sqlite+aiosqlite:///{store}\n"
            "  anonymous: {role: inspector, scopes: [pii:read]}\n"
        )
    name = "bench-config.yaml" if batching else "bench-config-n+1.yaml"
    path = data.provincial_path.parent / name
    path.write_text(text, encoding="utf-8")
    return path.resolve()


WORKERS = 2
"""Worker processes of the multi-process complaint-graph (``serve --workers``): the cores."""


def servers(data: BenchData, agencies_port: int, port: int, code: Path) -> list[Server]:
    gateway = str(Path(sys.executable).with_name("complaint-graph"))
    agencies = (f"http://127.0.0.1:{agencies_port}", f"http://127.0.0.1:{agencies_port + 1}")
    env = demo_environ(data.damrongdhama_dsn, data.provincial_path, *agencies) | {
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": str(code),
    }
    serve = [gateway, "serve", "--config", str(bench_config(data, code)), "--port", str(port)]
    # The N+1 baseline: a configuration setting since it left the environment; a version of
    # the code from before reads the environment variable instead (``--code``/``--revision``).
    knows_setting = "dataloader_batching" in (code / "gateway" / "limits.py").read_text("utf-8")
    baseline = (
        [gateway, "serve", "--config", str(bench_config(data, code, batching=False))]
        if knows_setting
        else serve[:4]
    )
    baseline_env = env if knows_setting else env | {"COMPLAINT_GRAPH_DATALOADERS": "off"}
    postgraphile = [
        str(POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile"),
        "--connection",
        data.damrongdhama_dsn,
        "--schema",
        "public",
        "--host",
        "127.0.0.1",
        "--port",
        str(port + 2),
        "--disable-query-log",  # "recommended in production" (postgraphile --help)
    ]
    return [
        Server("complaint-graph", serve, env, port, metrics=True, cwd=code),
        Server(
            "complaint-graph, data loaders off (N+1)",
            [*baseline, "--port", str(port + 1)],
            baseline_env,
            port + 1,
            metrics=True,
            cwd=code,
        ),
        Server("PostGraphile 4", postgraphile, {"NODE_ENV": "production"}, port + 2, metrics=False),
        # Each worker keeps its own /metrics, so round trips are read from the one-worker run.
        Server(
            f"complaint-graph, {WORKERS} workers",
            [*serve[:-1], str(port + 3), "--workers", str(WORKERS)],
            env,
            port + 3,
            metrics=False,
            cwd=code,
        ),
    ]


def snapshot(revision: str) -> tuple[Path, str]:
    """The committed tree at ``revision``, extracted once, for servers that others' uncommitted
    edits in a shared working tree cannot break; and a description of it for the table."""
    sha = _git("rev-parse", "--short", revision)
    target = HERE / ".data" / f"src-{sha}"
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True)
        partial.rename(target)
    return target, f"commit {sha} (a clean `git archive` of it)"


def frozen_working_tree() -> tuple[Path, str]:
    """A copy of the working tree's files (tracked and new, not ignored) as they are now."""
    base, described = working_tree()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    target = HERE / ".data" / f"src-worktree-{stamp}"
    names = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, names):
        source = base / name
        if source.is_file() and not name.startswith("bench/.data/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target, f"a copy of the {described}, taken at {stamp} UTC"


def working_tree() -> tuple[Path, str]:
    changed = len(_git("status", "--porcelain", "--untracked-files=no").splitlines())
    sha = _git("rev-parse", "--short", "HEAD")
    return ROOT, f"working tree at {sha}" + (f" with {changed} changed files" if changed else "")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    postgraphile_version = json.loads(
        (POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json").read_text()
    )["version"]
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "wrk": _version(["wrk", "--version"]).split(" [")[0],
        "postgres": _version(["psql", "--version"]),
        "postgraphile": postgraphile_version,
        "kernel": platform.release(),
    }


# --- the report ---------------------------------------------------------------------------------


def _trips(result: Result) -> str:
    if not result.round_trips and result.server.startswith("PostGraphile"):
        return "n/a (one SQL query per request by design)"
    if not result.round_trips:
        return "as with one worker (each worker counts its own)"
    return ", ".join(f"{s}: {n:g}" for s, n in sorted(result.round_trips.items()))


def _same_cases(plans: list[tuple[Server, Workload, Checked]]) -> None:
    """Every server must answer each workload with the same cases, in the same order."""
    first: dict[str, tuple[str, list[str]]] = {}
    for server, workload, checked in plans:
        name, refs = first.setdefault(workload.key, (server.name, checked.refs))
        if refs != checked.refs:
            raise SystemExit(
                f"{server.name} ({workload.key}) answered other cases than {name}: "
                f"{checked.refs[:3]}... against {refs[:3]}..."
            )


def report(
    results: list[Result],
    titles: dict[str, str],
    info: dict[str, Any],
    command: str,
    singles: dict[str, float] | None = None,
) -> str:
    lines = [
        f"Command: `{command}`. Date: {info['date']}. Machine: {info['cpus']} cores "
        f"({info['cpu']}), {info['memory_gib']} GiB; Python {info['python']}, "
        f"Node {info['node']}, {info['postgres']}, PostGraphile {info['postgraphile']}, "
        f"{info['wrk']}. Served: {info['code']}. Data: {info['damrongdhama_cases']:,} cases in "
        "the Damrongdhama PostgreSQL database, 10,000 in each other agency (bench/data.py).",
        "",
        f"Load: `wrk -t1 -c{info['connections']} -d{info['seconds']}s` on the same machine, "
        f"{info['rounds']} rounds, each server and workload in turn within a round (after a "
        f"{info['warmup']} s warm-up and once the server is idle); requests/s over all rounds "
        "(lowest-highest round in brackets), p50/p99 the median of the rounds'. The PostgreSQL "
        "server, "
        "the two API agencies (their own process) and wrk share the two cores with the server "
        f"measured. Load average before the run: {info['load_before']}, after: "
        f"{info['load_after']} (this run's own servers, agencies and wrk count in it). "
        "*alone*: median latency of 5-20 requests sent one after another to the idle server "
        "(at least 5, more until 2 s passed); *server CPU*: the server process's CPU time over "
        "those, per request; *round trips*: from its /metrics over those.",
        "",
        "| workload | server | req/s | p50 ms | p99 ms | alone ms | server CPU ms/request | "
        "round trips per request | peak RSS MiB | fields |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for result in results:
        errors = f" ({result.errors} errors)" if result.errors else ""
        low, high = result.rate_range
        if result.requests:
            rate = f"{result.requests_per_s:.1f} ({low:.1f}-{high:.1f}){errors}"
            p50, p99 = f"{result.p50_ms:.0f}", f"{result.p99_ms:.0f}"
        else:
            rate, p50, p99 = "0 (none finished)", "-", "-"
        lines.append(
            f"| ({result.workload}) {titles[result.workload]} | {result.server} | {rate} | "
            f"{p50} | {p99} | {result.alone_ms:.0f} | {result.cpu_ms_per_request:.1f} | "
            f"{_trips(result)} | {result.peak_rss_mib:.0f} | {result.fields} |"
        )
    lines += ["", "Ratios, same run:", ""]
    by = {(r.server, r.workload): r for r in results}
    several = f"complaint-graph, {WORKERS} workers"
    pairs = [
        ("complaint-graph", "PostGraphile 4"),
        (several, "PostGraphile 4"),
        ("complaint-graph", "complaint-graph, data loaders off (N+1)"),
        (several, "complaint-graph"),
    ]
    for key in sorted(titles):
        for name, other in pairs:
            ours, theirs = by.get((name, key)), by.get((other, key))
            if ours is None or theirs is None:
                continue
            rate = (
                f"**{ours.requests_per_s / theirs.requests_per_s:.2f}x** the requests/s"
                if theirs.requests_per_s
                else "requests/s: the other finished none"
            )
            lines.append(
                f"- ({key}) {name} against {other}: {rate}, "
                f"{ours.alone_ms / theirs.alone_ms:.2f}x the latency alone, "
                f"{ours.cpu_ms_per_request / theirs.cpu_ms_per_request:.2f}x the server CPU "
                "per request"
            )
    across = by.get(("complaint-graph", "d"))
    if singles and across is not None:
        slowest = max(singles, key=lambda source: singles[source])
        each = ", ".join(f"{source} {ms:.0f} ms" for source, ms in singles.items())
        lines.append(
            f"- (d) complaint-graph across all four agencies against the same page from its "
            f"slowest single agency ({slowest}), latency alone: "
            f"**{across.alone_ms / singles[slowest]:.2f}x** ({across.alone_ms:.0f} ms; each "
            f"agency alone: {each})"
        )
    return "\n".join(lines) + "\n"


def write_readme(table: str, begin: str = BEGIN, end: str = END) -> None:
    """Put ``table`` between the ``begin`` and ``end`` markers of bench/README.md."""
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{README} has no {begin} ... {end} markers")
    README.write_text(pattern.sub(lambda _: f"{begin}\n{table}{end}", text), encoding="utf-8")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench http", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="measured load per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--port", type=int, default=8821, help="first of four server ports")
    parser.add_argument("--agencies-port", type=int, default=8811)
    parser.add_argument("--cases", type=int, default=1_000_000, help="Damrongdhama cases")
    parser.add_argument("--only", default="", help="comma-separated server names to run")
    parser.add_argument("--readme", action="store_true", help="write the table to bench/README.md")
    parser.add_argument(
        "--revision",
        help="serve this commit (extracted with git archive) instead of the working tree",
    )
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="serve a copy of the working tree taken at the start (a shared tree may change)",
    )
    args = parser.parse_args(argv)
    command = "python -m bench http" + ("" if not argv else " " + " ".join(argv))
    ensure_tools()
    RESULTS.mkdir(exist_ok=True)
    data = asyncio.run(ensure_bench_data(damrongdhama_cases=args.cases))
    if args.revision:
        code, code_described = snapshot(args.revision)
    else:
        code, code_described = frozen_working_tree() if args.freeze else working_tree()
    started = dt.datetime.now(dt.UTC)
    info = machine() | {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "connections": args.connections,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "damrongdhama_cases": data.damrongdhama_cases,
        "code": code_described,
    }
    agencies = start_agencies(args.agencies_port, code, "agencies.log")
    results: list[Result] = []
    titles: dict[str, str] = {}
    singles: dict[str, float] = {}
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    chosen = [
        server
        for server in servers(data, args.agencies_port, args.port, code)
        if not wanted or any(w in server.name for w in wanted)
    ]
    try:
        wait_listening(agencies, [args.agencies_port, args.agencies_port + 1])
        plans: list[tuple[Server, Workload, Checked]] = []
        for server in chosen:
            print(f"{server.name}: starting", flush=True)
            log_name = re.sub(r"[^a-z0-9]+", "-", server.name.lower()).strip("-")
            server.start(RESULTS / f"{log_name}.log")
            is_pg = server.name.startswith("PostGraphile")
            for workload in (postgraphile_workloads if is_pg else complaint_graph_workloads)(
                server.url
            ):
                wait_idle(server, data.damrongdhama_dsn)
                checked = check(server, workload)
                print(
                    f"  ({workload.key}) alone {checked.alone_ms:.1f} ms, "
                    f"cpu {checked.cpu_ms:.1f} ms, trips {checked.round_trips}",
                    flush=True,
                )
                titles[workload.key] = workload.title
                plans.append((server, workload, checked))
            if server.name == "complaint-graph":
                for single in single_source_pages():
                    wait_idle(server, data.damrongdhama_dsn)
                    singles[single.key.split(":", 1)[1]] = check(server, single).alone_ms
                print(f"  (d) each agency alone: {singles}", flush=True)
        _same_cases(plans)
        rounds: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = {}
        for number in range(args.rounds):
            for key in sorted(titles):
                for server, workload, _ in plans:
                    if workload.key != key:
                        continue
                    measured, rss = load_once(
                        server,
                        workload,
                        data.damrongdhama_dsn,
                        args.seconds,
                        args.warmup,
                        args.connections,
                    )
                    rounds.setdefault((server.name, key), []).append((measured, rss))
                    rate = measured["requests"] / (measured["duration_us"] / 1e6)
                    print(
                        f"round {number + 1} ({key}) {server.name}: {rate:.1f} req/s, "
                        f"p50 {measured['p50_us'] / 1000:.0f} ms, rss {rss:.0f} MiB",
                        flush=True,
                    )
        for server, workload, checked in plans:
            results.append(
                summarise(server, workload, checked, rounds[(server.name, workload.key)])
            )
    finally:
        for server in chosen:
            server.stop()
        agencies.terminate()
        agencies.wait(timeout=30)
    info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = report(results, titles, info, command, singles)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"http-{stamp}.json").write_text(
        json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=2)
    )
    (RESULTS / "http-latest.md").write_text(table)
    print("\n" + table)
    if args.readme:
        write_readme(table)
        print(f"written to {README}")
