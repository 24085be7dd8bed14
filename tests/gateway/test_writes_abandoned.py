"""Writes the outbox gives up on, and why, as the graph shows them: a receiver that keeps
failing until ``max_attempts`` is spent, and an agency's database that refuses a step (it
would refuse it again: abandoned at once). Against each test's own agencies
(tests/writes_world.py): the 1111 sample API on loopback, the Damrongdhama Center's
PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from gateway.demo import DEMO_AUDITOR_KEY, DEMO_INSPECTOR_KEY, seed_demo_keys
from gateway.demo import demo_agency_key as agency_key
from samples.serving import ThreadedServer
from sources import CanonicalStatus
from tests.conftest import RunningGateway, serving
from tests.gateway.test_writes import PROGRESS, REFER, call, case_id, refer_input, referral_rows
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC, OPM = "MOI-DDC", "OPM-1111"

PENDING = "{ pendingWrites { action state step attempts lastError receivingReference } }"
SYSTEMS = "{ sources { id pendingWrites } }"
REFERRALS = (
    "query($id: ID!) { case(id: $id) { referrals { status receivingReference toAgency { code } "
    "write { state step attempts lastError } } } }"
)
AUDIT = (
    "query($action: AuditAction) { auditLog(first: 50, filter: {action: $action}) "
    "{ entries { source caseId fields reason } } }"
)


async def outbox_gateway(world: WriteWorld, **writes: Any) -> AsyncIterator[RunningGateway]:
    """The world's gateway with its outbox settings changed as the test needs."""
    config = replace(world.config, writes=world.config.writes.model_copy(update=writes))
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as started:
        yield started


@pytest.fixture
async def three_attempts(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    """Retried by the worker every 0.2-0.5 s, given up after the third attempt."""
    async for started in outbox_gateway(write_world, max_attempts=3):
        yield started


@pytest.fixture
async def two_attempts_no_worker_retry(
    write_world: WriteWorld,  # noqa: F811
) -> AsyncIterator[RunningGateway]:
    """Given up after the second attempt; the worker's first retry is an hour away, so each
    attempt is the test's own resend of the mutation (nothing races the assertions)."""
    async for started in outbox_gateway(
        write_world, max_attempts=2, retry_base_seconds=3600, retry_max_seconds=3600
    ):
        yield started


async def pending_writes(gateway: RunningGateway) -> list[dict[str, Any]]:
    body = await call(gateway, PENDING, {}, DEMO_INSPECTOR_KEY)
    assert "errors" not in body, body
    writes: list[dict[str, Any]] = body["data"]["pendingWrites"]
    return writes


async def pending_counts(gateway: RunningGateway) -> dict[str, int]:
    body = await call(gateway, SYSTEMS, {}, agency_key(DDC))
    return {s["id"]: s["pendingWrites"] for s in body["data"]["sources"]}


async def audit_reasons(gateway: RunningGateway, action: str) -> list[str]:
    body = await call(gateway, AUDIT, {"action": action}, DEMO_AUDITOR_KEY)
    assert "errors" not in body, body
    return [e["reason"] for e in body["data"]["auditLog"]["entries"]]


async def test_a_receiver_that_keeps_failing_is_abandoned_after_max_attempts(
    three_attempts: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    gateway = three_attempts
    write_world.pmoc.stop()
    body = await call(gateway, REFER, refer_input("7", OPM, "down"), agency_key(DDC))
    first = body["data"]["referCase"]["write"]
    assert (first["state"], first["step"], first["attempts"]) == ("PENDING", "create", 1)
    assert "pmoc-1111" in first["lastError"]

    for _ in range(400):  # the worker's retries at 0.2 s and 0.4 s: observed, not slept on
        writes = await pending_writes(gateway)
        if writes[0]["state"] != "PENDING":
            break
        await asyncio.sleep(0.02)
    (write,) = writes
    assert (write["action"], write["state"], write["step"]) == ("refer", "ABANDONED", "create")
    assert write["attempts"] == 3 and write["receivingReference"] is None
    assert write["lastError"].startswith("abandoned after 3 attempts: ")
    assert "pmoc-1111" in write["lastError"]  # the receiver's failure, named
    # No longer pending anywhere (the systems' counts); the case shows the failed hand-over.
    assert await pending_counts(gateway) == {
        "damrongdhama": 0,
        "khonkaen-office": 0,
        "pmoc-1111": 0,
        "traffy-city": 0,
    }
    case = await call(gateway, REFERRALS, {"id": case_id("damrongdhama", "7")}, agency_key(DDC))
    (failed,) = [r for r in case["data"]["case"]["referrals"] if r["write"] is not None]
    assert (failed["status"], failed["toAgency"]["code"]) == ("ABANDONED", OPM)
    assert failed["write"]["lastError"] == write["lastError"]
    reasons = await audit_reasons(gateway, "REFER")
    assert [r.split(":")[0] for r in reasons] == ["submitted", "abandoned"]
    assert reasons[-1].startswith("abandoned: ABANDONED (abandoned after 3 attempts: ")

    # Given up means given up: with the receiver back, a resend of the same key is answered
    # ABANDONED and creates nothing.
    back = ThreadedServer(write_world.pmoc.app, port=write_world.pmoc.port)
    back.start()
    try:
        again = await call(gateway, REFER, refer_input("7", OPM, "down"), agency_key(DDC))
        assert again["data"]["referCase"]["write"]["state"] == "ABANDONED"
        assert again["data"]["referCase"]["write"]["attempts"] == 3
    finally:
        back.stop()
    assert write_world.intake.created == []
    assert await referral_rows(write_world, 7) == []


async def test_the_pending_referral_shows_its_write_until_it_is_abandoned(
    two_attempts_no_worker_retry: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    gateway = two_attempts_no_worker_retry
    write_world.pmoc.stop()
    variables = refer_input("12", OPM, "twice")
    body = await call(gateway, REFER, variables, agency_key(DDC))
    assert body["data"]["referCase"]["write"]["state"] == "PENDING"
    case = await call(gateway, REFERRALS, {"id": case_id("damrongdhama", "12")}, agency_key(DDC))
    shown = [r for r in case["data"]["case"]["referrals"] if r["write"] is not None]
    assert len(shown) == 1
    assert shown[0]["status"] == "PENDING" and shown[0]["toAgency"]["code"] == OPM
    assert shown[0]["write"]["state"] == "PENDING" and shown[0]["write"]["attempts"] == 1
    assert "pmoc-1111" in shown[0]["write"]["lastError"]
    assert await pending_counts(gateway) == {
        "damrongdhama": 1,
        "khonkaen-office": 0,
        "pmoc-1111": 1,
        "traffy-city": 0,
    }

    again = await call(gateway, REFER, variables, agency_key(DDC))  # the second, last attempt
    write = again["data"]["referCase"]["write"]
    assert (write["state"], write["attempts"]) == ("ABANDONED", 2)
    assert write["lastError"].startswith("abandoned after 2 attempts: ")
    assert again["data"]["referCase"]["referral"] is None
    case = await call(gateway, REFERRALS, {"id": case_id("damrongdhama", "12")}, agency_key(DDC))
    (failed,) = [r for r in case["data"]["case"]["referrals"] if r["write"] is not None]
    assert (failed["status"], failed["write"]["state"]) == ("ABANDONED", "ABANDONED")
    assert [w["state"] for w in await pending_writes(gateway)] == ["ABANDONED"]
    assert set((await pending_counts(gateway)).values()) == {0}


async def add_constraint(world: WriteWorld, statement: str) -> None:
    """The agency's own database gains a rule the gateway does not know of."""
    connection = await asyncpg.connect(world.dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_a_referral_the_senders_database_refuses_is_abandoned_at_once(
    three_attempts: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The receiver created its case; the centre's database refuses to record the hand-over
    (a CHECK constraint): no retry would change that, so the write is abandoned on the first
    refusal, with the receiver's reference kept for whoever sorts it out."""
    gateway = three_attempts
    await add_constraint(
        write_world,
        "ALTER TABLE complaint_referrals ADD CONSTRAINT their_ref_not_1111 "
        "CHECK (their_ref NOT LIKE 'PMOC-W%')",  # none of the rows it holds is one
    )
    body = await call(gateway, REFER, refer_input("14", OPM, "refused"), agency_key(DDC))
    result = body["data"]["referCase"]
    assert result["errors"] == []  # not a refusal of the request: a write that failed
    write = result["write"]
    created = write_world.intake.created
    assert len(created) == 1  # the receiver's step was done
    assert (write["state"], write["step"]) == ("ABANDONED", "record")
    assert write["attempts"] == 2  # create, then one record: no retry of a refusal
    assert write["receivingReference"] == created[0]
    assert write["lastError"].startswith("source 'damrongdhama': the database refused the "
                                         "referral (CheckViolationError): ")  # fmt: skip
    assert "their_ref_not_1111" in write["lastError"]  # the database's own reason
    # ... and not the statement or its parameters, which name the agency's columns and carry
    # the values written (a complainant's name, in a create).
    assert "INSERT" not in write["lastError"] and created[0] not in write["lastError"]
    assert result["referral"] is None and result["referredCase"] is None

    (listed,) = await pending_writes(gateway)
    assert (listed["state"], listed["lastError"]) == ("ABANDONED", write["lastError"])
    assert set((await pending_counts(gateway)).values()) == {0}
    assert await referral_rows(write_world, 14) == []
    reasons = await audit_reasons(gateway, "REFER")
    assert [r.split(":")[0] for r in reasons] == ["submitted", "abandoned"]
    assert f"receiver's reference {created[0]}" in reasons[-1]
    assert "their_ref_not_1111" in reasons[-1]


async def test_progress_the_owners_database_refuses_is_abandoned_with_its_reason(
    three_attempts: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The centre's database will not take this note on a status change (a CHECK on the
    length of its timeline's remark): the report is abandoned, the case unchanged."""
    gateway = three_attempts
    connection = await asyncpg.connect(write_world.dsn)
    try:  # the longest remark it holds is as long as its remarks may be
        longest = await connection.fetchval("SELECT max(length(remark)) FROM complaint_status_log")
    finally:
        await connection.close()
    await add_constraint(
        write_world,
        "ALTER TABLE complaint_status_log ADD CONSTRAINT remark_short "
        f"CHECK (remark IS NULL OR length(remark) <= {int(longest)})",
    )
    found = await call(
        gateway,
        '{ cases(first: 1, filter: {source: ["damrongdhama"], status: [RECEIVED, ACCEPTED]}) '
        "{ edges { node { id status } } } }",
        {},
        agency_key(DDC),
    )
    node = found["data"]["cases"]["edges"][0]["node"]
    variables = {
        "input": {
            "caseId": node["id"],
            "status": "IN_PROGRESS",
            "note": "ยาว" * int(longest),
            "idempotencyKey": "long",
        }
    }
    body = await call(gateway, PROGRESS, variables, agency_key(DDC))
    result = body["data"]["reportProgress"]
    assert result["errors"] == []
    assert result["write"]["state"] == "ABANDONED"
    last_error = result["write"]["lastError"]
    assert "refused the change (CheckViolationError)" in last_error
    assert "remark_short" in last_error and "ยาวยาว" not in last_error  # no parameters
    assert result["case"]["status"] == node["status"]  # the transaction rolled back whole
    (listed,) = await pending_writes(gateway)
    assert (listed["action"], listed["state"], listed["attempts"]) == ("progress", "ABANDONED", 1)
    reasons = await audit_reasons(gateway, "PROGRESS")
    assert [r.split(":")[0] for r in reasons] == ["submitted", "abandoned"]


@pytest.fixture
async def stale_1111_vocabulary(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    """The gateway's vocabulary for the 1111 service writes ON_HOLD as status id 12, which the
    service does not know (an id its operators retired, say): the service refuses it."""
    sources = []
    for source in write_world.config.sources:
        if source.id == "pmoc-1111":
            statuses = {
                "12": CanonicalStatus.ON_HOLD,
                **source.vocabulary.statuses,
            }  # preferred: first
            vocabulary = source.vocabulary.model_copy(update={"statuses": statuses})
            source = source.model_copy(update={"vocabulary": vocabulary})
        sources.append(source)
    config = replace(write_world.config, sources=tuple(sources))
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as started:
        yield started


async def test_a_status_the_receiving_service_refuses_is_abandoned_with_its_answer(
    stale_1111_vocabulary: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    gateway = stale_1111_vocabulary
    found = await call(
        gateway,
        '{ cases(first: 1, filter: {source: ["pmoc-1111"], status: [RECEIVED]}) '
        "{ edges { node { id sourceStatus } } } }",
        {},
        agency_key(OPM),
    )
    node = found["data"]["cases"]["edges"][0]["node"]
    variables = {"input": {"caseId": node["id"], "status": "ON_HOLD", "idempotencyKey": "hold"}}
    body = await call(gateway, PROGRESS, variables, agency_key(OPM))
    result = body["data"]["reportProgress"]
    assert result["errors"] == []  # the gateway's vocabulary has a spelling: sent
    assert result["write"]["state"] == "ABANDONED"  # at once: a 400 is not retried
    last_error = result["write"]["lastError"]
    assert last_error.startswith("source 'pmoc-1111': HTTP 400 from the API refused the write")
    assert "no such complaint or status" in last_error  # the service's own words
    assert result["case"]["sourceStatus"] == node["sourceStatus"] == "1"  # unchanged there
    (listed,) = await pending_writes(gateway)
    assert (listed["action"], listed["state"], listed["attempts"]) == ("progress", "ABANDONED", 1)
    assert listed["lastError"] == last_error
    assert set((await pending_counts(gateway)).values()) == {0}
    reasons = await audit_reasons(gateway, "PROGRESS")
    assert [r.split(":")[0] for r in reasons] == ["submitted", "abandoned"]
    assert "HTTP 400" in reasons[-1]


async def test_a_new_write_the_worker_attempted_first_is_not_attempted_again_at_once(
    two_attempts_no_worker_retry: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The worker may find a just-recorded write due and attempt it while the request that
    recorded it waits for the row: that request then answers with the worker's attempt
    (one, not two, of the two allowed). A resend of the request still attempts again."""
    gateway = two_attempts_no_worker_retry
    write_world.pmoc.stop()
    with_id = REFER.replace("write { state", "write { id state")
    body = await call(gateway, with_id, refer_input("13", OPM, "raced"), agency_key(DDC))
    write = body["data"]["referCase"]["write"]
    assert (write["state"], write["attempts"]) == ("PENDING", 1)
    outbox = gateway.gateway.outbox
    # The request's own first attempt, as it goes once the worker has let go of the row.
    entry = await outbox.advance(write["id"], fresh=True)
    assert (entry.state, entry.attempts) == ("PENDING", 1)
    resent = await outbox.advance(write["id"])  # a resend: its own attempt, the last one
    assert (resent.state, resent.attempts) == ("ABANDONED", 2)
