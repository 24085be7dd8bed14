"""``complaint-graph demo`` end to end, as ``make demo`` runs it: a separate process on free ports
with its own embedded PostgreSQL, serving four agencies, and leaving nothing running after
SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.demo import DEMO_DSN_VARIABLE
from tests.resolvers.expected import ALL_SOURCES

SIZE = 40
START_SECONDS = 240  # initdb of the embedded server and the data build, on a busy 2-core box
INSPECTOR = {"Authorization": "Bearer demo-inspector"}  # a published demo key (README)


def free_port_pair() -> int:
    """A port p with p + 1 free too: the demo puts its two agency APIs there."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


def postmaster_pid(pgdata: Path) -> int:
    """The embedded server's process id, from the pid file PostgreSQL keeps while it runs."""
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def running(pid: int) -> bool:
    """Alive and not a zombie: pg_ctl detaches the postmaster, so once it exits it may wait
    as a zombie for a parent (a container's init) that is slow to reap it, or never does."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def exits_within(pid: int, seconds: float) -> bool:
    """Whether the process is gone by the deadline (PostgreSQL removes its pid file just
    before the postmaster's last exit steps)."""
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_until_ready(url: str, demo: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert demo.poll() is None, f"the demo exited early:\n{log.read_text()[-3000:]}"
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            body: dict[str, Any] = response.json()
            if body.get("status") == "ready":
                return body
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet
        time.sleep(0.2)  # polling a real endpoint, with a deadline
    raise AssertionError(f"not ready within {START_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's base temp, which each new pytest session makes 0700 again: the embedded
    server runs as its own user (as root, pgserver's 'pgserver') and must reach its data."""
    with tempfile.TemporaryDirectory(prefix="complaint-graph-demo-") as directory:
        yield Path(directory) / "demo"


def test_demo_command_serves_all_agencies_and_stops_its_postgres(
    data_dir: Path, tmp_path: Path
) -> None:
    port, agency_port = free_port_pair(), free_port_pair()
    log = tmp_path / "demo.log"
    command = [
        str(Path(sys.executable).with_name("complaint-graph")),
        "demo",
        "--size",
        str(SIZE),
        "--data-dir",
        str(data_dir),
        "--no-trickle",
        "--port",
        str(port),
        "--agency-port",
        str(agency_port),
    ]
    env = {k: v for k, v in os.environ.items() if k != DEMO_DSN_VARIABLE}
    with log.open("wb") as output:
        demo = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until_ready(url, demo, log)
        assert set(ready["sources"]) == set(ALL_SOURCES)
        postgres = postmaster_pid(data_dir / "pgdata")  # the demo embedded its own server
        assert running(postgres)
        response = httpx.post(
            f"{url}/graphql",
            json={
                "query": "{ cases(first: 500) { totalCount edges { node { source { id } "
                "status location { province { nameEn } } } } } }"
            },
            headers=INSPECTOR,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        cases = body["data"]["cases"]
        assert cases["totalCount"] == SIZE * len(ALL_SOURCES)
        assert [edge["node"]["source"]["id"] for edge in cases["edges"]].count(
            "damrongdhama"
        ) == SIZE
        assert {edge["node"]["source"]["id"] for edge in cases["edges"]} == set(ALL_SOURCES)
        assert all(edge["node"]["status"] for edge in cases["edges"])
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            code = demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
            raise
    assert code in (0, 128 + signal.SIGTERM), log.read_text()[-3000:]
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "PostgreSQL still running"
    assert exits_within(postgres, 10), f"PostgreSQL (pid {postgres}) still running"
    for agency in (agency_port, agency_port + 1):  # the agency APIs are gone too
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", agency)) != 0
