"""referCase and reportProgress through the gateway, against the real agencies: the
Damrongdhama Center on PostgreSQL, the Khon Kaen office on SQLite, the 1111 sample API and the
city platform (Open311) on loopback. Each test has agencies of its own (tests/writes_world.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from strawberry.relay import to_base64

from gateway.demo import DEMO_ANALYST_KEY, DEMO_AUDITOR_KEY, DEMO_INSPECTOR_KEY, seed_demo_keys
from gateway.demo import demo_agency_key as agency_key
from gateway.examples import REFER_A_CASE, REPORT_PROGRESS
from gateway.ratelimit import RateLimitSettings
from samples import traffy
from samples.serving import ThreadedServer
from tests.conftest import RunningGateway, serving
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC, KKN, OPM, CITY = "MOI-DDC", "KKN-PO", "OPM-1111", "BMA-TRAFFY"

REFER = """
mutation Refer($input: ReferCaseInput!) {
  referCase(input: $input) {
    errors { code message field }
    write { state step attempts lastError receivingReference }
    case { id referenceNumber }
    referredCase { id referenceNumber title category { code } status channel sourceStatus
                   location { province { code } } }
    referral { kind receivingReference toAgency { code } counterpart { id } }
  }
}"""

PROGRESS = """
mutation Progress($input: ReportProgressInput!) {
  reportProgress(input: $input) {
    errors { code message field }
    write { state lastError }
    case { status sourceStatus timeline { status note } }
  }
}"""

PENDING = "{ pendingWrites { state step lastError attempts receivingReference } }"


def case_id(source: str, local_id: str) -> str:
    return to_base64("Case", f"{source}:{local_id}")


async def call(
    gateway: RunningGateway, document: str, variables: dict[str, Any], key: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    response = await gateway.client.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refer_input(local_id: str, to: str, key: str, kind: str = "FORWARD") -> dict[str, Any]:
    return {
        "input": {
            "caseId": case_id("damrongdhama", local_id),
            "toAgency": to,
            "kind": kind,
            "note": "โปรดดำเนินการ",
            "idempotencyKey": key,
        }
    }


@pytest.fixture
async def gateway(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    # In a loop of its own, as the session's access world does (tests/conftest.py).
    await asyncio.to_thread(run, seed_demo_keys(write_world.config))
    async with serving(write_world.config) as started:
        yield started


async def referral_rows(
    world: WriteWorld, local_id: int, their_ref: str = "PMOC-W%"
) -> list[asyncpg.Record]:
    """The referrals of the centre's case ``local_id`` whose receiver's reference is LIKE
    ``their_ref`` (by default: cases the 1111 service created for a referral)."""
    connection = await asyncpg.connect(world.dsn)
    try:
        return await connection.fetch(
            "SELECT to_org, kind_code, their_ref FROM complaint_referrals "
            "WHERE complaint_id = $1 AND their_ref LIKE $2",
            local_id,
            their_ref,
        )
    finally:
        await connection.close()


async def test_refer_creates_the_case_at_the_receiver_and_records_the_referral(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    body = await call(gateway, REFER, refer_input("5", OPM, "r-5", "ESCALATE"), agency_key(DDC))
    assert "errors" not in body, body
    result = body["data"]["referCase"]
    assert result["errors"] == []
    assert result["write"]["state"] == "DONE"
    created = write_world.intake.created
    assert len(created) == 1
    referred = result["referredCase"]
    assert referred["id"] == case_id("pmoc-1111", created[0])
    assert referred["channel"] == "REFERRAL" and referred["status"] == "RECEIVED"
    assert referred["sourceStatus"] == "1"  # the 1111 service's own status id
    referral = result["referral"]
    assert referral["receivingReference"] == created[0]
    assert referral["kind"] == "ESCALATE" and referral["toAgency"]["code"] == OPM
    assert referral["counterpart"]["id"] == referred["id"]  # resolves at once

    # What the graph read is what the systems hold: the sender's table, the receiver's API.
    original = (await gateway.query(f'{{ case(id: "{case_id("damrongdhama", "5")}") {{ title '
                                    "category { code } } }"))["data"]["case"]  # fmt: skip
    assert referred["title"] == original["title"]
    assert referred["category"] == original["category"]
    rows = await referral_rows(write_world, 5)
    assert [(r["to_org"], r["kind_code"], r["their_ref"]) for r in rows] == [
        ("OPM1111", "ESC", created[0])
    ]


async def test_the_same_key_twice_and_concurrently_makes_one_case(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    variables = refer_input("6", OPM, "same-key")
    bodies = await asyncio.gather(
        *(call(gateway, REFER, variables, agency_key(DDC)) for _ in range(4))
    )
    again = await call(gateway, REFER, variables, agency_key(DDC))
    references = {b["data"]["referCase"]["write"]["receivingReference"] for b in [*bodies, again]}
    assert len(references) == 1 and None not in references
    assert len(write_world.intake.created) == 1
    assert len(await referral_rows(write_world, 6)) == 1

    other = await call(gateway, REFER, refer_input("6", KKN, "same-key"), agency_key(DDC))
    assert other["data"]["referCase"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    changed = refer_input("6", OPM, "same-key", kind="RETURN")
    reused = await call(gateway, REFER, changed, agency_key(DDC))
    assert reused["data"]["referCase"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_a_receiver_that_is_down_leaves_the_referral_pending_until_it_returns(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    write_world.pmoc.stop()
    body = await call(gateway, REFER, refer_input("7", OPM, "while-down"), agency_key(DDC))
    result = body["data"]["referCase"]
    assert result["write"]["state"] == "PENDING" and result["write"]["step"] == "create"
    assert "pmoc-1111" in result["write"]["lastError"]
    assert result["referredCase"] is None and result["referral"] is None
    pending = (await call(gateway, PENDING, {}, agency_key(DDC)))["data"]["pendingWrites"]
    assert [p["state"] for p in pending] == ["PENDING"]
    assert await referral_rows(write_world, 7) == []
    systems = "{ sources { id acceptsWrites pendingWrites } }"
    listed = (await call(gateway, systems, {}, agency_key(DDC)))["data"]["sources"]
    by_id = {s["id"]: (s["acceptsWrites"], s["pendingWrites"]) for s in listed}
    assert by_id == {
        "damrongdhama": (True, 1),
        "khonkaen-office": (True, 0),
        "pmoc-1111": (True, 1),
        "traffy-city": (True, 0),
    }

    back = ThreadedServer(write_world.pmoc.app, port=write_world.pmoc.port)
    back.start()
    try:
        for _ in range(200):  # the outbox retries every 0.2-0.5 s: observed, not slept on
            pending = (await call(gateway, PENDING, {}, agency_key(DDC)))["data"]["pendingWrites"]
            if not pending:
                break
            await asyncio.sleep(0.05)
        assert pending == []
        listed = (await call(gateway, systems, {}, agency_key(DDC)))["data"]["sources"]
        assert [s["pendingWrites"] for s in listed] == [0, 0, 0, 0]
        assert len(write_world.intake.created) == 1
        rows = await referral_rows(write_world, 7)
        assert [r["their_ref"] for r in rows] == write_world.intake.created
    finally:
        back.stop()


async def test_progress_written_in_the_owner_vocabulary_and_finished_cases_stay_finished(
    gateway: RunningGateway,
) -> None:
    found = await call(
        gateway,
        '{ cases(first: 1, filter: {source: ["khonkaen-office"], status: [IN_PROGRESS]}) '
        "{ edges { node { id } } } }",
        {},
        agency_key(KKN),
    )
    assert "errors" not in found, found
    kkn_case = found["data"]["cases"]["edges"][0]["node"]["id"]
    variables = {
        "input": {
            "caseId": kkn_case,
            "status": "RESOLVED",
            "note": "ซ่อมถนนเรียบร้อย",
            "idempotencyKey": "p-1",
        }
    }
    body = await call(gateway, PROGRESS, variables, agency_key(KKN))
    assert "errors" not in body, body
    result = body["data"]["reportProgress"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE"
    assert result["case"]["status"] == "RESOLVED"
    assert result["case"]["sourceStatus"] == "เสร็จสิ้น"
    assert result["case"]["timeline"][-1] == {"status": "RESOLVED", "note": "ซ่อมถนนเรียบร้อย"}

    variables["input"] |= {"status": "IN_PROGRESS", "idempotencyKey": "p-2"}
    refused = (await call(gateway, PROGRESS, variables, agency_key(KKN)))["data"]
    error = refused["reportProgress"]["errors"][0]
    assert error["code"] == "STATUS_NOT_ALLOWED"
    assert "not allowed from RESOLVED" in error["message"]


async def test_progress_on_the_1111_service_through_its_api(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    found = await call(
        gateway,
        '{ cases(first: 1, filter: {source: ["pmoc-1111"], status: [RECEIVED]}) '
        "{ edges { node { id } } } }",
        {},
        agency_key(OPM),
    )
    node = found["data"]["cases"]["edges"][0]["node"]["id"]
    variables = {
        "input": {"caseId": node, "status": "ACCEPTED", "note": "รับเรื่องแล้ว", "idempotencyKey": "a"}
    }
    result = (await call(gateway, PROGRESS, variables, agency_key(OPM)))["data"]["reportProgress"]
    assert result["errors"] == []
    assert result["case"]["status"] == "ACCEPTED" and result["case"]["sourceStatus"] == "2"
    assert result["case"]["timeline"][-1]["note"] == "รับเรื่องแล้ว"


@pytest.mark.parametrize(
    ("key", "document", "variables", "expected"),
    [
        (None, REFER, refer_input("8", OPM, "x"), "UNAUTHENTICATED"),
        (DEMO_ANALYST_KEY, REFER, refer_input("8", OPM, "x"), "FORBIDDEN"),
        (agency_key(KKN), REFER, refer_input("8", OPM, "x"), "CASE_NOT_FOUND"),  # unseen
        (agency_key(OPM), REFER, refer_input("10", CITY, "x"), "NOT_YOUR_CASE"),
        (agency_key(DDC), REFER, refer_input("8", "NOBODY", "x"), "AGENCY_CANNOT_RECEIVE"),
        (agency_key(DDC), REFER, refer_input("8", DDC, "x"), "INVALID_INPUT"),
        (
            DEMO_INSPECTOR_KEY,
            PROGRESS,
            {"input": {"caseId": case_id("damrongdhama", "8"), "status": "ACCEPTED",
                       "idempotencyKey": "x"}},
            "NOT_YOUR_CASE",
        ),
        (
            agency_key(OPM),  # sees case 10, referred to it, but does not own it
            PROGRESS,
            {"input": {"caseId": case_id("damrongdhama", "10"), "status": "ACCEPTED",
                       "idempotencyKey": "x"}},
            "NOT_YOUR_CASE",
        ),
    ],
)  # fmt: skip
async def test_who_may_not_write(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    key: str | None,
    document: str,
    variables: dict[str, Any],
    expected: str,
) -> None:
    body = await call(gateway, document, variables, key)
    if expected in ("UNAUTHENTICATED", "FORBIDDEN"):
        assert body["errors"][0]["extensions"]["code"] == expected
    else:
        payload = next(iter(body["data"].values()))
        assert [e["code"] for e in payload["errors"]] == [expected], payload
    assert write_world.intake.created == [] and write_world.city_intake.posts == []
    assert await referral_rows(write_world, 8) == []
    assert await referral_rows(write_world, 10) == []


async def test_an_inspector_refers_any_case_and_every_write_is_audited(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    body = await call(gateway, REFER, refer_input("9", OPM, "i-9"), DEMO_INSPECTOR_KEY)
    assert body["data"]["referCase"]["write"]["state"] == "DONE"
    audit = await call(
        gateway,
        "{ auditLog(first: 50, filter: {action: REFER}) "
        "{ entries { action subject source caseId fields reason } } }",
        {},
        DEMO_AUDITOR_KEY,
    )
    entries = audit["data"]["auditLog"]["entries"]
    assert [e["reason"].split(":")[0] for e in entries] == ["submitted", "done"]
    subjects = {e["subject"] for e in entries}
    assert len(subjects) == 1 and subjects.pop().startswith("key:")  # the inspector's key id
    assert entries[-1]["source"] == "damrongdhama" and entries[-1]["caseId"] == "9"
    assert "systems=pmoc-1111,damrongdhama" in entries[-1]["fields"]
    assert "personal_data=none" in entries[-1]["fields"]
    assert write_world.intake.created[0] in entries[-1]["reason"]


async def test_the_graphiql_write_tabs_do_what_they_say(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """GraphiQL's "ReferACase" and "ReportProgress" tabs, run with the keys their comments
    name, against agencies of this test's own: both are DONE, in each agency's system."""
    refer = await call(gateway, REFER_A_CASE.query, REFER_A_CASE.variables, agency_key(DDC))
    result = refer["data"]["referCase"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE"
    assert result["referral"]["counterpart"]["referenceNumber"] == write_world.intake.created[0]
    progress = await call(
        gateway, REPORT_PROGRESS.query, REPORT_PROGRESS.variables, agency_key(OPM)
    )
    case = progress["data"]["reportProgress"]["case"]
    assert progress["data"]["reportProgress"]["errors"] == []
    assert (case["status"], case["sourceStatus"]) == ("RESOLVED", "6")
    assert case["timeline"][-1]["note"] == REPORT_PROGRESS.variables["input"]["note"]


NOTE = """
mutation Note($input: AddNoteInput!) {
  addNote(input: $input) {
    errors { code message }
    write { state }
    case { status timeline { status note } }
  }
}"""


async def test_add_note_by_the_owner_only(gateway: RunningGateway) -> None:
    note = {"caseId": case_id("damrongdhama", "4"), "note": "นัดตรวจพื้นที่", "idempotencyKey": "n"}
    refused = await call(gateway, NOTE, {"input": note}, agency_key(OPM))
    # OPM does not see case 4 (not referred to it); case 10 it sees, but does not own.
    assert [e["code"] for e in refused["data"]["addNote"]["errors"]] == ["CASE_NOT_FOUND"]
    seen = {**note, "caseId": case_id("damrongdhama", "10")}
    not_its = await call(gateway, NOTE, {"input": seen}, agency_key(OPM))
    assert [e["code"] for e in not_its["data"]["addNote"]["errors"]] == ["NOT_YOUR_CASE"]
    body = await call(gateway, NOTE, {"input": note}, agency_key(DDC))
    result = body["data"]["addNote"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE"
    assert result["case"]["timeline"][-1] == {
        "status": result["case"]["status"],
        "note": "นัดตรวจพื้นที่",
    }


async def test_rate_limits_and_query_limits_apply_to_mutations(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """A caller over its rate is refused before anything is written (429), and a mutation
    document over the depth limit is refused like any query."""
    limits = write_world.config.limits.model_copy(
        update={"rate_limit": RateLimitSettings(rate="2/minute"), "max_depth": 4}
    )
    await asyncio.to_thread(run, seed_demo_keys(write_world.config))
    async with serving(replace(write_world.config, limits=limits)) as limited:
        deep = await call(limited, REFER, refer_input("13", OPM, "deep"), agency_key(DDC))
        assert deep["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
        shallow = (
            "mutation($input: ReferCaseInput!) { referCase(input: $input) { errors { code } } }"
        )
        await call(limited, shallow, refer_input("13", OPM, "r1"), agency_key(DDC))
        response = await limited.client.post(
            "/graphql",
            json={"query": shallow, "variables": refer_input("13", OPM, "r2")},
            headers={"Authorization": f"Bearer {agency_key(DDC)}"},
        )
        assert response.status_code == 429
    assert len(write_world.intake.created) == 1  # the refused one wrote nothing


COMPLAINANT = "{ complainant { name phone citizenId address isAnonymous } }"


async def test_the_receiver_gets_only_the_personal_data_its_role_needs(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The 1111 service is configured for name and phone: those go, the citizen ID and the
    address stay with the sender; an anonymous complaint sends nothing; the audit log says
    what was sent, and the outbox keeps none of it once delivered."""
    found = await call(
        gateway,
        '{ cases(first: 30, filter: {source: ["damrongdhama"]}) { edges { node { id '
        "complainant { name phone isAnonymous isConfidential } } } } }",
        {},
        agency_key(DDC),
    )
    nodes = [e["node"] for e in found["data"]["cases"]["edges"]]
    named = next(n for n in nodes if n["complainant"] and n["complainant"]["name"]
                 and not n["complainant"]["isConfidential"])  # fmt: skip
    anonymous = next(n for n in nodes if n["complainant"] and n["complainant"]["isAnonymous"])
    for node, key in ((named, "pd-1"), (anonymous, "pd-2")):
        variables = refer_input("0", OPM, key)
        variables["input"]["caseId"] = node["id"]
        body = await call(gateway, REFER, variables, agency_key(DDC))
        assert body["data"]["referCase"]["write"]["state"] == "DONE", body
    sent = [
        (await call(gateway, f'{{ case(id: "{case_id("pmoc-1111", code)}") {COMPLAINANT} }}',
                    {}, agency_key(OPM)))["data"]["case"]["complainant"]
        for code in write_world.intake.created
    ]  # fmt: skip
    assert sent[0] == {
        "name": named["complainant"]["name"],
        "phone": named["complainant"]["phone"],
        "citizenId": None,
        "address": None,
        "isAnonymous": False,
    }
    assert sent[1]["name"] is None and sent[1]["phone"] is None and sent[1]["isAnonymous"]
    audit = await call(
        gateway,
        "{ auditLog(first: 50, filter: {action: REFER}) { entries { fields reason } } }",
        {},
        DEMO_AUDITOR_KEY,
    )
    personal = [f for e in audit["data"]["auditLog"]["entries"] for f in e["fields"]
                if f.startswith("personal_data=")]  # fmt: skip
    assert personal.count("personal_data=name,phone") == 2  # submitted and done
    assert personal.count("personal_data=none") == 2
    with contextlib.closing(sqlite3.connect(write_world.data_dir / "outbox.sqlite")) as outbox:
        rows = outbox.execute("SELECT payload FROM complaint_graph_outbox").fetchall()
    payloads = [json.loads(row[0]) for row in rows]
    assert len(payloads) == 2 and all(p["case"]["complainant"] is None for p in payloads)


async def test_the_center_refers_to_the_khon_kaen_office_and_that_office_records_none(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The demo's Damrongdhama vocabulary names the Khon Kaen office (KKN): the petition is
    created in the office's SQLite database as received by referral, the centre's table
    records it. The office's own system keeps no referrals, so its cases cannot be referred
    through the graph: AGENCY_CANNOT_WRITE, saying why."""
    body = await call(gateway, REFER, refer_input("11", KKN, "kkn-11"), agency_key(DDC))
    result = body["data"]["referCase"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    petition = result["write"]["receivingReference"]
    with contextlib.closing(sqlite3.connect(write_world.sqlite_path)) as db:
        via = db.execute("SELECT via FROM petition WHERE petition_no = ?", (petition,)).fetchall()
    assert via == [("รับโอนเรื่อง",)]
    connection = await asyncpg.connect(write_world.dsn)
    try:
        rows = await connection.fetch(
            "SELECT to_org, their_ref FROM complaint_referrals WHERE complaint_id = 11 "
            "AND their_ref = $1",
            petition,
        )
    finally:
        await connection.close()
    assert [tuple(r) for r in rows] == [("KKN", petition)]
    assert result["referral"]["counterpart"]["id"] == case_id("khonkaen-office", petition)

    back = refer_input("0", OPM, "kkn-back")
    back["input"]["caseId"] = case_id("khonkaen-office", petition)
    refused = await call(gateway, REFER, back, DEMO_INSPECTOR_KEY)
    (error,) = refused["data"]["referCase"]["errors"]
    assert error["code"] == "AGENCY_CANNOT_WRITE" and "records no referrals" in error["message"]


async def test_the_center_refers_to_the_city_platform_whose_requests_json_shows_it(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The demo's city platform receives referrals as GeoReport v2 requests (traffy-city's
    ``writes:`` in samples/config.yaml): the centre forwards its case 7, the platform's own
    requests.json lists the new request first, filed under the case's service code and area,
    the centre's table records its id, and the referral's counterpart is read from the
    platform."""
    shown = "title category { code } location { province { code } district { code } }"
    body = await call(gateway, REFER, refer_input("7", CITY, "city-7"), agency_key(DDC))
    result = body["data"]["referCase"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    (request_id,) = write_world.city_intake.created
    assert result["referral"]["receivingReference"] == request_id
    assert result["referral"]["toAgency"] == {"code": CITY}
    assert result["referral"]["counterpart"] == {"id": case_id("traffy-city", request_id)}

    original = (await gateway.query(f'{{ case(id: "{case_id("damrongdhama", "7")}") '
                                    f"{{ {shown} }} }}"))["data"]["case"]  # fmt: skip
    async with httpx.AsyncClient(base_url=f"{write_world.city.url}/open311/v2") as platform:
        listed = (await platform.get("/requests.json", params={"page_size": 3})).json()
    newest = listed[0]
    assert newest["service_request_id"] == request_id
    service = {unified: code for code, unified in traffy.SERVICE_CODES.items()}
    assert newest["service_code"] == service[original["category"]["code"]]
    attributes = newest["extended_attributes"]
    assert attributes["title"] == original["title"]
    assert attributes["province_code"] == original["location"]["province"]["code"]
    assert attributes["district_code"] == original["location"]["district"]["code"]
    assert attributes["idempotency_key"]  # what a resend looks the request up by

    rows = await referral_rows(write_world, 7, "TF-W%")
    assert [(r["to_org"], r["kind_code"], r["their_ref"]) for r in rows] == [
        ("BMA-TF", "FWD", request_id)
    ]
    read = await call(
        gateway,
        f'{{ case(id: "{case_id("damrongdhama", "7")}") {{ referrals {{ toAgency {{ code }} '
        f"receivingReference counterpart {{ id referenceNumber status {shown} }} }} }} }}",
        {},
        agency_key(DDC),
    )
    (referral,) = [
        r for r in read["data"]["case"]["referrals"] if r["receivingReference"] == request_id
    ]
    counterpart = referral["counterpart"]
    assert counterpart["id"] == case_id("traffy-city", request_id)
    assert (counterpart["referenceNumber"], counterpart["status"]) == (request_id, "RECEIVED")
    assert {k: counterpart[k] for k in ("title", "category", "location")} == original


async def test_an_agency_whose_system_takes_no_writes_cannot_receive(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """Every demo agency receives; without its ``writes:`` the city platform cannot, and a
    referral or a complaint sent to it is refused, naming its system, before anything is sent."""
    sources = tuple(
        s.model_copy(update={"writes": None}) if s.id == "traffy-city" else s
        for s in write_world.config.sources
    )
    config = replace(write_world.config, sources=sources)
    file = (
        "mutation($input: FileComplaintInput!) "
        "{ fileComplaint(input: $input) { errors { code message field } } }"
    )
    complaint = {
        "title": "ไฟส่องสว่างดับทั้งซอย",
        "category": "ELECTRICITY",
        "provinceCode": "10",
        "toAgency": CITY,
        "idempotencyKey": "no-city",
    }
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as gateway:
        referred = await call(gateway, REFER, refer_input("8", CITY, "x"), agency_key(DDC))
        filed = await call(gateway, file, {"input": complaint}, DEMO_INSPECTOR_KEY)
    (refusal,) = referred["data"]["referCase"]["errors"]
    assert (refusal["code"], refusal["field"]) == ("AGENCY_CANNOT_RECEIVE", "toAgency")
    assert "its system 'traffy-city' takes no writes" in refusal["message"]
    (refusal,) = filed["data"]["fileComplaint"]["errors"]
    assert (refusal["code"], refusal["field"]) == ("AGENCY_CANNOT_RECEIVE", "toAgency")
    assert "its system 'traffy-city' takes no new cases" in refusal["message"]
    assert (
        write_world.city_intake.posts == [] and await referral_rows(write_world, 8, "TF-W%") == []
    )
