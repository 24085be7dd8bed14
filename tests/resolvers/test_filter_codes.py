"""Codes in a filter that nothing has are a clear error, not a silent empty answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningGateway
from tests.resolvers.expected import ALL_SOURCES

COUNT = "query($filter: CaseFilterInput) { cases(filter: $filter) { totalCount } }"
STATS = """query($filter: CaseFilterInput) {
  caseStats(groupBy: [SOURCE], filter: $filter) { total { count } }
}"""


@pytest.mark.parametrize(
    ("filter", "named"),
    [
        ({"category": ["LAND"]}, "filter.category: unknown 'LAND'; known: "),
        ({"agency": ["MOI-DDC", "NOPE"]}, "filter.agency: unknown 'NOPE'; known: "),
        ({"source": ["nowhere"]}, "filter.source: unknown 'nowhere'; known: "),
        ({"provinceCode": ["99"]}, "filter.province_code: unknown '99'"),
        ({"districtCode": ["40"]}, "filter.district_code: unknown '40'"),
    ],
)
@pytest.mark.parametrize("query", [COUNT, STATS], ids=["cases", "caseStats"])
async def test_an_unknown_code_is_named_and_costs_no_round_trip(
    gateway: RunningGateway, filter: dict[str, Any], named: str, query: str
) -> None:
    before = {s: gateway.round_trips(s) for s in ALL_SOURCES}
    body = await gateway.query(query, {"filter": filter})
    (error,) = body["errors"]
    assert error["message"].startswith(named), error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {s: gateway.round_trips(s) for s in ALL_SOURCES} == before


async def test_known_codes_still_select(gateway: RunningGateway) -> None:
    body = await gateway.query(
        COUNT, {"filter": {"category": ["LAND_DISPUTE"], "provinceCode": ["40"]}}
    )
    assert "errors" not in body, body
    assert body["data"]["cases"]["totalCount"] > 0
