"""Every mutation with an agency on MariaDB, through the gateway: referCase into it from the
Damrongdhama Center (PostgreSQL) and out of it to the Center, reportProgress and addNote on its
own case. Each outcome is counted in both agencies' own tables (tests/writes_world.py for the
PostgreSQL side, tests/sources/test_writes_mariadb.py for the MariaDB one)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from gateway.demo import demo_agency_key as agency_key
from gateway.demo import seed_demo_keys
from tests.conftest import RunningGateway, serving
from tests.gateway.test_writes import PROGRESS, REFER, call, case_id
from tests.postgres import run
from tests.sources.test_writes_mariadb import (  # noqa: F401
    fetch,
    mysql_admin_url,
    tambon_settings,
    tambon_url,
)
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC, TAMBON = "MOI-DDC", "TAMBON-BP"

NOTE = """
mutation Note($input: AddNoteInput!) {
  addNote(input: $input) {
    errors { code message }
    write { state }
    case { sourceStatus timeline { note } }
  }
}"""


@pytest.fixture
async def gateway(
    write_world: WriteWorld,  # noqa: F811
    tambon_url: str,  # noqa: F811
) -> AsyncIterator[RunningGateway]:
    """The write world and the tambon office on MariaDB, which the Center refers to as TBP."""
    sources = []
    for settings in write_world.config.sources:
        if settings.id == "damrongdhama":
            agencies = {**settings.vocabulary.agencies, "TBP": TAMBON}
            vocabulary = settings.vocabulary.model_copy(update={"agencies": agencies})
            settings = settings.model_copy(update={"vocabulary": vocabulary})
        sources.append(settings)
    sources.append(tambon_settings(tambon_url))
    config = replace(write_world.config, sources=tuple(sources))
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as started:
        yield started


def refer(source: str, local_id: str, to: str, key: str) -> dict[str, Any]:
    return {
        "input": {
            "caseId": case_id(source, local_id),
            "toAgency": to,
            "kind": "FORWARD",
            "note": "โปรดดำเนินการ",
            "idempotencyKey": key,
        }
    }


async def pg(world: WriteWorld, statement: str, *arguments: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(world.dsn)
    try:
        return list(await connection.fetch(statement, *arguments))
    finally:
        await connection.close()


async def test_refer_into_mariadb_creates_one_case_there_and_records_it_at_the_center(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    tambon_url: str,  # noqa: F811
) -> None:
    page = await gateway.query(
        '{ cases(first: 1, filter: { source: ["damrongdhama"], category: ["ROADS", "WATER"] })'
        " { edges { node { id title } } } }"
    )
    node = page["data"]["cases"]["edges"][0]["node"]
    local_id = node["id"]
    variables = {"input": {**refer("x", "0", TAMBON, "into-tambon")["input"], "caseId": local_id}}
    for _ in range(2):  # the resend changes nothing
        body = await call(gateway, REFER, variables, agency_key(DDC))
        result = body["data"]["referCase"]
        assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    made = await fetch(
        tambon_url,
        "SELECT complaint_id, complaint_no, subject FROM tb_complaint WHERE complaint_id > 1",
    )
    assert len(made) == 1
    new_id, number, subject = made[0]
    assert number.startswith("ตบ-") and number.endswith(f"-{new_id}") and subject == node["title"]
    assert result["referredCase"]["id"] == case_id("tambon", str(new_id))
    assert result["referredCase"]["sourceStatus"] == "รับเรื่อง"
    recorded = await pg(
        write_world,
        "SELECT to_org, their_ref FROM complaint_referrals WHERE their_ref = $1",
        str(new_id),
    )
    assert [(r["to_org"], r["their_ref"]) for r in recorded] == [("TBP", str(new_id))]


async def test_refer_out_of_mariadb_creates_the_case_at_the_center_and_records_it_there(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    tambon_url: str,  # noqa: F811
) -> None:
    body = await call(gateway, REFER, refer("tambon", "1", DDC, "to-ddc"), agency_key(TAMBON))
    result = body["data"]["referCase"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    made = await pg(
        write_world, "SELECT id, subject, type_code FROM complaints WHERE ref_no LIKE 'DDC-W%'"
    )
    center = next(s for s in write_world.config.sources if s.id == "damrongdhama")
    water = next(code for code, v in center.vocabulary.categories.items() if v == "WATER")
    assert [(r["subject"], r["type_code"]) for r in made] == [("ท่อระบายน้ำอุดตัน", water)]
    their = str(made[0]["id"])
    rows = await fetch(
        tambon_url, "SELECT complaint_id, to_org, refer_kind, their_no FROM tb_refer"
    )
    assert rows == [(1, "DDC", "ส่งต่อ", their)]
    assert result["referral"]["receivingReference"] == their


async def test_progress_is_written_in_the_offices_own_status_names(
    gateway: RunningGateway,
    tambon_url: str,  # noqa: F811
) -> None:
    progress = {
        "caseId": case_id("tambon", "1"),
        "status": "RESOLVED",
        "note": "ลอกท่อเรียบร้อย",
        "idempotencyKey": "done-1",
    }
    body = await call(gateway, PROGRESS, {"input": progress}, agency_key(TAMBON))
    result = body["data"]["reportProgress"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    assert result["case"]["status"] == "RESOLVED"
    assert result["case"]["sourceStatus"] == "ดำเนินการแล้วเสร็จ"
    assert await fetch(tambon_url, "SELECT status_id FROM tb_complaint WHERE complaint_id = 1") == [
        (3,)
    ]
    logs = await fetch(tambon_url, "SELECT status_id, remark FROM tb_complaint_log ORDER BY log_id")
    assert logs[-1] == (3, "ลอกท่อเรียบร้อย") and len(logs) == 2

    on_hold = {**progress, "status": "ON_HOLD", "idempotencyKey": "hold-1"}
    body = await call(gateway, PROGRESS, {"input": on_hold}, agency_key(TAMBON))
    (error,) = body["data"]["reportProgress"]["errors"]
    assert error["code"] == "STATUS_NOT_ALLOWED"


async def test_a_note_is_added_with_the_status_unchanged(
    gateway: RunningGateway,
    tambon_url: str,  # noqa: F811
) -> None:
    note = {"caseId": case_id("tambon", "1"), "note": "นัดลงพื้นที่พรุ่งนี้", "idempotencyKey": "n"}
    body = await call(gateway, NOTE, {"input": note}, agency_key(TAMBON))
    result = body["data"]["addNote"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    assert result["case"]["sourceStatus"] == "อยู่ระหว่างดำเนินการ"
    logs = await fetch(tambon_url, "SELECT status_id, remark FROM tb_complaint_log ORDER BY log_id")
    assert logs == [(1, "รับแจ้งทางโทรศัพท์"), (2, "นัดลงพื้นที่พรุ่งนี้")]
