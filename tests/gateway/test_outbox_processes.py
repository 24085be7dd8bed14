"""Two gateway replicas as two processes, one outbox in PostgreSQL: each entry is worked by
exactly one of them, and a batch of referrals completes exactly once.

test_outbox_replicas.py shows the claim with two Outbox objects in one process; here two
``complaint-graph serve`` subprocesses share the store, as two replicas behind a load balancer
do. The receiving agency (the city platform, Open311, on loopback) is down while the batch is
referred, half through each replica: every referral waits PENDING. When it comes back, it is
slow (each filing takes a while), and both replicas' outbox workers find the same due entries
at once. Each replica's requests carry its name (the source's ``headers``), so the platform
sees who sent what: every entry's create was answered once, by one replica, and both
replicas took part. The counts are the agencies' own: requests filed at the platform,
referral rows in the Damrongdhama Center's table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from strawberry.relay import to_base64

from gateway.demo import asyncpg_url, demo_agency_key, seed_demo_keys
from samples.serving import free_port
from tests.postgres import create_database, drop_database, run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
DDC_KEY = demo_agency_key("MOI-DDC")
BATCH = 12
STARTUP_SECONDS = 60.0
DONE_SECONDS = 90.0
REFER = """
mutation($input: ReferCaseInput!) {
  referCase(input: $input) { errors { code message } write { state lastError } }
}"""


def config_file(world: WriteWorld, store: str, replica: str) -> Path:
    """samples/config.yaml with the shared PostgreSQL outbox, and the city platform taking
    referrals (its demo ``writes:``) with this replica's name on every request."""
    text = (REPO / "samples" / "config.yaml").read_text(encoding="utf-8")
    anchor = "    base_url: ${DEMO_TRAFFY_URL}\n"
    assert text.count(anchor) == 1
    text = text.replace(anchor, anchor + f"    headers: {{X-Replica: {replica}}}\n")
    keys = f"sqlite+aiosqlite:///{world.data_dir / 'keys.sqlite'}"
    text += (
        f"\nauth: {{key_store: '{keys}'}}\n"
        "events: {enabled: false}\n"
        f"writes: {{store: '{store}', retry_base_seconds: 0.2, retry_max_seconds: 0.5, "
        "poll_seconds: 0.1}\n"
    )
    path = world.data_dir / f"replica-{replica}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds, failing with ``what`` at the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.05)


class Replica:
    """``complaint-graph serve`` in a subprocess of its own."""

    def __init__(self, config: Path, environment: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        command = [sys.executable, "-c", "from gateway.cli import main; raise SystemExit(main())"]
        self.process = subprocess.Popen(
            [*command, "serve", "--config", str(config), "--port", port],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def healthy(self) -> bool:
        assert self.process.poll() is None, "the gateway exited at start-up"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def graphql(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": document, "variables": variables},
            headers={"Authorization": f"Bearer {DDC_KEY}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@pytest.fixture
def store(postgres_admin_dsn: str) -> Iterator[str]:
    dsn = run(create_database(postgres_admin_dsn, prefix="cg_outbox"))
    yield dsn
    run(drop_database(postgres_admin_dsn, dsn))


@pytest.fixture
def replicas(
    write_world: WriteWorld,  # noqa: F811
    store: str,
) -> Iterator[tuple[Replica, Replica]]:
    run(seed_demo_keys(write_world.config))
    environment = {**os.environ, **write_world.environ(), "PYTHONPATH": str(REPO)}
    started: list[Replica] = []
    try:
        for name in ("A", "B"):
            config = config_file(write_world, asyncpg_url(store), name)
            started.append(Replica(config, environment))
        for replica in started:
            until(replica.healthy, STARTUP_SECONDS, "the gateway answers /healthz")
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop()


def rows(dsn: str, statement: str) -> list[asyncpg.Record]:
    async def read() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(statement))
        finally:
            await connection.close()

    found: list[asyncpg.Record] = run(read())
    return found


def test_a_batch_of_referrals_is_worked_once_across_two_replica_processes(
    replicas: tuple[Replica, Replica],
    write_world: WriteWorld,  # noqa: F811
    store: str,
) -> None:
    intake = write_world.city_intake
    intake.unavailable = True
    for number in range(1, BATCH + 1):
        replica = replicas[number % 2]
        variables = {
            "input": {
                "caseId": to_base64("Case", f"damrongdhama:{number}"),
                "toAgency": "BMA-TRAFFY",
                "kind": "FORWARD",
                "note": "ส่งต่อ",
                "idempotencyKey": f"batch-{number}",
            }
        }
        result = replica.graphql(REFER, variables)["data"]["referCase"]
        assert result["errors"] == [], result
        # PENDING: tried and refused with 503, or being tried by the other replica's worker
        assert result["write"]["state"] == "PENDING", result
    assert intake.created == [] and {status for _, status in intake.answered} == {503}

    intake.delay_seconds = 0.1  # back, and slow: each replica's round meets the other's
    intake.unavailable = False

    def referred() -> list[asyncpg.Record]:
        return rows(
            write_world.dsn,
            "SELECT complaint_id, their_ref FROM complaint_referrals WHERE their_ref LIKE 'TF-W%'",
        )

    def settled() -> bool:
        states = rows(store, "SELECT state FROM complaint_graph_outbox")
        return len(states) == BATCH and all(row["state"] == "DONE" for row in states)

    until(settled, DONE_SECONDS, "every referral DONE in the shared outbox")

    # Exactly once at the receiver: one request filed per referral, each create answered
    # once (a second replica sending it would have been answered again, from the key).
    assert len(intake.created) == len(set(intake.created)) == BATCH
    accepted = [(headers, status) for headers, status in intake.answered if status == 200]
    keys = Counter(headers["idempotency-key"] for headers, _ in accepted)
    assert len(keys) == BATCH and set(keys.values()) == {1}, keys
    by_replica = Counter(headers["x-replica"] for headers, _ in accepted)
    assert set(by_replica) == {"A", "B"}, by_replica  # both took part, neither twice

    # Exactly once at the sender: one referral row per case, naming the filed request.
    recorded = referred()
    assert sorted(row["complaint_id"] for row in recorded) == list(range(1, BATCH + 1))
    assert sorted(row["their_ref"] for row in recorded) == sorted(intake.created)
