"""reportProgress and addNote leave the audit trail referCase and fileComplaint leave (who,
what, which systems, outcome), and analysts and anonymous callers write neither: refused,
with nothing in the agency's system, its outbox or its audit log. Against the Damrongdhama
Center's own PostgreSQL database (tests/writes_world.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any

import asyncpg
import pytest
from strawberry.relay import from_base64

from gateway.auth import KeyStore
from gateway.demo import DEMO_ANALYST_KEY, DEMO_AUDITOR_KEY
from gateway.demo import demo_agency_key as agency_key
from tests.conftest import RunningGateway
from tests.gateway.test_writes import NOTE, PROGRESS, call, case_id, gateway  # noqa: F401
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC = "MOI-DDC"

AUDIT = (
    "query($action: AuditAction) { auditLog(first: 50, filter: {action: $action}) "
    "{ entries { action subject method agency source caseId fields reason } } }"
)


async def key_subject(world: WriteWorld, key: str) -> str:
    """The subject the key store gives this key: what the audit log must name."""
    store = KeyStore(world.config.auth.key_store)
    try:
        found = await store.authenticate(key)
    finally:
        await store.close()
    assert found is not None
    return found.principal().subject


async def audit_entries(gateway: RunningGateway, action: str) -> list[dict[str, Any]]:  # noqa: F811
    body = await call(gateway, AUDIT, {"action": action}, DEMO_AUDITOR_KEY)
    assert "errors" not in body, body
    entries: list[dict[str, Any]] = body["data"]["auditLog"]["entries"]
    return entries


async def status_log(world: WriteWorld, local_id: int) -> list[tuple[str, str | None]]:
    """The case's timeline as the centre's own table holds it, and its current status."""
    connection = await asyncpg.connect(world.dsn)
    try:
        rows = await connection.fetch(
            "SELECT status_code, remark FROM complaint_status_log WHERE complaint_id = $1 "
            "ORDER BY changed_at, id",
            local_id,
        )
        status = await connection.fetchval(
            "SELECT status_code FROM complaints WHERE id = $1", local_id
        )
    finally:
        await connection.close()
    return [(r["status_code"], r["remark"]) for r in rows] + [("current", status)]


def outbox_rows(world: WriteWorld) -> int:
    path = world.data_dir / "outbox.sqlite"
    if not path.exists():
        return 0  # never opened: nothing was recorded
    with contextlib.closing(sqlite3.connect(path)) as outbox:
        tables = outbox.execute(
            "SELECT name FROM sqlite_master WHERE name = 'complaint_graph_outbox'"
        ).fetchall()
        if not tables:
            return 0
        (count,) = outbox.execute("SELECT count(*) FROM complaint_graph_outbox").fetchone()
    return int(count)


async def open_ddc_case(gateway: RunningGateway) -> tuple[str, int]:  # noqa: F811
    found = await call(
        gateway,
        '{ cases(first: 1, filter: {source: ["damrongdhama"], status: [RECEIVED, ACCEPTED]}) '
        "{ edges { node { id } } } }",
        {},
        agency_key(DDC),
    )
    assert "errors" not in found, found
    node = found["data"]["cases"]["edges"][0]["node"]["id"]
    _, global_id = from_base64(node)
    return node, int(global_id.split(":")[1])


async def test_report_progress_is_audited_with_who_what_systems_and_outcome(
    gateway: RunningGateway,  # noqa: F811
    write_world: WriteWorld,  # noqa: F811
) -> None:
    node, local_id = await open_ddc_case(gateway)
    variables = {
        "input": {"caseId": node, "status": "IN_PROGRESS", "note": "ลงพื้นที่", "idempotencyKey": "p"}
    }
    body = await call(gateway, PROGRESS, variables, agency_key(DDC))
    assert body["data"]["reportProgress"]["write"]["state"] == "DONE", body

    entries = await audit_entries(gateway, "PROGRESS")
    assert [e["reason"].split(":")[0] for e in entries] == ["submitted", "done"]
    subject = await asyncio.to_thread(run, key_subject(write_world, agency_key(DDC)))
    for entry in entries:
        assert entry["action"] == "PROGRESS"
        assert (entry["subject"], entry["method"], entry["agency"]) == (subject, "api_key", DDC)
        assert (entry["source"], entry["caseId"]) == ("damrongdhama", str(local_id))
        assert "systems=damrongdhama" in entry["fields"]
        assert "personal_data=none" in entry["fields"]
        assert {"caseId", "note", "status"} <= set(entry["fields"])  # what was asked
    assert entries[0]["reason"] == "submitted: PENDING"
    assert entries[-1]["reason"] == "done: DONE"
    assert await audit_entries(gateway, "NOTE") == []  # each action under its own name


async def test_add_note_is_audited_with_who_what_systems_and_outcome(
    gateway: RunningGateway,  # noqa: F811
    write_world: WriteWorld,  # noqa: F811
) -> None:
    node, local_id = await open_ddc_case(gateway)
    variables = {"input": {"caseId": node, "note": "นัดผู้ร้องเรียน", "idempotencyKey": "n"}}
    body = await call(gateway, NOTE, variables, agency_key(DDC))
    assert body["data"]["addNote"]["write"]["state"] == "DONE", body
    again = await call(gateway, NOTE, variables, agency_key(DDC))  # a resend: no new entry
    assert again["data"]["addNote"]["write"]["state"] == "DONE"

    entries = await audit_entries(gateway, "NOTE")
    assert [e["reason"].split(":")[0] for e in entries] == ["submitted", "done"]
    subject = await asyncio.to_thread(run, key_subject(write_world, agency_key(DDC)))
    for entry in entries:
        assert (entry["subject"], entry["agency"]) == (subject, DDC)
        assert (entry["source"], entry["caseId"]) == ("damrongdhama", str(local_id))
        assert "systems=damrongdhama" in entry["fields"]
        assert {"caseId", "note"} <= set(entry["fields"]) and "status" not in entry["fields"]
    assert entries[-1]["reason"] == "done: DONE"
    assert await audit_entries(gateway, "PROGRESS") == []
    log = await status_log(write_world, local_id)
    assert [remark for _, remark in log].count("นัดผู้ร้องเรียน") == 1  # in its table, once


def progress(node: str) -> tuple[str, dict[str, Any]]:
    return PROGRESS, {"input": {"caseId": node, "status": "IN_PROGRESS", "idempotencyKey": "x"}}


def note(node: str) -> tuple[str, dict[str, Any]]:
    return NOTE, {"input": {"caseId": node, "note": "ไม่ควรถูกบันทึก", "idempotencyKey": "x"}}


@pytest.mark.parametrize(
    ("key", "expected"), [(None, "UNAUTHENTICATED"), (DEMO_ANALYST_KEY, "FORBIDDEN")]
)
@pytest.mark.parametrize("mutation", [progress, note], ids=["reportProgress", "addNote"])
async def test_analysts_and_anonymous_callers_report_and_note_nothing(
    gateway: RunningGateway,  # noqa: F811
    write_world: WriteWorld,  # noqa: F811
    key: str | None,
    expected: str,
    mutation: Any,
) -> None:
    """Anonymous callers are inspectors for reading in this world (tests/writes_world.py),
    and still write nothing: writes need credentials."""
    node, local_id = await open_ddc_case(gateway)
    before = await status_log(write_world, local_id)
    document, variables = mutation(node)
    body = await call(gateway, document, variables, key)
    assert [e["extensions"]["code"] for e in body["errors"]] == [expected], body
    assert body["data"] is None
    assert await status_log(write_world, local_id) == before
    assert outbox_rows(write_world) == 0
    assert await audit_entries(gateway, "PROGRESS") == []
    assert await audit_entries(gateway, "NOTE") == []
