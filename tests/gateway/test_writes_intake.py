"""fileComplaint: a new complaint routed by the demo's rules (samples/config.yaml writes.routing)
into the agency's own system: the Khon Kaen office on SQLite, the Damrongdhama Center on
PostgreSQL, the 1111 sample API on loopback. Each test has agencies of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from gateway.auth import KeyStore
from gateway.demo import DEMO_ANALYST_KEY, DEMO_AUDITOR_KEY, DEMO_INSPECTOR_KEY, seed_demo_keys
from gateway.demo import demo_agency_key as agency_key
from gateway.examples import FILE_A_COMPLAINT
from gateway.routing import RouteRule, RoutingSettings
from resolvers.access import Role
from samples.serving import ThreadedServer
from tests.conftest import RunningGateway, serving
from tests.gateway.test_writes import call, case_id
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

INTAKE_KEY = "test-intake-app"  # an analyst's key with the complaints:file scope

FILE = """
mutation File($input: FileComplaintInput!) {
  fileComplaint(input: $input) {
    errors { code message field }
    write { state step lastError receivingReference action }
    caseId routedBy agency { code }
    case { id title description status channel sourceStatus category { code }
           owningAgency { code } location { province { code } district { code } address } }
  }
}"""


def complaint(key: str, **fields: Any) -> dict[str, Any]:
    values = {
        "title": "ไฟส่องสว่างดับทั้งซอย",
        "description": "ไฟดับมาสองสัปดาห์ กลางคืนมืดมาก",
        "category": "ELECTRICITY",
        "provinceCode": "10",
        "idempotencyKey": key,
    }
    return {"input": {**values, **fields}}


async def seed_intake_key(world: WriteWorld) -> None:
    await seed_demo_keys(world.config)
    store = KeyStore(world.config.auth.key_store)
    try:
        await store.ensure(
            INTAKE_KEY,
            "intake app",
            frozenset({Role.ANALYST}),
            None,
            frozenset({"complaints:file"}),
        )
    finally:
        await store.close()


@pytest.fixture
async def gateway(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    await asyncio.to_thread(run, seed_intake_key(write_world))
    async with serving(write_world.config) as started:
        yield started


def petitions(world: WriteWorld) -> list[tuple[str, str, str, str]]:
    with contextlib.closing(sqlite3.connect(world.sqlite_path)) as db:
        rows = db.execute(
            "SELECT p.petition_no, p.heading, p.via, t.type_code FROM petition p "
            "JOIN petition_type t USING (type_id) WHERE p.write_key IS NOT NULL"
        ).fetchall()
    return [tuple(row) for row in rows]


async def center_rows(world: WriteWorld) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(world.dsn)
    try:
        return await connection.fetch(
            "SELECT id::text, ref_no, subject, type_code, channel_code, status_code, "
            "province_code FROM complaints WHERE write_key IS NOT NULL"
        )
    finally:
        await connection.close()


async def test_routing_rules_choose_the_agency_first_match_wins(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """Khon Kaen province goes to the provincial office (rule 1, even for corruption, which
    rule 2 sends to the Damrongdhama Center elsewhere); what no rule takes, to the default
    1111 service; an agency named in the input is taken as named."""
    kkn = await call(
        gateway,
        FILE,
        complaint("k1", category="CORRUPTION", provinceCode="40", districtCode="4001"),
        DEMO_INSPECTOR_KEY,
    )
    result = kkn["data"]["fileComplaint"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE", result
    assert (result["routedBy"], result["agency"]["code"]) == ("rule 1", "KKN-PO")
    case = result["case"]
    assert case["id"] == result["caseId"]
    assert case["owningAgency"]["code"] == "KKN-PO" and case["status"] == "RECEIVED"
    assert case["location"]["district"]["code"] == "4001"
    assert (case["channel"], case["sourceStatus"]) == ("WEB", "รับเรื่อง")
    assert petitions(write_world) == [
        (result["write"]["receivingReference"], "ไฟส่องสว่างดับทั้งซอย", "เว็บไซต์", "KK-06")
    ]

    ddc = await call(
        gateway, FILE, complaint("k2", category="CORRUPTION", channel="LINE"), DEMO_INSPECTOR_KEY
    )
    result = ddc["data"]["fileComplaint"]
    assert (result["routedBy"], result["agency"]["code"]) == ("rule 2", "MOI-DDC")
    rows = await center_rows(write_world)
    assert [(r["id"], r["type_code"], r["channel_code"], r["status_code"]) for r in rows] == [
        (result["write"]["receivingReference"], "T06", "LINE", "NEW")
    ]
    assert result["case"]["id"] == case_id("damrongdhama", rows[0]["id"])

    other = await call(gateway, FILE, complaint("k3"), DEMO_INSPECTOR_KEY)
    result = other["data"]["fileComplaint"]
    assert (result["routedBy"], result["agency"]["code"]) == ("default", "OPM-1111")
    assert write_world.intake.created == [result["write"]["receivingReference"]]
    assert result["case"]["category"]["code"] == "ELECTRICITY"

    named = await call(
        gateway, FILE, complaint("k4", toAgency="MOI-DDC", provinceCode="40"), DEMO_INSPECTOR_KEY
    )
    result = named["data"]["fileComplaint"]
    assert (result["routedBy"], result["agency"]["code"]) == ("input", "MOI-DDC")
    assert len(await center_rows(write_world)) == 2


async def test_the_same_key_twice_and_concurrently_files_one_complaint(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    variables = complaint("once")
    bodies = await asyncio.gather(
        *(call(gateway, FILE, variables, agency_key("MOI-DDC")) for _ in range(4))
    )
    again = await call(gateway, FILE, variables, agency_key("MOI-DDC"))
    ids = {b["data"]["fileComplaint"]["caseId"] for b in [*bodies, again]}
    assert len(ids) == 1 and None not in ids
    assert len(write_world.intake.created) == 1
    changed = complaint("once", title="ไฟดับอีกซอยหนึ่ง")
    reused = await call(gateway, FILE, changed, agency_key("MOI-DDC"))
    assert [e["code"] for e in reused["data"]["fileComplaint"]["errors"]] == [
        "IDEMPOTENCY_KEY_REUSED"
    ]
    assert len(write_world.intake.created) == 1


@pytest.mark.parametrize(
    ("fields", "code", "field", "says"),
    [
        ({"category": "PARKING"}, "INVALID_INPUT", "category", "not a category"),
        ({"title": "  "}, "INVALID_INPUT", "title", "1 to 200"),
        ({"provinceCode": "99"}, "INVALID_INPUT", "provinceCode", "no such area"),
        ({"provinceCode": "40", "districtCode": "1001"}, "INVALID_INPUT", "districtCode",
         "not within 40"),
        ({"latitude": 123.0}, "INVALID_INPUT", "latitude", "±90"),
        ({"complainant": {"citizenId": "12345"}}, "INVALID_INPUT", "complainant.citizenId",
         "13 digits"),
        ({"toAgency": "NOBODY"}, "AGENCY_CANNOT_RECEIVE", "toAgency", "no such agency"),
        ({"idempotencyKey": ""}, "INVALID_INPUT", "idempotencyKey", "1 to 200"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_typed_error_and_nothing_is_written(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    fields: dict[str, Any],
    code: str,
    field: str,
    says: str,
) -> None:
    body = await call(gateway, FILE, complaint("bad", **fields), DEMO_INSPECTOR_KEY)
    result = body["data"]["fileComplaint"]
    assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, field)]
    assert says in result["errors"][0]["message"]
    assert result["write"] is None and result["caseId"] is None
    assert write_world.intake.created == [] and petitions(write_world) == []


async def test_no_rule_and_no_default_is_no_route(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    routing = RoutingSettings(rules=[RouteRule(categories=["ROADS"], agency="KKN-PO")])
    config = replace(
        write_world.config, writes=write_world.config.writes.model_copy(update={"routing": routing})
    )
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as gateway:
        body = await call(gateway, FILE, complaint("r"), DEMO_INSPECTOR_KEY)
        error = body["data"]["fileComplaint"]["errors"][0]
        assert (
            error["code"] == "NO_ROUTE"
            and "ELECTRICITY complaints in province 10" in (error["message"])
        )
        roads = await call(gateway, FILE, complaint("s", category="ROADS"), DEMO_INSPECTOR_KEY)
        assert roads["data"]["fileComplaint"]["agency"]["code"] == "KKN-PO"
    assert write_world.intake.created == []


async def test_who_may_file(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """Inspectors, agency keys and intake keys (complaints:file) file; analysts without the
    scope and callers without a key (here anonymous callers read as inspectors) do not."""
    refused = {
        None: "UNAUTHENTICATED",
        "not-a-key": "UNAUTHENTICATED",
        DEMO_ANALYST_KEY: "FORBIDDEN",
    }
    for key, expected in refused.items():
        body = await call(gateway, FILE, complaint(f"w-{key}"), key)
        assert body["errors"][0]["extensions"]["code"] == expected, body
        assert (body.get("data") or {}).get("fileComplaint") is None
    assert write_world.intake.created == []

    intake = await call(gateway, FILE, complaint("w-intake"), INTAKE_KEY)
    result = intake["data"]["fileComplaint"]
    assert result["write"]["state"] == "DONE" and result["case"]["title"]  # analysts read all
    # An agency's front desk files for whichever agency must act; it need not see the case.
    kkn = await call(gateway, FILE, complaint("w-kkn", category="CORRUPTION"), agency_key("KKN-PO"))
    result = kkn["data"]["fileComplaint"]
    assert result["agency"]["code"] == "MOI-DDC" and result["write"]["state"] == "DONE"
    assert result["case"] is None and result["caseId"] is not None
    assert len(write_world.intake.created) == 1 and len(await center_rows(write_world)) == 1


async def test_anonymous_filing_only_when_configured(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    writes = write_world.config.writes.model_copy(update={"anonymous_filing": True})
    config = replace(write_world.config, writes=writes)
    await asyncio.to_thread(run, seed_demo_keys(config))
    async with serving(config) as gateway:
        body = await call(gateway, FILE, complaint("anon"), None)
        result = body["data"]["fileComplaint"]
        assert result["errors"] == [] and result["write"]["state"] == "DONE"
        assert result["caseId"] == case_id("pmoc-1111", write_world.intake.created[0])
        bad = await call(gateway, FILE, complaint("anon-2"), "not-a-key")
        assert bad["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert len(write_world.intake.created) == 1


async def test_personal_data_goes_only_as_far_as_the_receiver_may_have_it_and_is_audited(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    person = {"name": "สมศรี ใจดี", "phone": "0812345678", "citizenId": "1100700000001"}
    body = await call(gateway, FILE, complaint("pd", complainant=person), INTAKE_KEY)
    result = body["data"]["fileComplaint"]
    assert result["write"]["state"] == "DONE", result
    read = await call(
        gateway,
        f'{{ case(id: "{result["caseId"]}") {{ complainant {{ name phone citizenId }} }} }}',
        {},
        agency_key("OPM-1111"),
    )
    assert read["data"]["case"]["complainant"] == {
        "name": "สมศรี ใจดี",
        "phone": "0812345678",
        "citizenId": None,  # the 1111 service's writes.personal_data: name and phone only
    }
    audit = await call(
        gateway,
        "{ auditLog(first: 20, filter: {action: FILE}) "
        "{ entries { action subject source caseId fields reason } } }",
        {},
        DEMO_AUDITOR_KEY,
    )
    entries = audit["data"]["auditLog"]["entries"]
    assert [e["reason"].split(":")[0] for e in entries] == ["submitted", "done"]
    done = entries[-1]
    assert (done["source"], done["caseId"]) == ("pmoc-1111", write_world.intake.created[0])
    assert "systems=pmoc-1111" in done["fields"]
    assert "personal_data=citizen_id,name,phone" in done["fields"]  # what the caller sent
    with contextlib.closing(sqlite3.connect(write_world.data_dir / "outbox.sqlite")) as outbox:
        (payload,) = outbox.execute("SELECT payload FROM complaint_graph_outbox").fetchone()
        (request,) = outbox.execute("SELECT request FROM complaint_graph_outbox").fetchone()
    assert json.loads(payload)["case"]["complainant"] is None  # delivered: none kept
    assert "0812345678" not in request and "สมศรี" not in request


async def test_the_graphiql_file_tab_does_what_it_says(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """GraphiQL's "FileAComplaint" tab, with the inspector's key its comment names: routed by
    rule 1 to the Khon Kaen office, created in its SQLite database."""
    body = await call(
        gateway, FILE_A_COMPLAINT.query, FILE_A_COMPLAINT.variables, DEMO_INSPECTOR_KEY
    )
    result = body["data"]["fileComplaint"]
    assert result["errors"] == [] and result["write"]["state"] == "DONE"
    assert (result["routedBy"], result["agency"]["code"]) == ("rule 1", "KKN-PO")
    assert result["case"]["channel"] == "MOBILE_APP"
    assert [p[0] for p in petitions(write_world)] == [result["write"]["receivingReference"]]


async def test_a_resend_after_the_rules_changed_is_the_same_filing(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The idempotency key names the caller's act, not the routing's answer: resent to a
    gateway whose rules now send it elsewhere, the first filing is found, nothing is made."""
    first = await call(gateway, FILE, complaint("moved"), DEMO_INSPECTOR_KEY)
    assert first["data"]["fileComplaint"]["agency"]["code"] == "OPM-1111"
    routing = RoutingSettings(default="KKN-PO")
    writes = write_world.config.writes.model_copy(update={"routing": routing})
    async with serving(replace(write_world.config, writes=writes)) as changed:
        again = await call(changed, FILE, complaint("moved"), DEMO_INSPECTOR_KEY)
        other = await call(changed, FILE, complaint("new"), DEMO_INSPECTOR_KEY)
    result = again["data"]["fileComplaint"]
    assert result["caseId"] == first["data"]["fileComplaint"]["caseId"]
    assert (result["agency"]["code"], result["routedBy"]) == ("OPM-1111", "earlier rules")
    assert other["data"]["fileComplaint"]["agency"]["code"] == "KKN-PO"
    assert len(write_world.intake.created) == 1 and len(petitions(write_world)) == 1


async def test_a_complaint_for_an_agency_that_is_down_waits_in_the_outbox(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    write_world.pmoc.stop()
    body = await call(gateway, FILE, complaint("down"), DEMO_INSPECTOR_KEY)
    result = body["data"]["fileComplaint"]
    assert result["errors"] == [] and result["agency"]["code"] == "OPM-1111"
    assert result["write"]["state"] == "PENDING" and "pmoc-1111" in result["write"]["lastError"]
    assert result["case"] is None and result["caseId"] is None
    waiting = "{ pendingWrites { action state case { id } receivingCase { id } } }"
    pending = (await call(gateway, waiting, {}, DEMO_INSPECTOR_KEY))["data"]["pendingWrites"]
    assert pending == [{"action": "file", "state": "PENDING", "case": None, "receivingCase": None}]
    back = ThreadedServer(write_world.pmoc.app, port=write_world.pmoc.port)
    back.start()
    try:
        for _ in range(200):  # the outbox retries every 0.2-0.5 s: observed, not slept on
            pending = (await call(gateway, waiting, {}, DEMO_INSPECTOR_KEY))["data"][
                "pendingWrites"
            ]
            if not pending:
                break
            await asyncio.sleep(0.05)
        assert pending == []
        again = await call(gateway, FILE, complaint("down"), DEMO_INSPECTOR_KEY)
        done = again["data"]["fileComplaint"]
        assert done["write"]["state"] == "DONE"
        assert done["caseId"] == case_id("pmoc-1111", write_world.intake.created[0])
        assert done["case"]["owningAgency"]["code"] == "OPM-1111"
    finally:
        back.stop()
    assert len(write_world.intake.created) == 1
