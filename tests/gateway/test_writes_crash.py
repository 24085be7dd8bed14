"""Nothing lost, nothing twice: the gateway killed in the middle of a referral, restarted, and
the referral completes exactly once.

``complaint-graph serve`` runs as a subprocess over the test's own agencies. It is killed at
points the test observes, never guesses: (1) with SIGKILL while the 1111 service holds its
answer to the create request (the service has created the case; the gateway never hears its
code); (2) by the test-only fault ``writes.test_fault_after_send``, which ends the process
right after a step was answered and before the answer is recorded, after the create and after
the sender's record. The restarted gateway's outbox worker resends the step with the same
agency key, and each agency answers what it did the first time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from strawberry.relay import to_base64

from gateway.demo import demo_agency_key, seed_demo_keys
from samples.serving import free_port
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
DDC_KEY = demo_agency_key("MOI-DDC")
REFER = """
mutation($input: ReferCaseInput!) {
  referCase(input: $input) { errors { code } write { state receivingReference } }
}"""
VARIABLES = {
    "input": {
        "caseId": to_base64("Case", "damrongdhama:12"),
        "toAgency": "OPM-1111",
        "note": "ส่งต่อ",
        "idempotencyKey": "crash-1",
    }
}
STARTUP_SECONDS = 60.0


def config_file(world: WriteWorld, fault: str | None) -> Path:
    """samples/config.yaml with this world's stores: keys, audit and outbox in its directory
    (the demo's routing kept: filings are routed as in the demo)."""
    document = yaml.safe_load((REPO / "samples" / "config.yaml").read_text(encoding="utf-8"))
    document["auth"] = {"key_store": f"sqlite+aiosqlite:///{world.data_dir / 'keys.sqlite'}"}
    document["events"] = {"enabled": False}
    document["writes"] = {
        **document.get("writes", {}),
        "store": f"sqlite+aiosqlite:///{world.data_dir / 'outbox.sqlite'}",
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 0.5,
        "poll_seconds": 0.1,
        **({"test_fault_after_send": fault} if fault else {}),
    }
    path = world.data_dir / f"gateway-{fault or 'plain'}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


class GatewayProcess:
    def __init__(self, world: WriteWorld, fault: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, **world.environ(), "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-c", "from gateway.cli import main; raise SystemExit(main())"]
        arguments = ["serve", "--config", str(config_file(world, fault)), "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, *arguments],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the gateway exited at start-up"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)  # not yet listening: the port is polled, nothing assumed
        raise AssertionError("the gateway did not start")

    def graphql(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": document, "variables": variables or {}},
            headers={"Authorization": f"Bearer {DDC_KEY}"},
            timeout=60,
        )
        body: dict[str, Any] = response.json()
        return body

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def world(write_world: WriteWorld) -> Iterator[WriteWorld]:  # noqa: F811
    run(seed_demo_keys(write_world.config))
    yield write_world
    write_world.intake.release.set()  # a held create answer never outlives its test


def referrals(world: WriteWorld) -> list[str]:
    async def read() -> list[str]:
        connection = await asyncpg.connect(world.dsn)
        try:
            rows = await connection.fetch(
                "SELECT their_ref FROM complaint_referrals "
                "WHERE complaint_id = 12 AND their_ref LIKE 'PMOC-W%'"
            )
        finally:
            await connection.close()
        return [row["their_ref"] for row in rows]

    found: list[str] = run(read())
    return found


def completes_once(world: WriteWorld) -> None:
    """Restarted, the gateway finishes the referral by itself; the mutation sent again answers
    the same case; one case at the 1111 service, one referral row at the Damrongdhama Center."""
    restarted = GatewayProcess(world)
    try:
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and restarted.graphql("{ pendingWrites { state } }")["data"]["pendingWrites"]
        ):
            time.sleep(0.05)  # the worker retries every 0.2-0.5 s: polled until done
        assert restarted.graphql("{ pendingWrites { state } }")["data"]["pendingWrites"] == []
        again = restarted.graphql(REFER, VARIABLES)["data"]["referCase"]
        assert again["write"]["state"] == "DONE"
        assert world.intake.created == [again["write"]["receivingReference"]]
        assert referrals(world) == world.intake.created
    finally:
        restarted.stop()


def test_killed_while_the_receiver_holds_its_answer(world: WriteWorld) -> None:
    world.intake.hold = threading.Event()
    world.intake.hold.set()
    gateway = GatewayProcess(world)
    sender = threading.Thread(target=_send_ignoring_the_crash, args=(gateway,), daemon=True)
    sender.start()
    try:
        assert world.intake.arrived.wait(30), "the create request never reached the 1111 service"
        gateway.process.kill()  # SIGKILL: no shutdown, nothing flushed
        gateway.process.wait(timeout=30)
    finally:
        world.intake.hold.clear()
        world.intake.release.set()
        sender.join(timeout=30)
    assert len(world.intake.created) == 1  # the service made the case; nobody heard its code
    assert referrals(world) == []
    completes_once(world)


@pytest.mark.parametrize("fault", ["create", "record"])
def test_killed_after_a_step_was_sent_before_it_was_recorded(world: WriteWorld, fault: str) -> None:
    gateway = GatewayProcess(world, fault)
    _send_ignoring_the_crash(gateway)
    assert gateway.process.wait(timeout=30) == 70  # the fault's exit: it died where it should
    assert len(world.intake.created) == 1
    assert referrals(world) == ([] if fault == "create" else world.intake.created)
    completes_once(world)


def _send_ignoring_the_crash(gateway: GatewayProcess) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the gateway died under it: the point
        gateway.graphql(REFER, VARIABLES)


FILE = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { errors { code } caseId write { state receivingReference } }
}"""


def test_a_filing_killed_after_its_create_completes_once(world: WriteWorld) -> None:
    """fileComplaint, the gateway dead after the 1111 service created the case and before
    the outbox recorded it: restarted, the same case is the filing's, no second one."""
    variables = {
        "input": {
            "title": "น้ำประปาไม่ไหล",
            "category": "WATER",
            "provinceCode": "10",  # the demo's default route: the 1111 service
            "idempotencyKey": "crash-file",
        }
    }
    gateway = GatewayProcess(world, "create")
    with contextlib.suppress(httpx.HTTPError):  # the gateway died under it: the point
        gateway.graphql(FILE, variables)
    assert gateway.process.wait(timeout=30) == 70
    assert len(world.intake.created) == 1
    restarted = GatewayProcess(world)
    try:
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and restarted.graphql("{ pendingWrites { state } }")["data"]["pendingWrites"]
        ):
            time.sleep(0.05)  # the worker retries every 0.2-0.5 s: polled until done
        again = restarted.graphql(FILE, variables)["data"]["fileComplaint"]
        assert again["write"]["state"] == "DONE"
        assert world.intake.created == [again["write"]["receivingReference"]]
        assert again["caseId"] == to_base64("Case", f"pmoc-1111:{world.intake.created[0]}")
    finally:
        restarted.stop()
