"""``kind: open311`` writes against the city platform sample on loopback: a referral becomes a
GeoReport v2 service request (POST requests.json, form-encoded, with api_key), its
service_request_id, or the id behind a token, the receiver's reference; one request per
idempotency key by the server's header or by a lookup before creating; what GeoReport v2
cannot do refused by name. The sample's answers and the writer's POSTs are checked against the
GeoReport v2 schemas and parameter list (tests/gateway/georeport_v2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.demo import demo_config
from samples import traffy
from samples.serving import ThreadedServer
from sources import CanonicalStatus, ReferralKind, SourceConfigError, SourceUnavailable
from sources._open311_writes import Open311Writer, Open311Writes
from sources._writes import NewCase, OutgoingReferral, WritesUnsupported, writer_for
from sources.open311 import Open311Settings, Open311Source
from tests.gateway.test_open311 import assert_valid

API_KEY = "city-write-key"
NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
CASE = NewCase(
    title="ไฟถนนดับทั้งซอย",
    description="ไฟส่องสว่างดับตั้งแต่ต้นซอยถึงท้ายซอย",
    category="ROADS",
    received_at=NOW,
    sender_agency="MOI-DDC",
    sender_reference="DDC-2569-000042",
    province_code="10",
    district_code="1001",
    address="ซอยสุขุมวิท 101",
    latitude=13.6891,
    longitude=100.6106,
)

POST_PARAMETERS = {
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
}
"""The parameters of GeoReport v2's POST Service Request, besides attribute[code]."""


def assert_spec_post(form: dict[str, str]) -> None:
    """What the specification requires of a POST requests.json form."""
    unknown = [k for k in form if k not in POST_PARAMETERS and not k.startswith("attribute[")]
    assert not unknown, unknown
    assert form.get("api_key") and form.get("service_code")
    point = bool(form.get("lat")) and bool(form.get("long"))
    assert point or form.get("address_string") or form.get("address_id")
    if point:
        float(form["lat"]), float(form["long"])
    assert len(form.get("description", "")) <= 4000


@pytest.fixture
def intake() -> traffy.Intake:
    return traffy.Intake()


@pytest.fixture
def city(intake: traffy.Intake) -> Iterator[ThreadedServer]:
    server = ThreadedServer(traffy.create_app(count=50, api_key=API_KEY, intake=intake))
    server.start()
    yield server
    server.stop()


def city_settings(city: ThreadedServer, tmp_path: Path, **writes: Any) -> Open311Settings:
    """The demo's traffy-city source on this server, with ``writes:``."""
    config = demo_config("postgresql://x@127.0.0.1/x", tmp_path / "p.sqlite", city.url, city.url)
    settings = next(s for s in config.sources if s.id == "traffy-city")
    assert isinstance(settings, Open311Settings)
    chosen = {
        "api_key": API_KEY,
        "attributes": {"title": "title", "province_code": "province_code"},
        **writes,
    }
    return settings.model_copy(update={"writes": Open311Writes.model_validate(chosen)})


@pytest.fixture
async def writer(city: ThreadedServer, tmp_path: Path) -> AsyncIterator[Open311Writer]:
    made = writer_for(city_settings(city, tmp_path))
    assert isinstance(made, Open311Writer)
    yield made
    await made.close()


async def test_a_referral_becomes_a_service_request_read_back_through_the_source(
    writer: Open311Writer, city: ThreadedServer, intake: traffy.Intake
) -> None:
    local_id = await writer.create_case(CASE, "k-1")
    assert intake.created == [local_id] and local_id.startswith("TF-W")

    posted = intake.posts[-1]
    assert_spec_post(posted)
    assert posted["api_key"] == API_KEY and posted["service_code"] == "road"
    assert (float(posted["lat"]), float(posted["long"])) == (13.6891, 100.6106)
    assert posted["attribute[title]"] == CASE.title
    assert CASE.description in posted["description"]
    assert "DDC-2569-000042" in posted["description"]

    source = Open311Source(writer.settings)
    try:
        record = (await source.load_cases([local_id]))[local_id]
    finally:
        await source.close()
    assert record.title == CASE.title and record.category == "ROADS"
    assert record.status == CanonicalStatus.RECEIVED
    assert record.location.province_code == "10"
    assert (record.location.latitude, record.location.longitude) == (13.6891, 100.6106)


async def test_the_samples_answers_are_valid_georeport_v2(
    city: ThreadedServer, intake: traffy.Intake
) -> None:
    root = f"{city.url}/open311/v2"
    form = {"api_key": API_KEY, "service_code": "flooding", "address_string": "ถนนพระราม 4"}
    async with httpx.AsyncClient() as client:
        made = await client.post(f"{root}/requests.json", data=form)
        assert made.status_code == 200
        assert_valid("post-service-request-response.json", made.json())
        request_id = made.json()[0]["service_request_id"]
        one = await client.get(f"{root}/requests/{request_id}.json")
        assert_valid("requests.json", one.json())
        listed = await client.get(f"{root}/requests.json")
        assert listed.json()[0]["service_request_id"] == request_id  # newest first
        assert_valid("requests.json", listed.json())

        intake.answer_with = "token"
        tokened = await client.post(f"{root}/requests.json", data=form)
        assert_valid("post-service-request-response.json", tokened.json())
        assert "service_request_id" not in tokened.json()[0]

        refusals = [
            ({**form, "api_key": "wrong"}, 403),
            ({k: v for k, v in form.items() if k != "api_key"}, 403),
            ({k: v for k, v in form.items() if k != "service_code"}, 400),
            ({k: v for k, v in form.items() if k != "address_string"}, 400),
            ({**form, "description": "ก" * 4001}, 400),
        ]
        for bad, status in refusals:
            refused = await client.post(f"{root}/requests.json", data=bad)
            assert refused.status_code == status, bad
            assert_valid("errors.json", refused.json())
    assert len(intake.created) == 2  # the refused ones filed nothing


async def test_the_same_key_concurrently_and_again_files_one_request(
    writer: Open311Writer, intake: traffy.Intake
) -> None:
    """By the server's own means: the Idempotency-Key header."""
    together = await asyncio.gather(*(writer.create_case(CASE, "same") for _ in range(5)))
    again = await writer.create_case(CASE, "same")
    assert set(together) == {again}
    other = await writer.create_case(CASE, "other")
    assert intake.created == [again, other]


@pytest.mark.parametrize("looked_up", [True, False])
async def test_a_resend_is_found_by_lookup_where_the_server_ignores_the_header(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path, looked_up: bool
) -> None:
    """Without the header, only the lookup of the key attribute keeps a resend from filing
    a second request (the control case shows the server would)."""
    lookup = {"key_lookup_param": "idempotency_key"} if looked_up else {}
    settings = city_settings(
        city, tmp_path, key_header=None, key_attribute="idempotency_key", **lookup
    )
    writer = writer_for(settings)
    assert writer is not None
    try:
        first = await writer.create_case(CASE, "resent")
        second = await writer.create_case(CASE, "resent")
    finally:
        await writer.close()
    assert all(form["attribute[idempotency_key]"] == "resent" for form in intake.posts)
    if looked_up:
        assert first == second and intake.created == [first]
        assert len(intake.posts) == 1  # the resend found it and posted nothing
    else:
        assert first != second and intake.created == [first, second]


async def test_a_lookup_the_server_ignores_never_takes_another_request(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path
) -> None:
    """A server that does not know the lookup parameter lists every request: only one that
    carries this key is the earlier send's."""
    settings = city_settings(
        city,
        tmp_path,
        key_header=None,
        key_attribute="idempotency_key",
        key_lookup_param="no_such_filter",
    )
    writer = writer_for(settings)
    assert writer is not None
    try:
        first = await writer.create_case(CASE, "first")
        second = await writer.create_case(CASE, "second")
        again = await writer.create_case(CASE, "first")
    finally:
        await writer.close()
    assert first != second and again == first
    assert intake.created == [first, second]


def test_a_lookup_without_the_key_attribute_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="key_lookup_param needs key_attribute"):
        Open311Writes(api_key="k", key_lookup_param="idempotency_key")


async def test_a_token_answer_is_resolved_through_the_tokens_endpoint(
    writer: Open311Writer, intake: traffy.Intake
) -> None:
    intake.answer_with, intake.token_delay = "token", 2
    local_id = await writer.create_case(CASE, "tokened")
    assert intake.created == [local_id]
    (token,) = intake.tokens
    assert intake.tokens[token] == local_id and intake.token_asks[token] == 3


async def test_a_token_not_resolved_in_time_is_retried_and_completes_once(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path
) -> None:
    """Unavailable, not refused (the outbox retries it); the resend with the same key gets
    the same token from the server and, once filed, its id: one request."""
    intake.answer_with, intake.token_delay = "token", 10_000
    writer = writer_for(city_settings(city, tmp_path, token_wait_seconds=0.3))
    assert writer is not None
    try:
        with pytest.raises(SourceUnavailable, match=r"has no service_request_id after 0\.3 s"):
            await writer.create_case(CASE, "slow")
        intake.token_delay = 0
        local_id = await writer.create_case(CASE, "slow")
    finally:
        await writer.close()
    assert intake.created == [local_id]


async def test_a_refused_api_key_is_a_configuration_error(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path
) -> None:
    writer = writer_for(city_settings(city, tmp_path, api_key="not-the-key"))
    assert writer is not None
    try:
        with pytest.raises(SourceConfigError, match="HTTP 403: the server refused the api_key"):
            await writer.create_case(CASE, "k")
    finally:
        await writer.close()
    assert intake.created == [] and intake.posts[0]["api_key"] == "not-the-key"


async def test_service_codes_per_category_override_the_vocabulary(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path
) -> None:
    writer = writer_for(city_settings(city, tmp_path, service_codes={"ROADS": "light"}))
    assert writer is not None
    try:
        await writer.create_case(CASE, "k")
        await writer.create_case(replace(CASE, category="WATER"), "k2")
    finally:
        await writer.close()
    assert [form["service_code"] for form in intake.posts] == ["light", "flooding"]


async def test_only_the_allowed_personal_data_is_posted(
    city: ThreadedServer, intake: traffy.Intake, tmp_path: Path
) -> None:
    person = {"name": "นางสาวสมศรี ใจดี", "phone": "0812345678", "citizen_id": "1101700203451"}
    named = writer_for(city_settings(city, tmp_path, personal_data=["name"]))
    bare = writer_for(city_settings(city, tmp_path))
    assert named is not None and bare is not None
    try:
        await named.create_case(replace(CASE, complainant=person), "p1")
        await bare.create_case(replace(CASE, complainant=person), "p2")
    finally:
        await named.close()
        await bare.close()
    with_name, without = intake.posts
    assert (with_name["first_name"], with_name["last_name"]) == ("นางสาวสมศรี", "ใจดี")
    assert "phone" not in with_name
    assert not {"first_name", "last_name", "phone"} & set(without)
    assert all("1101700203451" not in str(form) for form in intake.posts)
    assert_spec_post(with_name)


async def test_what_georeport_v2_cannot_do_is_refused_naming_the_agency(
    writer: Open311Writer, intake: traffy.Intake
) -> None:
    assert writer.takes("create")
    assert not any(writer.takes(step) for step in ("status", "note", "record"))
    referral = OutgoingReferral("OPM-1111", ReferralKind.FORWARD, "PMOC-1", NOW)
    attempts = [
        writer.set_status("TF-1", CanonicalStatus.RESOLVED, None, NOW, "k"),
        writer.add_note("TF-1", "note", NOW, "k"),
        writer.record_referral("TF-1", referral, "k"),
    ]
    for attempt in attempts:
        with pytest.raises(WritesUnsupported, match=r"BMA-TRAFFY's Open311 .* cannot"):
            await attempt
    assert intake.posts == []


def test_a_source_without_writes_has_no_writer(city: ThreadedServer, tmp_path: Path) -> None:
    settings = city_settings(city, tmp_path).model_copy(update={"writes": None})
    assert writer_for(settings) is None
