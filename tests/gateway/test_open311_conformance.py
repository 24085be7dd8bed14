"""The gateway's Open311 GeoReport v2 endpoint: every answer valid against the official schemas
with their formats checked (date-time, uri), and every standard filter exact, item by item."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.conftest import RunningGateway
from tests.gateway.test_open311 import validator
from tests.resolvers.expected import all_cases

FINISHED = ("RESOLVED", "CLOSED", "REJECTED", "DUPLICATE", "CANCELLED")


def assert_valid(name: str, document: Any) -> None:
    errors = list(validator(name).iter_errors(document))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_formats_are_really_checked() -> None:
    """Without rfc3339-validator / rfc3986-validator, jsonschema skips these formats silently."""
    checker = Draft7Validator.FORMAT_CHECKER
    assert checker.conforms("2026-03-01T09:00:00+07:00", "date-time")
    assert not checker.conforms("2026-03-01 09:00", "date-time")
    assert checker.conforms("https://photos.example/a.jpg", "uri")
    assert not checker.conforms("photos/a.jpg", "uri")


async def requests(gateway: RunningGateway, **params: str) -> list[dict[str, Any]]:
    response = await gateway.client.get(
        "/open311/v2/requests.json", params={"page_size": "1000", **params}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    assert_valid("requests.json", found)
    return found


async def test_services_and_single_requests_are_valid_with_formats(
    gateway: RunningGateway,
) -> None:
    services = await gateway.client.get("/open311/v2/services.json")
    assert_valid("services.json", services.json())
    listed = await requests(gateway, page_size="20")
    one = await gateway.client.get(f"/open311/v2/requests/{listed[0]['service_request_id']}.json")
    assert one.status_code == 200
    assert_valid("requests.json", one.json())
    assert any(r.get("media_url") for r in await requests(gateway))  # a uri was checked


MARCH = ("2026-03-01T00:00:00+07:00", "2026-03-31T23:59:59+07:00")


def in_march(requested: datetime) -> bool:
    start, end = (datetime.fromisoformat(t) for t in MARCH)
    return start <= requested <= end


@pytest.mark.parametrize(
    ("params", "item_matches", "case_matches"),
    [
        (
            {"service_code": "ROADS,WATER"},
            lambda r: r["service_code"] in ("ROADS", "WATER"),
            lambda c: c.category in ("ROADS", "WATER"),
        ),
        (
            {"status": "closed", "start_date": MARCH[0], "end_date": MARCH[1]},
            lambda r: (
                r["status"] == "closed"
                and in_march(datetime.fromisoformat(r["requested_datetime"]))
            ),
            lambda c: c.status in FINISHED and in_march(c.received_at),
        ),
        (
            {"status": "open", "service_code": "CORRUPTION"},
            lambda r: r["status"] == "open" and r["service_code"] == "CORRUPTION",
            lambda c: c.status not in FINISHED and c.category == "CORRUPTION",
        ),
        (
            {"start_date": MARCH[0], "end_date": MARCH[1]},
            lambda r: in_march(datetime.fromisoformat(r["requested_datetime"])),
            lambda c: in_march(c.received_at),
        ),
    ],
    ids=["service_code", "closed in march", "open corruption", "march"],
)
async def test_each_filter_holds_for_every_item_and_finds_them_all(
    gateway: RunningGateway, params: dict[str, str], item_matches: Any, case_matches: Any
) -> None:
    expected = [e for e in all_cases() if case_matches(e.case)]
    assert 0 < len(expected) < 1000  # below the page cap: the count is exact, not capped
    found = await requests(gateway, **params)
    assert all(item_matches(item) for item in found)
    assert len(found) == len(expected)
    assert len({r["service_request_id"] for r in found}) == len(found)


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "2030-01-01T00:00:00+07:00"},
        {"end_date": "2020-01-01T00:00:00+07:00"},
        {"status": "closed", "service_code": "NO_SUCH_SERVICE"},
    ],
)
async def test_a_filter_that_excludes_everything_answers_an_empty_list(
    gateway: RunningGateway, params: dict[str, str]
) -> None:
    assert await requests(gateway, **params) == []
