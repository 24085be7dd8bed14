"""POST /open311/v2/requests.json: a civic reporting app files a complaint the GeoReport v2 way
(form-encoded, ``api_key`` a request parameter), routed like fileComplaint into the agency's
own system; every answer, errors included, valid against the GeoReport v2 schemas."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.demo import DEMO_ANALYST_KEY, DEMO_INSPECTOR_KEY
from gateway.demo import demo_agency_key as agency_key
from gateway.ratelimit import RateLimitSettings
from samples.serving import ThreadedServer
from tests.conftest import RunningGateway, serving
from tests.gateway.test_open311 import assert_valid
from tests.gateway.test_writes import call, case_id
from tests.gateway.test_writes_intake import INTAKE_KEY, petitions, seed_intake_key
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

URL = "/open311/v2/requests.json"

FORM = {
    "service_code": "ROADS",
    "lat": "16.4419",
    "long": "102.8360",
    "address_string": "ถนนมิตรภาพ หน้าตลาดสด",
    "description": "ถนนเป็นหลุมลึก\nรถจักรยานยนต์ล้มทุกวันที่ฝนตก",
    "attribute[province_code]": "40",
    "first_name": "สมชาย",
    "last_name": "ใจดี",
    "phone": "0891234567",
}


@pytest.fixture
async def gateway(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    await asyncio.to_thread(run, seed_intake_key(write_world))
    async with serving(write_world.config) as started:
        yield started


async def post(
    gateway: RunningGateway,
    form: dict[str, str],
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await gateway.client.post(URL, data=form, params=params, headers=headers)


async def test_a_civic_app_files_a_request_into_the_routed_agency_and_reads_it_back(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    answer = await post(gateway, {**FORM, "api_key": INTAKE_KEY})
    assert answer.status_code == 200, answer.text
    assert_valid("post-service-request-response.json", answer.json())
    (created,) = answer.json()
    ((petition, heading, via, category),) = petitions(write_world)  # Khon Kaen: rule 1
    assert created["service_request_id"] == case_id("khonkaen-office", petition)
    assert (heading, via, category) == ("ถนนเป็นหลุมลึก", "เว็บไซต์", "KK-02")

    found = await gateway.client.get(
        f"/open311/v2/requests/{created['service_request_id']}.json",
        params={"api_key": INTAKE_KEY},
    )
    assert found.status_code == 200, found.text
    assert_valid("requests.json", found.json())
    (request,) = found.json()
    assert request["service_code"] == "ROADS" and request["status"] == "open"
    assert request["agency_responsible"] == "สำนักงานจังหวัดขอนแก่น"
    assert "รถจักรยานยนต์ล้ม" in request["description"]
    assert (request["lat"], request["long"]) == (16.4419, 102.836)
    assert request["address"] == FORM["address_string"]


async def test_the_key_in_a_header_and_an_idempotency_key_file_once(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    form = {**FORM, "service_code": "WATER", "attribute[province_code]": "10"}
    headers = {"Authorization": f"Bearer {INTAKE_KEY}", "Idempotency-Key": "app-42"}
    answers = await asyncio.gather(*(post(gateway, form, headers=headers) for _ in range(3)))
    ids = {a.json()[0]["service_request_id"] for a in answers}
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert ids == {case_id("pmoc-1111", write_world.intake.created[0])}  # the default: 1111
    assert len(write_world.intake.created) == 1

    changed = await post(gateway, {**form, "description": "อีกเรื่อง"}, headers=headers)
    assert changed.status_code == 409
    assert_valid("errors.json", changed.json())
    # Without an Idempotency-Key every POST is a new request, as GeoReport v2 has it.
    for _ in range(2):
        again = await post(gateway, form, params={"api_key": INTAKE_KEY})
        assert again.status_code == 200
    assert len(write_world.intake.created) == 3


@pytest.mark.parametrize(
    ("form", "params", "status", "says"),
    [
        (FORM, {}, 401, "needs an API key"),
        ({**FORM, "api_key": "not-a-key"}, {}, 401, "invalid API key"),
        (FORM, {"api_key": DEMO_ANALYST_KEY}, 403, "complaints:file"),
        ({**FORM, "service_code": ""}, {"api_key": INTAKE_KEY}, 400, "service_code"),
        ({**FORM, "service_code": "PARKING"}, {"api_key": INTAKE_KEY}, 404, "PARKING"),
        ({k: v for k, v in FORM.items() if k not in ("lat", "long", "address_string")},
         {"api_key": INTAKE_KEY}, 400, "location is required"),
        ({**FORM, "long": ""}, {"api_key": INTAKE_KEY}, 400, "lat and long"),
        ({**FORM, "lat": "north"}, {"api_key": INTAKE_KEY}, 400, "lat must be a number"),
        ({**FORM, "attribute[province_code]": "99"}, {"api_key": INTAKE_KEY}, 400,
         "provinceCode '99' is no such area"),
        ({**FORM, "attribute[agency]": "NOBODY"}, {"api_key": INTAKE_KEY}, 400,
         "cannot receive"),
    ],
)  # fmt: skip
async def test_refusals_are_the_specifications_errors_and_write_nothing(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
    form: dict[str, str],
    params: dict[str, str],
    status: int,
    says: str,
) -> None:
    answer = await post(gateway, form, params=params)
    assert answer.status_code == status, answer.text
    assert_valid("errors.json", answer.json())
    assert answer.json()[0]["code"] == status and says in answer.json()[0]["description"]
    assert petitions(write_world) == [] and write_world.intake.created == []


async def test_an_agency_that_is_down_gives_a_token_then_the_id(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    write_world.pmoc.stop()
    form = {**FORM, "attribute[province_code]": "10"}  # the default: the 1111 service
    answer = await post(gateway, form, params={"api_key": INTAKE_KEY})
    assert answer.status_code == 200, answer.text
    assert_valid("post-service-request-response.json", answer.json())
    (pending,) = answer.json()
    assert "service_request_id" not in pending
    token_url = f"/open311/v2/tokens/{pending['token']}.json"
    waiting = await gateway.client.get(token_url, params={"api_key": INTAKE_KEY})
    assert waiting.status_code == 200 and waiting.json() == [{"token": pending["token"]}]
    stranger = await gateway.client.get(token_url, params={"api_key": agency_key("KKN-PO")})
    assert stranger.status_code == 404  # someone else's filing
    assert_valid("errors.json", stranger.json())

    back = ThreadedServer(write_world.pmoc.app, port=write_world.pmoc.port)
    back.start()
    try:
        found: list[dict[str, Any]] = []
        for _ in range(200):  # the outbox retries every 0.2-0.5 s: observed, not slept on
            found = (await gateway.client.get(token_url, params={"api_key": INTAKE_KEY})).json()
            if "service_request_id" in found[0]:
                break
            await asyncio.sleep(0.05)
        assert found[0]["service_request_id"] == case_id("pmoc-1111", write_world.intake.created[0])
        inspector = await gateway.client.get(token_url, params={"api_key": DEMO_INSPECTOR_KEY})
        assert inspector.json() == found
        request = await gateway.client.get(
            f"/open311/v2/requests/{found[0]['service_request_id']}.json",
            params={"api_key": INTAKE_KEY},
        )
        assert request.status_code == 200
        assert_valid("requests.json", request.json())
    finally:
        back.stop()
    assert len(write_world.intake.created) == 1


async def test_the_complainant_reaches_the_agency_only_as_far_as_it_may_have_it(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    """The 1111 service may have a caller's name and phone; the Khon Kaen office, no
    personal data at all."""
    to_1111 = await post(gateway, {**FORM, "attribute[province_code]": "10", "api_key": INTAKE_KEY})
    (created,) = to_1111.json()
    read = await call(
        gateway,
        f'{{ case(id: "{created["service_request_id"]}") {{ complainant {{ name phone }} }} }}',
        {},
        agency_key("OPM-1111"),
    )
    assert read["data"]["case"]["complainant"] == {"name": "สมชาย ใจดี", "phone": "0891234567"}
    to_kkn = await post(gateway, {**FORM, "api_key": INTAKE_KEY})
    assert to_kkn.status_code == 200
    with contextlib.closing(sqlite3.connect(write_world.sqlite_path)) as db:
        people = db.execute("SELECT count(*) FROM ผู้ร้อง WHERE ชื่อ = 'สมชาย ใจดี'").fetchone()
    assert people == (0,)


async def test_the_rate_limit_applies_to_posts(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    limits = write_world.config.limits.model_copy(
        update={"rate_limit": RateLimitSettings(rate="2/minute")}
    )
    await asyncio.to_thread(run, seed_intake_key(write_world))
    form = {**FORM, "attribute[province_code]": "10", "api_key": INTAKE_KEY}
    async with serving(replace(write_world.config, limits=limits)) as limited:
        statuses = [(await post(limited, form)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(write_world.intake.created) == 2  # the refused one wrote nothing
