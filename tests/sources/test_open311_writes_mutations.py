"""The mutations with an Open311 agency: referCase from the Damrongdhama Center (PostgreSQL)
to the city platform files a GeoReport v2 request whose service_request_id is recorded as the
receiver's reference; reportProgress, addNote and a referral out of the platform are refused
with the system that cannot take them named, since GeoReport v2 has no such requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.demo import demo_agency_key as agency_key
from gateway.demo import seed_demo_keys
from samples import traffy
from tests.conftest import RunningGateway, serving
from tests.gateway.test_writes import PROGRESS, REFER, call, case_id, refer_input
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC, TRAFFY = "MOI-DDC", "BMA-TRAFFY"

NOTE = """
mutation Note($input: AddNoteInput!) {
  addNote(input: $input) { errors { code message field } write { state } }
}"""


@pytest.fixture
def intake(write_world: WriteWorld) -> traffy.Intake:  # noqa: F811
    """What the write world's city platform was sent."""
    return write_world.city_intake


@pytest.fixture
async def gateway(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    """The write world: the city platform takes referrals by the demo's ``writes:``."""
    await asyncio.to_thread(run, seed_demo_keys(write_world.config))
    async with serving(write_world.config) as started:
        yield started


async def test_refer_to_the_city_platform_files_a_request_and_records_its_id(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    intake: traffy.Intake,
) -> None:
    body = await call(gateway, REFER, refer_input("7", TRAFFY, "to-city"), agency_key(DDC))
    result = body["data"]["referCase"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    (request_id,) = intake.created
    assert result["referral"]["receivingReference"] == request_id
    referred = result["referredCase"]
    assert referred["id"] == case_id("traffy-city", request_id)
    assert referred["status"] == "RECEIVED" and referred["sourceStatus"] == "start"
    assert result["referral"]["counterpart"]["id"] == referred["id"]

    again = await call(gateway, REFER, refer_input("7", TRAFFY, "to-city"), agency_key(DDC))
    assert again["data"]["referCase"]["referral"]["receivingReference"] == request_id
    assert intake.created == [request_id]  # the resend filed nothing
    connection = await asyncpg.connect(write_world.dsn)
    try:
        rows = await connection.fetch(
            "SELECT to_org, their_ref FROM complaint_referrals WHERE their_ref = $1", request_id
        )
    finally:
        await connection.close()
    assert [(r["to_org"], r["their_ref"]) for r in rows] == [("BMA-TF", request_id)]


async def test_progress_and_notes_on_a_city_case_say_its_system_cannot_take_them(
    gateway: RunningGateway, intake: traffy.Intake
) -> None:
    page = await gateway.query(
        '{ cases(first: 1, filter: { source: ["traffy-city"] }) { edges { node { id } } } }'
    )
    city_case = page["data"]["cases"]["edges"][0]["node"]["id"]
    progress = {"caseId": city_case, "status": "RESOLVED", "note": "done", "idempotencyKey": "p"}
    body = await call(gateway, PROGRESS, {"input": progress}, agency_key(TRAFFY))
    (error,) = body["data"]["reportProgress"]["errors"]
    assert error["code"] == "AGENCY_CANNOT_WRITE"
    assert error["message"] == "the system 'traffy-city' holding this case takes no status changes"

    note = {"caseId": city_case, "note": "โทรแจ้งแล้ว", "idempotencyKey": "n"}
    body = await call(gateway, NOTE, {"input": note}, agency_key(TRAFFY))
    (error,) = body["data"]["addNote"]["errors"]
    assert error["code"] == "AGENCY_CANNOT_WRITE"
    assert error["message"] == "the system 'traffy-city' holding this case takes no notes"

    refer = {
        "caseId": city_case,
        "toAgency": "OPM-1111",
        "kind": "FORWARD",
        "note": None,
        "idempotencyKey": "r",
    }
    body = await call(gateway, REFER, {"input": refer}, agency_key(TRAFFY))
    (error,) = body["data"]["referCase"]["errors"]
    assert error["code"] == "AGENCY_CANNOT_WRITE"
    assert error["message"] == (
        "the referral cannot be recorded in BMA-TRAFFY's system: "
        "its system 'traffy-city' records no referrals"
    )
    assert intake.posts == []  # nothing was sent to the platform
