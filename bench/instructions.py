"""Instructions per request, counted by valgrind: ``python -m bench instructions a``.

CPU time per request drifts by tens of percent within minutes on a shared two-core machine
(``bench ab`` interleaves two versions to cancel that out, and still sees +-5% between two
identical ones). The number of instructions the process executes for a request does not drift:
this runs the gateway in one process under callgrind, with counting off while it starts and
warms up, sends ``--requests`` requests through the ASGI app in that process (no sockets, no
HTTP client: the gateway's own work and its sources' round trips), and divides the count. Two
runs of one version agree to about 0.1%. It counts instructions, not time: memory stalls and
waiting are not in it, so it says which version does less work, and ``bench ab`` or ``bench
http`` how much faster that is.

Needs valgrind (``apt-get install valgrind``). Workloads (a), (b) and (d) of ``bench http``;
(h), (s), (v) and (e) of ``bench peers`` ((e) its first page: no cursor to walk to, and the
gateway's work per page is the same); (t), a trivial ``{ __typename }``, which touches no
source: what every request costs whatever it asks (HTTP, context, limits, plan lookup, JSON).
(d) starts the two API agencies, as ``bench http`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import documents as docs
from bench import http
from bench._counted import DONE, READY
from bench.data import ensure_bench_data
from bench.shapes import shapes

PEER_WORKLOADS = ("h", "s", "v", "e")
"""``bench peers`` workloads counted here too (by their key in bench/shapes.py)."""


TRIVIAL = "t"
"""A document that reads no source: the fixed cost of a request."""


def body_of(workload: str) -> dict[str, Any]:
    """The request ``bench http`` sends for the workload; for the shapes of ``bench peers``
    (bench/shapes.py), the one it sends complaint-graph."""
    if workload == TRIVIAL:
        return {"query": "{ __typename }"}
    peer = {shape.key: shape for shape in shapes() if shape.key in PEER_WORKLOADS}.get(workload)
    if peer is not None:
        return {"query": peer.documents["cg"], "variables": peer.variables["cg"]}
    if workload == "a":
        variables: dict[str, Any] = {"first": docs.PAGE, "filter": {"source": ["damrongdhama"]}}
        return {"query": docs.DASHBOARD, "variables": variables}
    if workload == "d":
        return {"query": docs.DASHBOARD, "variables": {"first": docs.PAGE}}
    detail = docs.case_id("damrongdhama", docs.DETAIL_CASE)
    return {"query": docs.DETAIL, "variables": {"id": detail}}


def count(code: Path, config: Path, env: dict[str, str], workload: str, requests: int) -> int:
    """Instructions the gateway in ``code`` executed for ``requests`` requests."""
    with tempfile.TemporaryDirectory() as scratch:
        go = Path(scratch) / "go"
        body = Path(scratch) / "body.json"
        body.write_text(json.dumps(body_of(workload)), encoding="utf-8")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={scratch}/callgrind.out",
            sys.executable,
            "-P",  # not bench/ first on sys.path: its http.py would hide the standard library's
            str(Path(__file__).with_name("_counted.py")),
            str(config),
            str(body),
            str(requests),
            str(go),
        ]
        process = subprocess.Popen(
            command,
            cwd=code,
            env=os.environ | env | {"PYTHONPATH": str(code)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        _wait_for(process, READY)
        _control(process.pid, "on")
        go.touch()
        _wait_for(process, DONE)
        _control(process.pid, "off")
        go.unlink()
        _, errors = process.communicate(timeout=300)
        found = re.search(r"Collected : (\d+)", errors)
        if process.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed:\n{errors[-3000:]}")
        return int(found.group(1))


def _wait_for(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    for printed in process.stdout:
        if printed.strip() == line:
            return
    assert process.stderr is not None
    errors = process.stderr.read()[-3000:]
    raise SystemExit(f"the gateway under callgrind stopped before {line!r}:\n{errors}")


def _control(pid: int, state: str) -> None:
    subprocess.run(
        ["callgrind_control", "--instr=" + state, str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench instructions", description=__doc__)
    parser.add_argument("workload", choices=["a", "b", "d", TRIVIAL, *PEER_WORKLOADS])
    parser.add_argument("--code", type=Path, action="append", help="versions to count")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--agencies-port", type=int, default=8883)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    data = asyncio.run(ensure_bench_data())
    codes = args.code or [http.working_tree()[0]]
    http.RESULTS.mkdir(exist_ok=True)
    agencies = http.start_agencies(args.agencies_port, codes[0], "instructions-agencies.log")
    try:
        http.wait_listening(agencies, [args.agencies_port, args.agencies_port + 1])
        counts = []
        for code in codes:
            server = http.servers(data, args.agencies_port, 0, code)[0]
            config = http.bench_config(data, code)
            total = count(code, config, server.env, args.workload, args.requests)
            counts.append(total / args.requests)
            print(f"{code}: {total / args.requests / 1e6:.2f} M instructions per request")
        if len(counts) == 2:
            print(f"B/A {counts[1] / counts[0]:.3f}")
    finally:
        agencies.terminate()
        agencies.wait(timeout=30)
