"""``complaint-graph demo`` where ports are taken, as on a newcomer's machine: the sample agencies
move to free ports by themselves; a taken gateway port is one line naming it and ``PORT=``, with
no banner and no traceback; and an idle demo does not print a line per poll of its agencies."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.demo import DEFAULT_AGENCY_PORT, DEMO_DSN_VARIABLE, DemoError, start_postgres
from tests.gateway.test_demo_command import INSPECTOR, SIZE, free_port_pair, wait_until_ready

POLLS = 4  # the demo polls each API agency every 2 s: the quiet check spans four polls
POLL_DEADLINE_SECONDS = 60


def demo_command(*arguments: str) -> list[str]:
    return [str(Path(sys.executable).with_name("complaint-graph")), "demo", *arguments]


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != DEMO_DSN_VARIABLE}


@contextlib.contextmanager
def listening_on(port: int) -> Iterator[None]:
    """A socket of this test listening on ``port``; if another program already holds the port,
    it is taken all the same, which is the condition the test needs."""
    with socket.socket() as holder:
        with contextlib.suppress(OSError):
            holder.bind(("127.0.0.1", port))
            holder.listen()
        yield


def test_a_taken_gateway_port_is_one_line_naming_it_and_port_variable(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            demo_command("--port", str(port), "--data-dir", str(tmp_path / "demo")),
            capture_output=True,
            text=True,
            env=demo_env(),
            timeout=120,
            check=False,
        )
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1, output
    assert str(port) in lines[0] and "PORT=" in lines[0]
    assert "Traceback" not in output
    assert "/graphql" not in output  # no banner for someone else's server
    assert not (tmp_path / "demo" / "pgdata").exists()  # it failed before the slow start


def test_a_taken_agency_port_asked_for_is_one_line_naming_agency_port(tmp_path: Path) -> None:
    agency_port = free_port_pair()
    with listening_on(agency_port + 1):
        done = subprocess.run(
            demo_command(
                "--port", "0", "--agency-port", str(agency_port), "--data-dir", str(tmp_path)
            ),
            capture_output=True,
            text=True,
            env=demo_env(),
            timeout=120,
            check=False,
        )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1 and str(agency_port + 1) in lines[0] and "AGENCY_PORT=" in lines[0]


def pmoc_polls(url: str) -> float:
    """HTTP requests the gateway has sent to the 1111 sample API (its polls), from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    series = r'complaint_graph_source_http_requests_total\{source="pmoc-1111"\} (\S+)'
    found = re.search(series, text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="complaint-graph-demo-") as directory:
        yield Path(directory) / "demo"


def test_demo_starts_on_free_agency_ports_and_stays_quiet_when_idle(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port_pair()
    log = tmp_path / "demo.log"
    command = demo_command(
        "--size", str(SIZE), "--data-dir", str(data_dir), "--no-trickle", "--port", str(port)
    )
    url = f"http://127.0.0.1:{port}"
    with listening_on(DEFAULT_AGENCY_PORT), listening_on(DEFAULT_AGENCY_PORT + 1):
        with log.open("wb") as output:
            demo = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=demo_env()
            )
        try:
            ready = wait_until_ready(url, demo, log)
            assert {"pmoc-1111", "traffy-city"} <= set(ready["sources"])
            response = httpx.post(
                f"{url}/graphql",
                json={"query": "{ cases(first: 500) { totalCount edges { node { id } } } }"},
                headers=INSPECTOR,
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert "errors" not in response.json()
            assert response.json()["data"]["cases"]["totalCount"] == SIZE * 4
            graphiql = httpx.get(f"{url}/graphql", headers={"accept": "text/html"}, timeout=30)
            assert "Bearer demo-inspector" in graphiql.text  # its headers prefilled
            assert "unpkg.com" not in graphiql.text  # its assets from the gateway
            started = log.read_text().splitlines()
            first = pmoc_polls(url)
            deadline = time.monotonic() + POLL_DEADLINE_SECONDS
            while pmoc_polls(url) < first + POLLS:  # polling the gateway's counter, bounded
                assert time.monotonic() < deadline, "the demo stopped polling its agencies"
                assert demo.poll() is None
                time.sleep(0.5)
            idle = log.read_text().splitlines()[len(started) :]
        finally:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=120)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
                raise
    assert idle == [], idle  # no access log, no httpx line per poll
    assert len([line for line in started if line.strip()]) <= 8, "\n".join(started)
    text = "\n".join(started)
    assert "initdb" not in text and "Traceback" not in text
    assert f"open http://127.0.0.1:{port}/graphql" in text


def test_without_pgserver_the_demo_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgserver is in the ``demo`` extra only: a production install that runs the demo is told
    which extra to install (or which variable names a server), not shown an ImportError."""
    monkeypatch.delenv(DEMO_DSN_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "pgserver.postgres_server", None)  # as if not installed
    with pytest.raises(DemoError) as raised:
        start_postgres(tmp_path)
    assert "complaint-graph[demo]" in str(raised.value)
    assert DEMO_DSN_VARIABLE in str(raised.value)


def test_an_unreachable_postgres_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dsn = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/demo"
    done = subprocess.run(
        demo_command("--port", "0", "--data-dir", str(tmp_path / "demo")),
        capture_output=True,
        text=True,
        env={**demo_env(), DEMO_DSN_VARIABLE: dsn},
        timeout=120,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert DEMO_DSN_VARIABLE in lines[-1] and "cannot load the demo data" in lines[-1], lines


def make_demo(*variables: str) -> str:
    """The commands ``make demo`` would run (``-n``), all of them (``-B``), for ``variables``."""
    root = Path(__file__).parents[2]
    done = subprocess.run(
        ["make", "-n", "-B", "demo", *variables],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_make_demo_passes_agency_port_and_verbose_and_installs_the_demo_extra() -> None:
    quiet = make_demo("PORT=9000", "AGENCY_PORT=9100")
    assert "complaint-graph demo --port 9000 --agency-port 9100" in quiet
    assert "pip install --quiet --require-hashes -r requirements.lock" in quiet  # pgserver in it
    assert "pip install --quiet --no-deps -e '.[demo,test]'" in quiet
    assert "--verbose" not in quiet
    assert "--agency-port" not in make_demo()  # default: 8101/8102, or free ports
    verbose = make_demo("VERBOSE=1")
    assert re.search(r"pip install +--require-hashes", verbose)  # pip's output shown
    assert "complaint-graph demo --port 8000" in verbose and "--verbose" in verbose
