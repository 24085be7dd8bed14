"""``complaint-graph serve --workers N`` as an operator runs it: N gateway processes on one port,
each listening on a socket of its own, so the kernel spreads connections over all of them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from samples.serving import free_port
from tests.conftest import DemoData

_SERVE = [sys.executable, "-m", "gateway.cli", "serve"]

LISTEN, ESTABLISHED = "0A", "01"
"""TCP states as /proc/net/tcp writes them."""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return [pid for pid in _children(self.process.pid) if _is_worker(pid)]


def _environ(demo_data: DemoData) -> dict[str, str]:
    """The demo agencies' addresses, and this checkout's gateway on the import path."""
    return {
        **os.environ,
        **demo_data.environ(),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


@contextmanager
def serving(demo_data: DemoData, tmp_path: Path, workers: int) -> Iterator[Served]:
    """``serve`` on the demo agencies, without change watchers, until every worker answers;
    stopped with SIGTERM afterwards, which must end it cleanly."""
    environ = _environ(demo_data)
    config = tmp_path / "gateway.yaml"
    demo = files("samples").joinpath("config.yaml").read_text(encoding="utf-8")
    config.write_text(demo + "\nevents:\n  enabled: false\n", encoding="utf-8")
    command = [*_SERVE, "--config", str(config)]
    port, log = free_port(), tmp_path / "gateway.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--workers", str(workers)],
            env=environ,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
        )
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 180
        while True:  # a condition with a deadline: every worker up and answering
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                answered = httpx.get(f"{served.url}/healthz").status_code == 200
                if answered and len(served.workers()) == (workers if workers > 1 else 0):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn stops gracefully, then re-raises SIGTERM in a single process (the supervisor
        # of several workers exits 0): either is a clean stop, a crash is neither.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_with_workers_runs_that_many_gateway_processes_logging_json(
    demo_data: DemoData, tmp_path: Path, workers: int
) -> None:
    with serving(demo_data, tmp_path, workers) as served:
        answer = httpx.post(
            f"{served.url}/graphql",
            json={"query": "query Ping { __typename }"},
            headers={"x-request-id": "workers-ping"},
        )
        assert answer.json() == {"data": {"__typename": "Query"}}
        assert answer.headers["x-request-id"] == "workers-ping"
    log = served.log.read_text()
    assert "Application shutdown complete." in log
    lines = [json.loads(line) for line in log.splitlines()]  # every line is JSON
    assert any(
        line["request_id"] == "workers-ping" and line.get("operation") == "Ping" for line in lines
    ), log


def test_each_worker_listens_on_its_own_socket_and_connections_reach_every_worker(
    demo_data: DemoData, tmp_path: Path
) -> None:
    """With one shared socket an idle worker can accept every connection a client opens at
    once; with a socket each the kernel hashes connections over them. 64 connections all on
    one of two workers would happen once in 2**63 runs."""
    with serving(demo_data, tmp_path, 2) as served:
        workers = served.workers()
        deadline = time.monotonic() + 60
        while len(_listening(served.port)) < 2:  # the second worker may still be binding
            assert time.monotonic() < deadline, _listening(served.port)
            time.sleep(0.05)
        owners = {_owner(inode, workers) for inode in _listening(served.port)}
        assert owners == set(workers), "each worker holds one listening socket"

        with ExitStack() as stack:
            for _ in range(64):
                client = stack.enter_context(socket.create_connection(("127.0.0.1", served.port)))
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            while True:  # until the workers have accepted all 64
                accepted = [_owner(i, workers) for i in _sockets(served.port, ESTABLISHED)]
                if sum(owner is not None for owner in accepted) == 64:
                    break
                assert time.monotonic() < deadline, accepted
                time.sleep(0.05)
        per_worker = {pid: accepted.count(pid) for pid in workers}
        assert all(count > 0 for count in per_worker.values()), per_worker


def test_serve_with_workers_on_a_port_in_use_fails_at_once_naming_it(
    demo_data: DemoData, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(files("samples").joinpath("config.yaml").read_text(encoding="utf-8"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*_SERVE, "--config", str(config), "--port", str(port), "--workers", "2"],
            env=_environ(demo_data),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_second_gateway_on_the_port_of_a_running_one_fails_instead_of_sharing_it(
    demo_data: DemoData, tmp_path: Path
) -> None:
    """The workers' sockets share the port with SO_REUSEPORT; the supervisor's is bound
    without it, so another `serve --workers` of the same user cannot join them and quietly
    take part of their connections (an old gateway still running, say)."""
    with serving(demo_data, tmp_path, 2) as served:
        config = tmp_path / "gateway.yaml"  # the running one's
        done = subprocess.run(
            [*_SERVE, "--config", str(config), "--port", str(served.port), "--workers", "2"],
            env=_environ(demo_data),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert f"cannot listen on 127.0.0.1:{served.port}" in done.stderr
        assert len(_listening(served.port)) == 2  # the running gateway's two workers, still


def _sockets(port: int, state: str) -> list[int]:
    """Inodes of the TCP sockets in ``state`` whose local port is ``port`` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, row_state, inode = fields[1], fields[3], int(fields[9])
            if int(local.rsplit(":", 1)[1], 16) == port and row_state == state and inode:
                found.append(inode)
    return found


def _listening(port: int) -> list[int]:
    return _sockets(port, LISTEN)


def _owner(inode: int, pids: list[int]) -> int | None:
    """Which of ``pids`` has the socket ``inode`` open."""
    link = f"socket:[{inode}]"
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == link:
                    return pid
            except OSError:
                continue
    return None


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
